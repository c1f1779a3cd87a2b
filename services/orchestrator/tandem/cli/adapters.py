"""`tandem adapters list|register|activate|rollback`.

`register` works on the adapters folder (files only); the others call the admin API of a
running Tandem, because only the server can load adapters into vLLM and flip the shared
pointer. Exit codes: 2 invalid input/adapter, 3 key refused, 4 not found, 5 conflict,
6 a dependency (or Tandem itself) is down, 1 anything else.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tandem.errors import TandemError

adapters_app = typer.Typer(
    help="Adapter versions: register, activate (or canary), roll back.", no_args_is_help=True
)
EXIT_CODES = {400: 2, 401: 3, 403: 3, 404: 4, 409: 5, 422: 2, 503: 6}

UrlOption = Annotated[
    str | None, typer.Option("--url", help="a running Tandem; default http://127.0.0.1:PORT")
]
KeyOption = Annotated[
    str | None, typer.Option("--key", help="admin key; default: the first of TANDEM_ADMIN_KEYS")
]
SlotOption = Annotated[str, typer.Option("--slot", help="adapter slot")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def call_admin(method: str, path: str, url: str | None, key: str | None, **kw: Any) -> Any:
    """One admin API call; an error answer becomes a message and an exit code."""
    from tandem.api_client import TandemClient
    from tandem.settings import get_settings

    settings = get_settings()
    base = url or f"http://127.0.0.1:{settings.port}"
    key = key or (settings.admin_keys[0] if settings.admin_keys else None)
    timeout = settings.vllm.request_timeout_s + 60  # a swap probes every replica
    actor = {"X-Tandem-Actor": getpass.getuser()}
    try:
        with TandemClient(base, key, timeout_s=timeout, headers=actor) as api:
            return api.call(method, path, **kw)
    except TandemError as error:
        raise _fail(str(error), EXIT_CODES.get(error.status, 1)) from error


def _print_swap(result: dict[str, Any]) -> None:
    canary = result.get("canary")
    line = f"{result['slot']}: {result['active']} active"
    if canary:
        line += f", canary {canary['version']} at {canary['percent']}%"
    if not result.get("changed"):
        typer.echo(f"{line} (nothing to change)")
        return
    replicas = len(result.get("loaded_on", []))
    typer.echo(f"{line}; loaded and probed on {replicas} replica(s) in {result['seconds']} s")
    if result.get("retiring"):
        typer.echo(f"unloading when idle: {', '.join(result['retiring'])}")


@adapters_app.command("list")
def list_command(
    url: UrlOption = None,
    key: KeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the raw JSON")] = False,
) -> None:
    """Slots, the active version and canary, every version with its requests and errors."""
    body = call_admin("GET", "/v1/admin/adapters", url, key)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for slot in body["slots"]:
        canary = slot["canary"]
        extra = f", canary {canary['version']} at {canary['percent']}%" if canary else ""
        typer.echo(f"{slot['slot']}: active {slot['active']}{extra}")
        for row in slot["versions"]:
            typer.echo(
                f"  {row['version']:<5} {row['role'] or '':<7} requests={row['requests']:<6} "
                f"errors={row['errors']:<4} loaded on {len(row['loaded_on'])} replica(s)"
            )


@adapters_app.command("register")
def register_command(
    path: Annotated[Path, typer.Argument(help="a trained adapter folder (peft, safetensors)")],
    slot: SlotOption = "support",
) -> None:
    """Validate a trained folder and copy it in as the slot's next immutable version."""
    from tandem.adapters.registry import register_version
    from tandem.settings import get_settings

    settings = get_settings()
    try:
        version = register_version(
            settings.adapters_dir,
            path,
            slot,
            settings.model.name,
            settings.vllm.max_lora_rank,
            settings.model_path,
        )
    except TandemError as error:
        raise _fail(str(error), EXIT_CODES.get(error.status, 1)) from error
    typer.echo(f"registered {version.label} at {version.path}")
    typer.echo(f"serve it with: tandem adapters activate {version.version} --slot {slot}")


@adapters_app.command("activate")
def activate_command(
    version: Annotated[str, typer.Argument(help="version to serve, e.g. v2")],
    slot: SlotOption = "support",
    percent: Annotated[
        int, typer.Option(min=1, max=100, help="share of conversations (below 100: canary)")
    ] = 100,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Load VERSION into every vLLM replica, probe it, then serve it."""
    body = {"version": version, "percent": percent}
    _print_swap(call_admin("POST", f"/v1/admin/adapters/{slot}/activate", url, key, json=body))


@adapters_app.command("rollback")
def rollback_command(
    slot: SlotOption = "support", url: UrlOption = None, key: KeyOption = None
) -> None:
    """End the canary, or go back to the previously active version."""
    _print_swap(call_admin("POST", f"/v1/admin/adapters/{slot}/rollback", url, key))
