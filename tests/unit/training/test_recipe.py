"""Recipes (YAML + overrides, unknown keys refused) and immutable version folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.adapters.versions import claim_version, publish
from tandem.errors import BadInput, Conflict
from tandem.training.adapter_output import finalize_adapter, staging_dir
from tandem.training.dataset import answers_with_fallback
from tandem.training.recipe import RecipeError, load_recipe
from tandem.training.train import cap_fallback_share


def recipe_file(tmp_path: Path, text: str = "epochs: 2\nlora_r: 8\n") -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_yaml_values_overrides_and_relative_paths(tmp_path: Path) -> None:
    recipe = load_recipe(recipe_file(tmp_path), ["epochs=3", "target_modules=[q_proj, v_proj]"])
    assert recipe.epochs == 3 and recipe.lora_r == 8
    assert recipe.target_modules == ["q_proj", "v_proj"]
    assert recipe.train_file == tmp_path / "data" / "train.jsonl"
    assert recipe.output_dir == tmp_path


def test_unknown_keys_are_listed(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="unknown recipe keys in .*: epoch, lr"):
        load_recipe(recipe_file(tmp_path, "epoch: 1\nlr: 0.1\n"))
    with pytest.raises(RecipeError, match="--set overrides: rank"):
        load_recipe(recipe_file(tmp_path), ["rank=4"])


def test_bad_values_and_overrides(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="learning_rate"):
        load_recipe(recipe_file(tmp_path), ["learning_rate=-1"])
    with pytest.raises(RecipeError, match="key=value"):
        load_recipe(recipe_file(tmp_path), ["epochs"])
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")


def test_versions_are_claimed_in_order_and_never_reused(tmp_path: Path) -> None:
    assert claim_version(tmp_path, None) == tmp_path / "v1"
    (tmp_path / "v1").mkdir()
    (tmp_path / "v3").mkdir()
    assert claim_version(tmp_path, None) == tmp_path / "v4"
    assert claim_version(tmp_path, "v2") == tmp_path / "v2"
    with pytest.raises(Conflict, match="immutable"):
        claim_version(tmp_path, "v3")
    with pytest.raises(BadInput):
        claim_version(tmp_path, "latest")


def test_publish_is_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "v1"
    staging = staging_dir(target)
    (staging / "adapter_model.safetensors").write_bytes(b"x")
    (staging / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "/local/path", "modules_to_save": None, "r": 8})
    )
    (staging / "README.md").write_text("peft's card")
    config = finalize_adapter(staging, "org/served-name")
    assert config["base_model_name_or_path"] == "org/served-name"
    assert sorted(p.name for p in staging.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert publish(staging, target) == target and not staging.exists()
    again = staging_dir(target)
    with pytest.raises(Conflict):
        publish(again, target)


def test_stale_partial_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".v1.partial-999999999"
    stale.mkdir()
    staging_dir(tmp_path / "v1")
    assert not stale.exists()


def _example(answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}]


def test_fallback_share_leaves_out_fallback_examples_only() -> None:
    fallback = "I couldn't find this in the documentation for release v4.2."
    examples = [_example(f"Answer {i}.\n\nSources: [1]") for i in range(90)]
    examples += [_example(fallback) for _ in range(30)]
    capped = cap_fallback_share(examples, 0.1, seed=42)
    kept = [e for e in capped if answers_with_fallback(e)]
    assert len(capped) - len(kept) == 90  # every answered example stays
    assert len(kept) == 10 and len(kept) / len(capped) <= 0.1
    assert capped == cap_fallback_share(examples, 0.1, seed=42)  # seeded
    assert cap_fallback_share(examples, 0.5, seed=42) == examples  # already below the cap
    assert not any(answers_with_fallback(e) for e in cap_fallback_share(examples, 0.0, seed=1))


def test_fallback_share_must_be_a_share(tmp_path: Path) -> None:
    assert load_recipe(recipe_file(tmp_path), ["fallback_share=0.1"]).fallback_share == 0.1
    with pytest.raises(RecipeError):
        load_recipe(recipe_file(tmp_path), ["fallback_share=1.5"])


def test_warmup_ratio_reaches_the_trainer_as_a_ratio(tmp_path: Path) -> None:
    from tandem.training.train import _training_args

    recipe = load_recipe(recipe_file(tmp_path, "warmup_ratio: 0.1\n"))
    args = _training_args(recipe, str(tmp_path / "scratch"), has_eval=False)
    # transformers 5 reads a warmup_steps below 1 as a share of the total steps
    assert args.get_warmup_steps(200) == 20 and args.get_warmup_steps(50) == 5
