"""`tandem train RECIPE`: a peft LoRA adapter for the served base model, as an immutable version.

Heavy imports (torch, transformers, peft) happen inside `main`, so `tandem --help` stays instant.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from tandem.adapters.check import validate_adapter_folder
from tandem.adapters.versions import claim_version, publish, served_name
from tandem.settings import Settings, get_settings
from tandem.training.adapter_output import finalize_adapter, staging_dir, write_card
from tandem.training.dataset import (
    Message,
    answers_with_fallback,
    file_sha256,
    load_examples,
    load_tokenizer,
    tokenize_example,
)
from tandem.training.recipe import Recipe, RecipeError, load_recipe


def _check_servable(recipe: Recipe, settings: Settings) -> str:
    """The served base model name; refuses recipes vLLM could not serve."""
    if recipe.lora_r > settings.vllm.max_lora_rank:
        raise RecipeError(
            f"lora_r={recipe.lora_r} is above vLLM's --max-lora-rank {settings.vllm.max_lora_rank}"
        )
    if recipe.base_model and recipe.base_model != settings.model.name:
        raise RecipeError(
            f"the recipe is for {recipe.base_model} but the prepared base model is "
            f"{settings.model.name} (TANDEM_MODEL__NAME)"
        )
    if not (settings.model_path / "config.json").is_file():
        raise RecipeError(
            f"the base model is not prepared at {settings.model_path}; run `tandem up` once"
        )
    return settings.model.name


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def cap_fallback_share(
    examples: list[list[Message]], share: float, seed: int
) -> list[list[Message]]:
    """The examples with seeded fallback ones left out until at most `share` of them remain."""
    fallback = [i for i, e in enumerate(examples) if answers_with_fallback(e)]
    answered = len(examples) - len(fallback)
    keep = min(len(fallback), int(share * answered / (1 - share)))
    dropped = set(random.Random(seed).sample(fallback, len(fallback) - keep))
    return [e for i, e in enumerate(examples) if i not in dropped]


def prepare_split(
    path: Path,
    tokenizer: Any,
    recipe: Recipe,
    subset: int | None = None,
    fallback_share: float | None = None,
) -> tuple[list[dict[str, list[int]]], dict[str, Any]]:
    """Tokenised rows with the answer-only label mask, and what the card records of the file."""
    examples = load_examples(path)
    if fallback_share is not None:
        examples = cap_fallback_share(examples, fallback_share, recipe.seed)
    if subset is not None and subset < len(examples):
        picked = sorted(random.Random(recipe.seed).sample(range(len(examples)), subset))
        examples = [examples[i] for i in picked]
    rows, too_long, fallback = [], 0, 0
    for messages in examples:
        tokenized = tokenize_example(messages, tokenizer)
        if len(tokenized.input_ids) > recipe.max_len:
            too_long += 1
            continue
        fallback += answers_with_fallback(messages)
        ids, labels = tokenized.input_ids, tokenized.labels
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    if not rows:
        raise RecipeError(f"no example of {path} fits max_len={recipe.max_len}")
    info = {
        "file": _relative(path, recipe.output_dir),
        "sha256": file_sha256(path),
        "examples": len(rows),
        "too_long": too_long,
        "fallback_examples": fallback,
        "tokens": sum(len(r["input_ids"]) for r in rows),
    }
    return rows, info


def _training_args(recipe: Recipe, scratch: str, has_eval: bool) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=scratch,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.grad_accum,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler,
        warmup_steps=recipe.warmup_ratio,  # transformers 5: below 1 it is a share of the steps
        weight_decay=recipe.weight_decay,
        logging_steps=recipe.logging_steps,
        logging_first_step=True,
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="no",
        report_to="none",
        seed=recipe.seed,
        data_seed=recipe.seed,
        disable_tqdm=True,
        prediction_loss_only=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
    )


def _final_eval_loss(trainer: Any) -> float:
    """The eval loss after the last step: logged at the last epoch end, else measured now."""
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry.get("step") == step:
            return float(entry["eval_loss"])
    return float(trainer.evaluate()["eval_loss"])


def _card(
    recipe: Recipe,
    target: Path,
    base: str,
    settings: Settings,
    data: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    from tandem.llm.model_prep import base_model_hash

    try:
        base_hash = base_model_hash(settings.model_path)
    except (OSError, KeyError, ValueError):
        base_hash = "unknown (model folder not prepared by tandem)"
    recipe_values = recipe.model_dump(mode="json")
    for key in ("train_file", "eval_file", "output_dir"):
        value = getattr(recipe, key)
        recipe_values[key] = _relative(value, recipe.output_dir) if value else None
    return {
        "slot": target.parent.name,
        "version": target.name,
        "served_name": served_name(target.parent.name, target.name),
        "base_model": {"name": base, "hash": base_hash},
        "datasets": data,
        "recipe": recipe_values,
        "metrics": metrics,
        "seed": recipe.seed,
        "lora": {
            "r": recipe.lora_r,
            "alpha": recipe.lora_alpha,
            "target_modules": recipe.target_modules,
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "software": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
    }


def load_lora_model(recipe: Recipe, settings: Settings) -> Any:
    """The base model with fresh LoRA layers on the recipe's target modules."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(settings.model_path), dtype=torch.float32)
    return get_peft_model(
        model,
        LoraConfig(
            task_type="CAUSAL_LM",
            r=recipe.lora_r,
            lora_alpha=recipe.lora_alpha,
            lora_dropout=recipe.lora_dropout,
            target_modules=recipe.target_modules,
        ),
    )


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` torch threads (None: as they are), then restore the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(
    recipe: Recipe,
    model: Any,
    tokenizer: Any,
    train_rows: list[dict[str, list[int]]],
    eval_rows: list[dict[str, list[int]]],
    console: Console,
) -> dict[str, Any]:
    """Run the transformers Trainer on the rows (with the recipe's torch threads); return the
    metrics for the card."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq
    from transformers.trainer_callback import PrinterCallback

    from tandem.training.trainer import AnswerOnlyTrainer, RichProgress

    with (
        torch_threads(recipe.threads),
        tempfile.TemporaryDirectory(prefix="tandem-train-") as scratch,
    ):
        trainer = AnswerOnlyTrainer(
            model=model,
            args=_training_args(recipe, scratch, bool(eval_rows)),
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
            callbacks=[RichProgress(console)],
        )
        trainer.remove_callback(PrinterCallback)  # the rich progress prints the logs
        metrics: dict[str, Any] = {}
        if eval_rows and recipe.eval_before:
            metrics["eval_loss_before"] = round(float(trainer.evaluate()["eval_loss"]), 4)
        result = trainer.train()
        metrics.update(_train_metrics(trainer, result))
        if eval_rows:
            metrics["eval_loss"] = round(_final_eval_loss(trainer), 4)
    return metrics


def _train_metrics(trainer: Any, result: Any) -> dict[str, Any]:
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return {
        "train_loss": round(float(result.training_loss), 4),
        "first_logged_loss": round(losses[0], 4) if losses else None,
        "last_logged_loss": round(losses[-1], 4) if losses else None,
        "steps": trainer.state.global_step,
        "epochs": round(float(trainer.state.epoch or 0), 2),
        "train_runtime_s": round(float(result.metrics["train_runtime"]), 1),
    }


def main(recipe: Recipe, version: str | None = None) -> Path:
    """Train the adapter `recipe` describes (absolute paths); return its new version folder."""
    settings = get_settings()
    base = _check_servable(recipe, settings)
    target = claim_version(recipe.output_dir, version)
    from transformers import set_seed

    console = Console()
    set_seed(recipe.seed)
    tokenizer = load_tokenizer(settings.model_path)
    train_rows, train_info = prepare_split(
        recipe.train_file, tokenizer, recipe, recipe.max_train_examples, recipe.fallback_share
    )
    data = {"train": train_info}
    eval_rows: list[dict[str, list[int]]] = []
    if recipe.eval_file is not None:
        eval_rows, data["eval"] = prepare_split(recipe.eval_file, tokenizer, recipe)
    name = served_name(target.parent.name, target.name)
    console.print(
        f"training {name} on {train_info['examples']} examples "
        f"({train_info['too_long']} over max_len left out), evaluating on {len(eval_rows)}",
        markup=False,
    )
    model = load_lora_model(recipe, settings)
    staging = staging_dir(target)
    try:
        metrics = fit(recipe, model, tokenizer, train_rows, eval_rows, console)
        metrics["train_tokens_per_epoch"] = train_info["tokens"]
        model.save_pretrained(str(staging), safe_serialization=True)
        finalize_adapter(staging, base)
        # the same check the registry runs before vLLM sees a version: never publish less
        validate_adapter_folder(staging, base, settings.vllm.max_lora_rank, settings.model_path)
        write_card(staging, _card(recipe, target, base, settings, data, metrics))
        publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    console.print(
        f"adapter {name} written to {target}",
        markup=False,
        soft_wrap=True,
    )
    return target


def train_command(recipe_path: Path, overrides: list[str], version: str | None = None) -> Path:
    """`tandem train RECIPE [--set key=value ...] [--version vN]`; returns the version folder."""
    return main(load_recipe(Path(recipe_path), overrides), version)
