"""A few real training steps on the prepared base model: LoRA moves, the base does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.documents import Chunk
from tandem.errors import Conflict
from tandem.rag.prompt import build_messages, fallback_sentence
from tandem.settings import get_settings
from tandem.training.recipe import Recipe

pytestmark = pytest.mark.slow

TOPICS = [
    ("Export data", "Open Settings > Export and pick CSV.", "Exports are in CSV or JSON."),
    ("Reset password", "Use the Forgot password link on the sign-in page.", "Links last 1 hour."),
    ("Invite a user", "Go to Team > Invite and enter the email address.", "Invites expire."),
    ("Change plan", "Open Billing > Plan and choose a new plan.", "Changes apply now."),
]


def _examples() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, (heading, text, other) in enumerate(TOPICS):
        chunks = [
            Chunk(file=f"guide/{i}.md", heading=heading, text=text),
            Chunk(file="misc.md", heading="Notes", text=other),
        ]
        question = f"how do I {heading.lower()}?"
        messages = build_messages([{"role": "user", "content": question}], chunks, "v1.0")
        answer = f"{text}\nSources: [1]" if i % 2 == 0 else fallback_sentence("v1.0")
        rows.append({"messages": [*messages, {"role": "assistant", "content": answer}]})
    return rows


@pytest.fixture(scope="module")
def model_ready() -> None:
    if not (get_settings().model_path / "config.json").is_file():
        pytest.fail("the base model is not prepared (run `tandem up` or `make setup` once)")


def _recipe(tmp_path: Path) -> Recipe:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in _examples()))
    return Recipe(
        train_file=data,
        eval_file=data,
        output_dir=tmp_path / "support",
        max_steps=3,
        grad_accum=1,
        logging_steps=1,
        max_len=256,
        lora_r=4,
        lora_alpha=8,
        seed=7,
        threads=1,  # two OpenMP threads crawl when other processes share the cores
    )


def test_fit_moves_lora_weights_only(tmp_path: Path, model_ready: None) -> None:
    import torch
    from rich.console import Console

    from tandem.training.dataset import load_tokenizer
    from tandem.training.train import fit, load_lora_model, prepare_split

    recipe = _recipe(tmp_path)
    tokenizer = load_tokenizer(get_settings().model_path)
    rows, _ = prepare_split(recipe.train_file, tokenizer, recipe)
    model = load_lora_model(recipe, get_settings())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    metrics = fit(recipe, model, tokenizer, rows, [], Console(quiet=True))
    assert metrics["steps"] == 3
    after = dict(model.named_parameters())
    lora = [n for n in before if "lora_" in n]
    base = [n for n in before if "lora_" not in n]
    assert lora and base
    assert any(not torch.equal(before[n], after[n]) for n in lora)
    assert all(torch.equal(before[n], after[n]) for n in base)


def test_main_writes_an_immutable_safetensors_version(tmp_path: Path, model_ready: None) -> None:
    from safetensors.torch import load_file

    from tandem.training.train import main

    recipe = _recipe(tmp_path)
    folder = main(recipe)
    assert folder == tmp_path / "support" / "v1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "card.json",
    ]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == get_settings().model.name
    assert not config.get("modules_to_save") and config["r"] <= get_settings().vllm.max_lora_rank
    weights = load_file(folder / "adapter_model.safetensors")
    assert weights and all("lora_" in name for name in weights)
    assert any(w.abs().sum() > 0 for n, w in weights.items() if "lora_B" in n)  # B starts at 0
    card = json.loads((folder / "card.json").read_text())
    assert card["metrics"]["steps"] == 3 and "eval_loss" in card["metrics"]
    assert card["datasets"]["train"]["sha256"] and card["seed"] == 7
    with pytest.raises(Conflict):
        main(recipe, version="v1")
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no leftovers
