"""`tandem feedback list | review` and `tandem dataset from-feedback`, on the answer log.

They open the log where the server keeps it (`open_records`): the SQLite state file, safe
beside a running `tandem up` (WAL), or the Qdrant server with TANDEM_QDRANT__URL.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tandem.stores.feedback import FeedbackLog

feedback_app = typer.Typer(help="Review what customers said about answers.", no_args_is_help=True)


def open_log() -> FeedbackLog:
    """The answer log: TANDEM_DATA_DIR's state database, or the Qdrant server's."""
    from tandem.settings import get_settings
    from tandem.stores.deployment import open_records

    return open_records(get_settings()).answers


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


@feedback_app.command("list")
def feedback_list(
    rating: Annotated[str | None, typer.Option(help="up or down")] = None,
    adapter: Annotated[str | None, typer.Option(help="e.g. support@v3, or base")] = None,
    release: Annotated[str | None, typer.Option(help="docs release, e.g. v4.2")] = None,
    since: Annotated[str | None, typer.Option(help="ISO date/time, UTC if no zone")] = None,
) -> None:
    """Rated answers, newest first, then the summary (JSON lines)."""
    from tandem.stores.feedback import FeedbackFilter, summarise

    if rating not in (None, "up", "down"):
        raise typer.BadParameter("rating is up or down", param_hint="--rating")
    filters = FeedbackFilter(rating, adapter, release, _since(since))  # type: ignore[arg-type]
    items = open_log().items(filters)
    for item in items:
        where = f"{item.answer.adapter or 'base'} / {item.answer.release or 'no docs'}"
        typer.echo(f"{item.answer.id}  {item.rating:4}  {where}  {item.answer.question[:60]!r}")
        if item.comment:
            typer.echo(f"    comment: {item.comment!r}")
    typer.echo(json.dumps(summarise(items)))


@feedback_app.command("review")
def feedback_review(
    answer_id: str,
    corrected: Annotated[
        Path | None, typer.Option(help="a file holding the corrected answer (house format)")
    ] = None,
    approve: Annotated[bool, typer.Option(help="approve the item as training data")] = True,
) -> None:
    """Attach a corrected answer to a feedback item and/or approve it."""
    from tandem.errors import TandemError

    text = corrected.read_text(encoding="utf-8").strip() if corrected else None
    try:
        item = open_log().review(answer_id, text, approve)
    except TandemError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    state = "corrected" if item.corrected else "approved" if item.approved else "not approved"
    typer.echo(f"{answer_id}: {state}")


def dataset_from_feedback(
    out: Annotated[Path, typer.Option(help="the chat JSONL file to write")],
    since: Annotated[str | None, typer.Option(help="only items rated since (ISO)")] = None,
) -> None:
    """Corrected and approved thumbs-up answers -> chat JSONL with the serving prompt."""
    from tandem.training.feedback_data import write_feedback_dataset

    stats = write_feedback_dataset(open_log(), out, _since(since))
    typer.echo(
        f"wrote {stats.examples} examples to {out} ({stats.corrected} corrected, "
        f"{stats.approved} approved as given, {stats.duplicates} duplicates left out); "
        f"check it with `tandem dataset validate {out}`"
    )
