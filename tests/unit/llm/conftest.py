"""Fixtures: two fake vLLM replicas, adapter folders v1..v3, in-memory stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.fakes import HIDDEN, FakeVllm, memory_stores, write_adapter

from tandem.adapters.registry import AdapterRegistry
from tandem.llm.pool import VllmPool
from tandem.settings import AdapterSettings, Settings, VllmSettings
from tandem.stores.deployment import Stores


@pytest.fixture
def replicas() -> list[FakeVllm]:
    return [FakeVllm("http://vllm-a:8000"), FakeVllm("http://vllm-b:8000")]


@pytest.fixture
def adapters_root(tmp_path: Path) -> Path:
    root = tmp_path / "adapters"
    for n in (1, 2, 3):
        write_adapter(root / "support" / f"v{n}")
    return root


@pytest.fixture
def store() -> Stores:
    return memory_stores(8)


@pytest.fixture
def settings(tmp_path: Path, adapters_root: Path, replicas: list[FakeVllm]) -> Settings:
    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        adapters_dir=adapters_root,
        vllm=VllmSettings(urls=[r.url for r in replicas], max_lora_rank=8),
        adapter=AdapterSettings(unload_grace_s=0.0, check_interval_s=0.1),
    )
    settings.model_path.mkdir(parents=True)  # a base model the fake adapters fit
    base = {"hidden_size": HIDDEN, "num_attention_heads": 4, "num_hidden_layers": 2}
    (settings.model_path / "config.json").write_text(json.dumps(base))
    return settings


@pytest.fixture
def registry(adapters_root: Path, store: Stores) -> AdapterRegistry:
    return AdapterRegistry(adapters_root, store.state)


@pytest.fixture
def pool(replicas: list[FakeVllm]) -> VllmPool:
    return VllmPool([r.client() for r in replicas])
