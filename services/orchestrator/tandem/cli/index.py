"""The `tandem index` command group (parsing only); `tandem index PATH --release R` builds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup


class _BuildByDefault(TyperGroup):
    """Arguments that name no sub-command go to `build` (`tandem index docs/ --release v2`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in {"--help", "-h"}:
            args = ["build", *args]
        result: Any = super().parse_args(ctx, args)
        return list(result)


index_app = typer.Typer(
    cls=_BuildByDefault,
    no_args_is_help=True,
    help="Index docs releases blue/green; inspect, compare and roll back releases.",
)


@index_app.command("build")
def build(
    path: Annotated[Path, typer.Argument(help="docs folder of the release")],
    release: Annotated[str, typer.Option(help="release name, e.g. v3.0.5")],
) -> None:
    """Index a docs release into a new collection and serve it once verified (the default)."""
    from tandem.indexing.store_or_api import index_command

    raise typer.Exit(index_command(path, release))


@index_app.command("status")
def status() -> None:
    """The serving release and the releases kept for rollback."""
    from tandem.indexing.store_or_api import status_command

    raise typer.Exit(status_command())


@index_app.command("rollback")
def rollback(
    release: Annotated[str | None, typer.Option(help="serve this kept release")] = None,
    collection: Annotated[str | None, typer.Option(help="serve this kept collection")] = None,
) -> None:
    """Move the alias back to a kept release (default: the one before the serving one)."""
    from tandem.indexing.store_or_api import rollback_command

    if release and collection:
        raise typer.BadParameter("give --release or --collection, not both")
    raise typer.Exit(rollback_command(collection, release))


@index_app.command("changes")
def changes(
    release: Annotated[str | None, typer.Option(help="a kept release; default: serving")] = None,
) -> None:
    """Pages added / changed / removed by a release, with their headings."""
    from tandem.indexing.store_or_api import changes_command

    raise typer.Exit(changes_command(release))
