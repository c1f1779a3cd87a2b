"""The ONNX export cache is named by the weights' content: installs of one model share it."""

from __future__ import annotations

import os
from pathlib import Path

from tandem.rag.onnx_embedder import export_folder


def model(root: Path, weights: bytes) -> Path:
    folder = root / "pkg" / "model"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_two_installs_of_the_same_weights_share_one_folder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = export_folder(model(tmp_path / "venv-1", b"weights" * 1000), cache)
    (first / "model.onnx").write_bytes(b"exported once")
    second = export_folder(model(tmp_path / "venv-2", b"weights" * 1000), cache)
    assert second == first and first.name.startswith("pkg-sha256-")
    links = sorted(p for p in (cache / "onnx").iterdir() if p.is_symlink())
    assert len(links) == 2 and all(link.resolve() == first.resolve() for link in links)
    # the next start of either install goes through its link, without hashing again
    assert export_folder(tmp_path / "venv-1" / "pkg" / "model", cache).resolve() == first


def test_other_weights_get_their_own_folder(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a = export_folder(model(tmp_path / "a", b"weights a" * 100), cache)
    b = export_folder(model(tmp_path / "b", b"weights b" * 100), cache)
    assert a != b


def test_new_weights_at_the_same_path_are_a_new_export(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = model(tmp_path / "venv", b"old weights" * 100)
    old = export_folder(path, cache)
    (path / "model.safetensors").write_bytes(b"fine-tuned" * 110)  # same size, new bytes
    os.utime(path / "model.safetensors", ns=(1, 1))
    assert export_folder(path, cache).resolve() != old.resolve()


def test_a_link_whose_folder_was_deleted_is_remade(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = model(tmp_path / "venv", b"weights" * 100)
    first = export_folder(path, cache)
    first.rmdir()
    again = export_folder(path, cache)
    assert again.is_dir() and again.name == first.name


def test_a_folder_of_the_old_layout_is_used_as_it_is(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = model(tmp_path / "venv", b"weights" * 100)
    link = export_folder(path, cache)
    (cache / "onnx" / link.name).rename(cache / "onnx" / "moved")
    legacy = next(p for p in (cache / "onnx").iterdir() if p.is_symlink())
    legacy.unlink()
    legacy.mkdir()  # what earlier versions made: a real folder named by path, size and mtime
    assert export_folder(path, cache) == legacy
