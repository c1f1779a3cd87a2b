"""`tandem handoffs list | retry`, where the server keeps handoffs (as `tandem feedback` does).

They open the handoffs where the server keeps them (`open_records`): the SQLite state file,
safe beside a running `tandem up` (WAL), or the Qdrant server with TANDEM_QDRANT__URL; a
server's delivery worker picks a retried handoff up within TANDEM_HANDOFF__POLL_S.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tandem.stores.handoffs import HandoffStore

handoffs_app = typer.Typer(
    help="Conversations handed to a person: delivery to the help desk.", no_args_is_help=True
)


def open_store() -> HandoffStore:
    """The handoffs: TANDEM_DATA_DIR's state database, or the Qdrant server's."""
    from tandem.settings import get_settings
    from tandem.stores.deployment import open_records

    return open_records(get_settings()).handoffs


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


@handoffs_app.command("list")
def handoffs_list(
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    release: Annotated[str | None, typer.Option(help="docs release, e.g. v4.2")] = None,
    adapter: Annotated[str | None, typer.Option(help="e.g. support@v3")] = None,
    since: Annotated[str | None, typer.Option(help="ISO date/time, UTC if no zone")] = None,
) -> None:
    """Handoffs, newest first, with attempts and the last error; then a count per status."""
    from tandem.stores.handoffs import STATUSES, HandoffFilter

    chosen = next((s for s in STATUSES if s == status), None)
    if status is not None and chosen is None:
        raise typer.BadParameter("status is pending, delivered or failed", param_hint="--status")
    filters = HandoffFilter(chosen, release, adapter, _since(since))
    items = open_store().items(filters)
    for item in items:
        where = f"{item.adapter or 'base'} / {item.release or 'no docs'}"
        typer.echo(
            f"{item.id}  {item.status:9}  {item.attempts} attempts  {item.outcome:9}  {where}"
        )
        if item.last_error:
            typer.echo(f"    last error: {item.last_error}")
    typer.echo(json.dumps({s: sum(i.status == s for i in items) for s in STATUSES}))


@handoffs_app.command("retry")
def handoffs_retry(handoff_id: str) -> None:
    """Send a failed (or pending) handoff again, with a fresh set of attempts."""
    from tandem.errors import TandemError

    try:
        item = open_store().retry(handoff_id, time.time())
    except TandemError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"{item.id}: pending, due now (the running server sends it)")
