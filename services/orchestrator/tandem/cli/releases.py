"""`tandem release plan|promote|rollback|list`: release pairs, through the admin API.

Only the running server can load adapters into vLLM and move the shared pointers, so every
command is a client of `/v1/admin/releases` (like `tandem adapters activate`). Exit codes as
there (2 bad input, 3 key refused, 4 not found, 5 conflict — a failed gate's 409 too —,
6 Tandem or a dependency down), and 1 when a plan's gate failed or its job did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tandem.cli.adapters import KeyOption, UrlOption, call_admin

release_app = typer.Typer(
    help="Release pairs (docs + adapter): plan behind the eval gate, promote, roll back.",
    no_args_is_help=True,
)
POLL_S = 1.0


def _server_path(path: Path) -> str:
    """A path that exists here is sent absolute (the server usually runs here too)."""
    return str(path.resolve()) if path.exists() else str(path)


def _gate(gate_file: Path | None) -> dict[str, Any] | None:
    if gate_file is None:
        return None
    from tandem.errors import TandemError
    from tandem.evaluation.gate import load_gate

    try:
        return load_gate(gate_file).to_dict()
    except TandemError as error:
        raise typer.BadParameter(str(error), param_hint="--gate-file") from error


def _wait(job: str, url: str | None, key: str | None) -> dict[str, Any]:
    """Poll the plan job, drawing its stages (index, load, eval) as bars."""
    import time

    from tandem.cli.progress import progress_bar

    with progress_bar() as progress:
        while True:
            state: dict[str, Any] = call_admin("GET", f"/v1/admin/jobs/{job}", url, key)
            if state.get("progress"):
                step = state["progress"]
                progress(step["stage"], step["done"], step["total"])
            if state["status"] in ("succeeded", "failed"):
                return state
            time.sleep(POLL_S)


def _print_gate(pair: dict[str, Any]) -> None:
    gate = pair.get("gate") or {}
    asked = gate.get("questions", {})
    verdict = "passed" if gate.get("passed") else "FAILED"
    typer.echo(
        f"{pair['release']}: gate {verdict} ({asked.get('qa', 0)} QA questions, "
        f"{asked.get('changed_pages', 0)} about changed pages); scores: {gate.get('scores_file')}"
    )
    for violation in gate.get("violations") or []:
        typer.echo(f"  - {violation}")


@release_app.command("plan")
def plan_command(
    release: Annotated[str, typer.Argument(help="release id, e.g. v4.3")],
    docs: Annotated[Path, typer.Option("--docs", help="the release's docs folder (on the server)")],
    adapter: Annotated[
        str | None, typer.Option(help="SLOT@VERSION; default: the serving pair's adapter")
    ] = None,
    qa: Annotated[Path | None, typer.Option(help="QA file the gate asks (on the server)")] = None,
    gate_file: Annotated[
        Path | None, typer.Option(help="gate thresholds (YAML/JSON), as `tandem eval`'s")
    ] = None,
    docs_release: Annotated[
        str | None, typer.Option(help="the docs' release name, if not RELEASE (e.g. v4.2)")
    ] = None,
    wait: Annotated[bool, typer.Option(help="wait for the job and print the gate")] = True,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Build the candidate pair (nothing that serves changes), then run its eval gate."""
    body = {
        "release": release,
        "path": _server_path(docs),
        "adapter": adapter,
        "qa": _server_path(qa) if qa else None,
        "gate": _gate(gate_file),
        "docs_release": docs_release,
    }
    job = call_admin("POST", "/v1/admin/releases", url, key, json=body)["job"]
    typer.echo(f"planning {release}: job {job}")
    if not wait:
        return
    state = _wait(job, url, key)
    if state["status"] == "failed":
        typer.secho(f"error: {state['error']}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    _print_gate(state["result"])
    if not state["result"]["gate"]["passed"]:
        raise typer.Exit(1)
    typer.echo(f"promote it with: tandem release promote {release}")


@release_app.command("promote")
def promote_command(
    release: Annotated[str, typer.Argument(help="a planned release whose gate passed")],
    force: Annotated[bool, typer.Option(help="promote past a failed gate (recorded)")] = False,
    canary: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="serve it to this share of conversations first"),
    ] = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Serve the pair's docs and adapter together, in one step (or as a canary)."""
    body = {"force": force, "canary": canary}
    result = call_admin("POST", f"/v1/admin/releases/{release}/promote", url, key, json=body)
    _print_change(result)


@release_app.command("rollback")
def rollback_command(url: UrlOption = None, key: KeyOption = None) -> None:
    """End the canary, else serve the pair before the serving one again."""
    _print_change(call_admin("POST", "/v1/admin/releases/rollback", url, key))


@release_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the raw JSON")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Serving, canary, kept and candidate pairs with their gates; the last journal entries."""
    body = call_admin("GET", "/v1/admin/releases", url, key)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for role in ("serving", "canary"):
        if body[role]:
            typer.echo(_line(role, body[role]))
    for entry in [*body["kept"], *body["candidates"]]:
        typer.echo(_line(entry["role"], entry))
    for note in body["drift"]:
        typer.echo(f"drift: {note}")
    for entry in body["journal"][:5]:
        typer.echo(
            f"journal: {entry['finished']} {entry['op']} {entry.get('to')}: {entry['result']}"
        )


def _line(role: str, pair: dict[str, Any]) -> str:
    gate = pair.get("gate") or {}
    passed = gate.get("passed")
    status = pair.get("status") or "served before any pair"
    verdict = status if passed is None else "gate passed" if passed else "gate FAILED"
    share = f" at {pair['share']:.0%}" if pair.get("share") else ""
    figures = pair.get("figures") or {}
    counts = (
        f"; {figures['answers']} answers, down {figures['down_share']:.1%}, "
        f"errors {figures['error_share']:.1%}"
        if figures
        else ""
    )
    return (
        f"{role:<9} {pair['release']:<12} docs {pair.get('collection')} + "
        f"{pair.get('adapter') or 'base model'}{share} ({verdict}{counts})"
    )


def _print_change(result: dict[str, Any]) -> None:
    serving, canary = result.get("serving"), result.get("canary")
    line = f"serving: {serving['release'] if serving else 'no release pair'}"
    if canary:
        line += f"; canary {canary['release']} at {canary['share']:.0%} of conversations"
    typer.echo(line)
    if result.get("converging"):
        typer.echo(f"still converging (the watch finishes it): {result['converging']}")
