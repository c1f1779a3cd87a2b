"""SIGKILL in each step of a promote: after a restart exactly one pair serves, its docs alias
and adapter pointer agree with it, and the journal says what happened.

The promote runs in a child process (the real app over the same data dir, vLLM played at the
transport), which kills itself with SIGKILL right after the step named by the crash variable;
the parent then starts the app again on that data dir, as a restarted `tandem up` would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import ROOT
from tests.fakes import FakeVllm
from tests.unit.releases.conftest import OPEN_GATE, App, open_app, release_settings

from tandem.releases.promote import CRASH_AT_ENV

CHILD = """
import sys
from pathlib import Path
from tests.fakes import FakeVllm
from tests.unit.releases.conftest import open_app, release_settings

replicas = [FakeVllm("http://vllm-a:8000"), FakeVllm("http://vllm-b:8000")]
settings = release_settings(Path(sys.argv[1]), replicas, create=False)
for app in open_app(settings, replicas, index=False):
    response = app.admin("POST", "/v1/admin/releases/next/promote", json={})
    print("PROMOTED", response.status_code, response.text, flush=True)
"""


def replicas() -> list[FakeVllm]:
    return [FakeVllm("http://vllm-a:8000"), FakeVllm("http://vllm-b:8000")]


def prepared(root: Path) -> None:
    """Pair `first` serves (v4.1 docs, support@v1); pair `next` (v4.2, support@v2) is gated."""
    fakes = replicas()
    for app in open_app(release_settings(root, fakes), fakes):
        qa = f"{app.settings.releases.qa_roots[0]}/release.jsonl"
        first = {"path": str(ROOT / "corpus" / "v4.1"), "qa": qa, "adapter": "support@v1",
                 "gate": OPEN_GATE}  # fmt: skip
        response = app.admin("POST", "/v1/admin/releases", json={"release": "first", **first})
        assert app.wait(response.json()["job"])["status"] == "succeeded"
        assert app.admin("POST", "/v1/admin/releases/first/promote").status_code == 200
        assert app.plan("next", OPEN_GATE, adapter="support@v2")["status"] == "succeeded"


def check_one_pair_serves(app: App) -> dict[str, object]:
    overview = app.overview()
    serving = overview["serving"]
    assert overview["pending"] is None and overview["drift"] == []
    assert app.services.stores.docs.pointer_target("docs") == serving["collection"]
    slot, _, version = serving["adapter"].partition("@")
    assert app.services.registry.pointer(slot, fresh=True)["active"] == version
    pair = app.releases.pointer.serving("id:any")
    assert pair is not None and pair.release == serving["release"]
    return overview


@pytest.mark.parametrize(
    ("step", "serving"),
    [("begun", "first"), ("switched", "next"), ("docs", "next"), ("adapter", "next")],
)
def test_a_promote_killed_in_any_step_converges_on_restart(
    tmp_path: Path, step: str, serving: str
) -> None:
    prepared(tmp_path)
    env = {**os.environ, CRASH_AT_ENV: step,
           "PYTHONPATH": f"{ROOT}:{ROOT / 'services' / 'orchestrator'}"}  # fmt: skip
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert child.returncode == -9, child.stdout + child.stderr
    assert "PROMOTED" not in child.stdout

    fakes = replicas()
    for app in open_app(release_settings(tmp_path, fakes, create=False), fakes, index=False):
        overview = check_one_pair_serves(app)
        assert overview["serving"]["release"] == serving  # type: ignore[index]
        last = overview["journal"][0]  # type: ignore[index]
        assert last["op"] == "promote" and last["to"] == "next"
        if step == "begun":
            assert last["step"] == "aborted" and "first kept serving" in last["result"]
        else:
            assert last["step"] == "done" and "finished" in last["result"]
        # and it promotes (or rolls back) normally afterwards
        if serving == "first":
            assert app.admin("POST", "/v1/admin/releases/next/promote").status_code == 200
        else:
            assert app.admin("POST", "/v1/admin/releases/rollback").status_code == 200
        check_one_pair_serves(app)
