"""`tandem release plan|promote|rollback|list` against the real app served over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import CORPUS
from tests.fakes import FakeVllm
from tests.integration.app_server import serve
from tests.unit.releases.conftest import release_settings
from typer.testing import CliRunner

from tandem.api.app import build_services
from tandem.cli import app as cli
from tandem.indexing.reindex import index_release
from tandem.llm.pool import VllmPool
from tandem.rag.embedder import HashEmbedder
from tandem.settings import get_settings


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    replicas = [FakeVllm("http://vllm-a:8000")]
    settings = release_settings(tmp_path, replicas)
    embedder = HashEmbedder()
    services = build_services(settings, embedder, pool=VllmPool([r.client() for r in replicas]))
    index_release(services.stores, embedder, CORPUS / "v4.1", "v4.1", "docs")
    monkeypatch.setenv("TANDEM_ADAPTERS_DIR", str(settings.adapters_dir))
    get_settings.cache_clear()
    yield from serve(settings, services)
    get_settings.cache_clear()


def tandem(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["release", *args, "--url", url, "--key", "admin"])
    return result.exit_code, result.output


def gate_file(folder: Path, **thresholds: float | None) -> str:
    values = {"min_coverage": None, "min_source_hit": None, "min_compliance": None,
              "min_citation_validity": None, **thresholds}  # fmt: skip
    path = folder / "gate.json"
    path.write_text(json.dumps(values))
    return str(path)


def test_plan_promote_list_rollback(url: str, tmp_path: Path) -> None:
    docs = str(CORPUS / "v4.2")
    code, out = tandem(url, "plan", "a", "--docs", docs, "--adapter", "support@v1",
                       "--gate-file", gate_file(tmp_path))  # fmt: skip
    assert code == 0, out
    assert "a: gate passed (0 QA questions, 20 about changed pages)" in out
    assert "tandem release promote a" in out
    code, out = tandem(url, "promote", "a")
    assert code == 0 and "serving: a" in out, out

    strict, qa = gate_file(tmp_path, min_compliance=0.9), str(tmp_path / "qa" / "release.jsonl")
    code, out = tandem(url, "plan", "b", "--docs", docs, "--adapter", "support@v2",
                       "--gate-file", strict, "--qa", qa)  # fmt: skip
    assert code == 1 and "b: gate FAILED" in out and "format compliance" in out, out
    code, out = tandem(url, "promote", "b")
    assert code == 5 and "failed its gate" in out, out
    code, out = tandem(url, "promote", "b", "--force", "--canary", "0.2")
    assert code == 0 and "canary b at 20% of conversations" in out, out

    code, out = tandem(url, "list")
    assert code == 0, out
    assert "serving   a" in out and "canary    b" in out and "gate FAILED" in out
    code, out = tandem(url, "rollback")
    assert code == 0 and "serving: a" in out and "canary" not in out, out
    code, out = tandem(url, "list", "--json")
    body = json.loads(out)
    assert body["canary"] is None and body["journal"][0]["ended_canary"] == "b"


def test_an_unknown_release_and_a_bad_folder_say_so(url: str) -> None:
    code, out = tandem(url, "promote", "nope")
    assert code == 4 and "no release 'nope'" in out
    code, out = tandem(url, "plan", "c", "--docs", "/etc")
    assert code == 3 and "outside the folders" in out
