"""Validation of adapter folders and registration of immutable versions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from tests.fakes import write_adapter

from tandem.adapters.check import validate_adapter_folder
from tandem.adapters.registry import AdapterRegistry, register_version
from tandem.errors import AdapterInvalid, BadInput, NotFound
from tandem.settings import BASE_MODEL_ID
from tandem.stores.deployment import Stores


def edit_config(folder: Path, **changes: object) -> None:
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_a_well_formed_folder_passes(tmp_path: Path) -> None:
    config = validate_adapter_folder(write_adapter(tmp_path / "a"), BASE_MODEL_ID, 8)
    assert config["r"] == 4


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("rank_too_high", "rank 16"),
        ("bin_weights", "pickle weights"),
        ("wrong_base", "trained on 'other/model'"),
        ("missing_weights", "lacks adapter_model.safetensors"),
        ("missing_config", "lacks adapter_config.json"),
        ("modules_to_save", "modules_to_save"),
        ("dora", "DoRA"),
        ("bad_json", "not valid JSON"),
        ("rank_mismatch", "does not match rank"),
        ("not_safetensors", "not a readable safetensors"),
        ("symlink", "symbolic links"),
    ],
)
def test_broken_folders_are_refused(tmp_path: Path, breakage: str, message: str) -> None:
    folder = write_adapter(tmp_path / "a", rank=16 if breakage == "rank_too_high" else 4)
    weights = folder / "adapter_model.safetensors"
    if breakage == "bin_weights":
        weights.rename(folder / "adapter_model.bin")
    elif breakage == "wrong_base":
        edit_config(folder, base_model_name_or_path="other/model")
    elif breakage == "missing_weights":
        weights.unlink()
    elif breakage == "missing_config":
        (folder / "adapter_config.json").unlink()
    elif breakage == "modules_to_save":
        edit_config(folder, modules_to_save=["lm_head"])
    elif breakage == "dora":
        edit_config(folder, use_dora=True)
    elif breakage == "bad_json":
        (folder / "adapter_config.json").write_text("{not json")
    elif breakage == "rank_mismatch":
        edit_config(folder, r=2)
    elif breakage == "not_safetensors":
        weights.write_bytes(b"\x00" * 4)
    elif breakage == "symlink":
        target = tmp_path / "elsewhere.safetensors"
        weights.rename(target)
        os.symlink(target, weights)
    with pytest.raises(AdapterInvalid, match=message):
        validate_adapter_folder(folder, BASE_MODEL_ID, 8)


def test_register_copies_in_the_next_version_read_only(tmp_path: Path, adapters_root: Path) -> None:
    source = write_adapter(tmp_path / "trained")
    (source / "card.json").write_text('{"metrics": {}}')
    (source / "optimizer.pt.txt").write_text("scratch")  # not copied: not an adapter file
    version = register_version(adapters_root, source, "support", BASE_MODEL_ID, 8)
    assert version.version == "v4" and version.served_name == "support-v4"
    copied = sorted(p.name for p in version.path.iterdir())
    assert copied == ["adapter_config.json", "adapter_model.safetensors", "card.json"]
    mode = (version.path / "adapter_model.safetensors").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not [p for p in (adapters_root / "support").iterdir() if p.name.startswith(".")]


def test_register_refuses_a_broken_folder_and_leaves_nothing(
    tmp_path: Path, adapters_root: Path
) -> None:
    source = write_adapter(tmp_path / "trained")
    (source / "adapter_model.safetensors").rename(source / "adapter_model.bin")
    before = sorted(p.name for p in (adapters_root / "support").iterdir())
    with pytest.raises(AdapterInvalid):
        register_version(adapters_root, source, "support", BASE_MODEL_ID, 8)
    assert sorted(p.name for p in (adapters_root / "support").iterdir()) == before


def test_register_into_a_new_slot_starts_at_v1(tmp_path: Path, adapters_root: Path) -> None:
    source = write_adapter(tmp_path / "trained")
    assert register_version(adapters_root, source, "billing", BASE_MODEL_ID, 8).version == "v1"
    with pytest.raises(BadInput):
        register_version(adapters_root, source, "../escape", BASE_MODEL_ID, 8)


def test_registry_lists_versions_and_reads_the_pointer(
    registry: AdapterRegistry, store: Stores
) -> None:
    assert registry.slots() == ["support"]
    assert [v.version for v in registry.versions("support")] == ["v1", "v2", "v3"]
    assert registry.active("support").version == "v3"  # nothing pinned: the newest
    registry.save_pointer("support", {"active": "v1", "canary": {"version": "v2", "percent": 5}})
    assert registry.active("support").label == "support@v1"
    assert [v.version for v in registry.serving("support")] == ["v1", "v2"]
    with pytest.raises(NotFound):
        registry.get("support", "v9")
    assert store.state.slot_pointer("support").active == "v1"  # shared, not in memory


def test_a_listing_serves_until_the_slot_folder_changes(
    tmp_path: Path, registry: AdapterRegistry, adapters_root: Path
) -> None:
    """Every chat resolves its adapter: the folder is not listed again for each one."""
    assert [v.version for v in registry.versions("support")] == ["v1", "v2", "v3"]
    (adapters_root / "support" / "v3" / "adapter_config.json").unlink()  # folder unchanged
    assert registry.active("support").version == "v3"  # the listing was kept
    assert [v.version for v in registry.versions("support", fresh=True)] == ["v1", "v2"]
    register_version(adapters_root, write_adapter(tmp_path / "new"), "support", BASE_MODEL_ID, 8)
    assert registry.get("support", "v4").version == "v4"  # the folder changed: listed again
    assert registry.versions("billing") == [] and registry.versions("../x") == []


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"hidden_size": 16, "num_attention_heads": 4, "num_hidden_layers": 2}, None),
        ({"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2}, "does not fit"),
        ({"hidden_size": 16, "num_attention_heads": 4, "num_hidden_layers": 1}, "layer 1"),
    ],
)
def test_shapes_are_checked_against_the_base_model(
    tmp_path: Path, model: dict[str, int], message: str | None
) -> None:
    """vLLM pads LoRA weights of the wrong width silently, so Tandem compares them itself."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(model))
    folder = write_adapter(tmp_path / "a")
    if message is None:
        validate_adapter_folder(folder, BASE_MODEL_ID, 8, model_dir)
        return
    with pytest.raises(AdapterInvalid, match=message):
        validate_adapter_folder(folder, BASE_MODEL_ID, 8, model_dir)
