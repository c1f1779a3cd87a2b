"""The newest release is the highest version, not the last name in string order."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.settings import PROJECT_ROOT, Settings, newest_release, release_order


def test_release_names_sort_as_versions() -> None:
    names = ["v4.10", "v4.9", "v10.0", "v4.2", "v4.10.1", "v4.1"]
    assert sorted(names) == ["v10.0", "v4.1", "v4.10", "v4.10.1", "v4.2", "v4.9"]  # the bug
    assert sorted(names, key=release_order) == ["v4.1", "v4.2", "v4.9", "v4.10", "v4.10.1", "v10.0"]
    assert sorted(["2024-10", "2024-9", "2023-12"], key=release_order) == [
        "2023-12",
        "2024-9",
        "2024-10",
    ]
    assert release_order("v4.2") == release_order("v4.2")


def test_the_newest_release_folder_is_the_highest_version(tmp_path: Path) -> None:
    for name in ("v4.9", "v4.10", "v4.2"):
        (tmp_path / name).mkdir()
    (tmp_path / "v9.md").write_text("a file, not a release")
    assert newest_release(tmp_path) == tmp_path / "v4.10"


def test_no_release_folder_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TANDEM_CORPUS"):
        newest_release(tmp_path)


def test_up_indexes_the_newest_sample_release_by_default() -> None:
    assert Settings(corpus=None).corpus_path == newest_release(PROJECT_ROOT / "corpus")
