"""The training recipe: a YAML file of hyper-parameters, with `key=value` overrides from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.errors import BadInput
from tandem.settings import BASE_MODEL_ID

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
_PATH_KEYS = ("train_file", "eval_file", "output_dir")


class RecipeError(BadInput):
    """A recipe file or override that cannot be used."""


class Recipe(BaseModel):
    """Everything a training run depends on besides the base model. Relative paths are
    relative to the recipe file; `output_dir` receives the version folders `v1`, `v2`, ..."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    # The served base model name (written into adapter_config.json); must match the prepared one.
    base_model: str | None = BASE_MODEL_ID
    train_file: Path = Path("data/train.jsonl")
    eval_file: Path | None = Path("data/eval.jsonl")
    output_dir: Path = Path(".")
    max_train_examples: int | None = Field(default=None, ge=1)  # a seeded subset of train_file
    # Share of training examples answered with the fallback sentence: fallback examples are
    # left out (seeded) until at most this share remains. None: train_file as it is.
    fallback_share: float | None = Field(default=None, ge=0.0, lt=1.0)
    max_len: int = Field(default=1024, ge=64)  # longer examples are left out, and counted

    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(ALL_LINEAR))

    epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=1, ge=1)
    grad_accum: int = Field(default=8, ge=1)
    warmup_ratio: float = Field(default=0.05, ge=0.0, lt=1.0)
    lr_scheduler: str = "cosine"
    weight_decay: float = Field(default=0.0, ge=0.0)
    seed: int = 42
    logging_steps: int = Field(default=5, ge=1)
    eval_before: bool = False  # also measure the eval loss of the untrained adapter
    threads: int | None = Field(default=None, ge=1)

    def resolved(self, base: Path) -> Recipe:
        """A copy whose relative paths are made absolute against `base`."""
        updates: dict[str, Any] = {}
        for key in _PATH_KEYS:
            value = getattr(self, key)
            if value is not None and not value.is_absolute():
                updates[key] = (base / value).resolve()
        return self.model_copy(update=updates)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """`["epochs=2", "target_modules=[q_proj, v_proj]"]` -> values parsed as YAML."""
    parsed: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"override {item!r} is not of the form key=value")
        parsed[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return parsed


def check_keys(values: dict[str, Any], source: str) -> None:
    """Refuse keys the recipe does not know, naming them and the known ones."""
    unknown = sorted(set(values) - set(Recipe.model_fields))
    if unknown:
        raise RecipeError(
            f"unknown recipe keys in {source}: {', '.join(unknown)} "
            f"(known keys: {', '.join(Recipe.model_fields)})"
        )


def build_recipe(values: dict[str, Any], source: str) -> Recipe:
    """A validated Recipe from plain values; errors name the key and what is wrong."""
    check_keys(values, source)
    try:
        return Recipe.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise RecipeError(f"invalid recipe {source}: {problems}") from error


def load_recipe(path: Path, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe, apply CLI overrides, resolve paths against the recipe's folder."""
    if not path.is_file():
        raise RecipeError(f"recipe {path} does not exist")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise RecipeError(f"recipe {path} must be a YAML mapping of key: value")
    check_keys(values, str(path))
    extra = parse_overrides(overrides or [])
    check_keys(extra, "--set overrides")
    return build_recipe({**values, **extra}, str(path)).resolved(path.resolve().parent)
