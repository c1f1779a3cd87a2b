"""Version names, served names and claiming the next vN: one home for training and registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.adapters.versions import (
    existing_versions,
    is_served_name_of,
    next_version,
    publish_next,
    served_name,
    version_number,
)
from tandem.errors import NotFound


def test_served_names_are_distinct_per_version_and_recognised() -> None:
    assert served_name("support", "v3") == "support-v3"
    assert is_served_name_of("support", "support-v3")
    assert not is_served_name_of("support", "support-v0")
    assert not is_served_name_of("support", "support-latest")
    assert not is_served_name_of("support", "other-v3")
    assert not is_served_name_of("support", "support-v3-extra")


def test_version_numbers_and_the_next_free_name(tmp_path: Path) -> None:
    assert version_number("v12") == 12
    with pytest.raises(NotFound):
        version_number("12")
    assert existing_versions(tmp_path / "missing") == []
    assert next_version(tmp_path) == "v1"
    for name in ("v1", "v3", "v03", ".v4.partial-1"):
        (tmp_path / name).mkdir()
    assert existing_versions(tmp_path) == [1, 3]
    assert next_version(tmp_path) == "v4"


def test_publish_next_takes_the_next_number_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    first, second = tmp_path / ".a", tmp_path / ".b"
    first.mkdir()
    second.mkdir()
    assert publish_next(first, tmp_path) == tmp_path / "v2"
    assert publish_next(second, tmp_path) == tmp_path / "v3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1", "v2", "v3"]
