"""The vLLM process group is ended whole, and a dead server is restarted, boundedly."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tandem.errors import BadInput, DependencyDown
from tandem.llm.budget import TokenizerCounter, Utf8Bound, check_budget
from tandem.llm.launcher import end_group, group_members, vllm_command, vllm_environment
from tandem.llm.supervisor import VllmSupervisor
from tandem.settings import Settings, VllmSettings


def test_a_group_whose_leader_died_is_still_ended_whole() -> None:
    leader = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & wait"], start_new_session=True)
    pgid = leader.pid
    deadline = time.monotonic() + 10
    while len(group_members(pgid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(group_members(pgid)) == 3
    leader.kill()  # the API server dies first; its "engine" children live on
    leader.wait()
    assert len(group_members(pgid)) == 2
    end_group(pgid, grace_s=5)
    assert group_members(pgid) == []  # (zombies left for init to reap hold no memory)


class FlakyServer:
    """A `Supervised` that dies on command and fails its first `broken_starts` starts."""

    def __init__(self, broken_starts: int = 0) -> None:
        self.starts = 0
        self.stops = 0
        self.broken_starts = broken_starts
        self.reason: str | None = None

    def start(self) -> None:
        self.starts += 1
        self.reason = None

    def wait_healthy(self, timeout_s: float) -> float:
        if self.starts > 1 and self.starts - 1 <= self.broken_starts:
            self.reason = "exited with code 1"
            raise DependencyDown("vLLM exited with code 1")
        return 0.0

    def exit_reason(self) -> str | None:
        return self.reason

    def stop(self, grace_s: float = 15.0) -> None:
        self.stops += 1


def wait_for(check: object, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_dead_server_is_restarted_and_the_reason_kept() -> None:
    server = FlakyServer()
    supervisor = VllmSupervisor(server, max_restarts=3, max_backoff_s=0.01, poll_s=0.01)
    supervisor.start()
    supervisor.watch()
    server.reason = "killed by SIGKILL"
    wait_for(lambda: server.starts == 2 and supervisor.status.state == "running")
    report = supervisor.report()
    assert report == {"state": "running", "restarts": 1, "last_exit": "killed by SIGKILL"}
    assert server.stops >= 1  # the dead one's group was ended before the restart
    supervisor.stop()
    assert supervisor.report()["state"] == "stopped"


def test_restarts_are_bounded() -> None:
    server = FlakyServer(broken_starts=99)
    supervisor = VllmSupervisor(server, max_restarts=2, max_backoff_s=0.01, poll_s=0.01)
    supervisor.start()
    supervisor.watch()
    server.reason = "killed by SIGSEGV"
    wait_for(lambda: supervisor.status.state == "failed")
    assert server.starts == 3 and "exited with code 1" in str(supervisor.report()["last_exit"])
    supervisor.stop()


def test_the_vllm_key_goes_by_environment_never_argv() -> None:
    keyed = Settings(vllm=VllmSettings(api_key="k1"))
    assert "k1" not in vllm_command(keyed) and "--api-key" not in vllm_command(keyed)
    assert vllm_environment(keyed)["VLLM_API_KEY"] == "k1"
    assert "VLLM_API_KEY" not in vllm_environment(Settings())


def test_the_token_budget_counts_with_the_model_tokenizer(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "word " * 100}]
    assert check_budget(messages, 100, 1000, Utf8Bound()) == 508  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="served context of 500"):
        check_budget(messages, 100, 500, Utf8Bound())  # type: ignore[arg-type]
    tokenizer = Settings().model_path / "tokenizer.json"
    if tokenizer.is_file():  # exact counts are far below the byte bound
        used = check_budget(messages, 100, 500, TokenizerCounter(tokenizer))  # type: ignore[arg-type]
        assert 100 <= used < 250


def test_a_prompt_within_the_byte_bound_is_not_tokenized() -> None:
    class Refusing:
        def count(self, text: str) -> int:
            raise AssertionError("the byte bound already showed the prompt fits")

    messages = [{"role": "user", "content": "word " * 100}]
    assert check_budget(messages, 100, 1000, Refusing()) == 508  # type: ignore[arg-type]
    with pytest.raises(AssertionError):  # over the bound: counted exactly
        check_budget(messages, 100, 600, Refusing())  # type: ignore[arg-type]


def test_up_makes_a_vllm_key_per_run_unless_one_is_set() -> None:
    from tandem.cli.up import with_vllm_key

    first, second = with_vllm_key(Settings()), with_vllm_key(Settings())
    assert first.vllm.api_key and second.vllm.api_key and first.vllm.api_key != second.vllm.api_key
    assert with_vllm_key(Settings(vllm=VllmSettings(api_key="mine"))).vllm.api_key == "mine"
    external = Settings(vllm=VllmSettings(url="http://127.0.0.1:9"))
    assert with_vllm_key(external).vllm.api_key is None  # a remote vLLM's key is configured
