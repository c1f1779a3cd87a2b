"""The local vLLM's command line and environment follow the settings (issue 13's levers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.llm.launcher import vllm_command, vllm_environment
from tandem.settings import Settings, cpu_dtype


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_defaults_are_the_measured_cpu_settings() -> None:
    settings = Settings()
    command = vllm_command(settings)
    assert command[1:3] == ["-m", "tandem.vllm_cpu.entry"]
    assert _flag(command, "--dtype") == cpu_dtype()  # bfloat16 on this project's CI CPU
    assert "--enable-prefix-caching" in command and "--enable-lora" in command
    assert "--max-num-seqs" not in command  # vLLM's own default unless set
    env = vllm_environment(settings)
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert env["TANDEM_VLLM_LORA_KERNEL"] == "grouped"  # tandem/vllm_cpu/tuning.py


def test_each_lever_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_VLLM__DTYPE", "float32")
    monkeypatch.setenv("TANDEM_VLLM__LORA_KERNEL", "vllm")
    monkeypatch.setenv("TANDEM_VLLM__PREFIX_CACHING", "false")
    monkeypatch.setenv("TANDEM_VLLM__MAX_NUM_SEQS", "8")
    monkeypatch.setenv("TANDEM_VLLM__MAX_NUM_BATCHED_TOKENS", "1024")
    monkeypatch.setenv("TANDEM_VLLM__THREADS_BIND", "0-1")
    monkeypatch.setenv("TANDEM_VLLM__RESERVED_CPUS", "0")
    monkeypatch.setenv("TANDEM_VLLM__BUSY_WAIT_MS", "0.5")
    settings = Settings()
    command = vllm_command(settings)
    assert _flag(command, "--dtype") == "float32"
    assert "--no-enable-prefix-caching" in command
    assert _flag(command, "--max-num-seqs") == "8"
    assert _flag(command, "--max-num-batched-tokens") == "1024"
    env = vllm_environment(settings)
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1" and env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert env["TANDEM_VLLM_LORA_KERNEL"] == "vllm" and env["TANDEM_VLLM_BUSY_WAIT_MS"] == "0.5"


def test_a_model_served_without_adapters_has_no_lora_flags() -> None:
    command = vllm_command(Settings(), lora=False)
    assert not [a for a in command if "lora" in a]


def test_bfloat16_only_where_the_cpu_has_bf16_units(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert cpu_dtype(cpuinfo) == "bfloat16"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 fma\n")
    assert cpu_dtype(cpuinfo) == "float32"
    assert cpu_dtype(tmp_path / "absent") == "float32"  # not Linux: no /proc/cpuinfo
