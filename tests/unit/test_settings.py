from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tandem.settings import PROJECT_ROOT, Settings, cpu_flags


def test_contract_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_PORT", "9123")
    monkeypatch.setenv("TANDEM_DATA_DIR", "/tmp/tandem-x")
    monkeypatch.setenv("TANDEM_MODELS_DIR", "/tmp/models-x")
    monkeypatch.setenv("TANDEM_INDEX_ROOTS", "/a, /b")
    monkeypatch.setenv("TANDEM_API_KEYS", "k1,k2")
    monkeypatch.setenv("TANDEM_ADMIN_KEYS", "a1")
    monkeypatch.setenv("TANDEM_VLLM__URL", "http://vllm:8000/")
    monkeypatch.setenv("TANDEM_VLLM__PORT", "8111")
    monkeypatch.setenv("TANDEM_QDRANT__URL", "http://qdrant:6333")
    monkeypatch.setenv("TANDEM_CORPUS", "/docs/v9")
    monkeypatch.setenv("TANDEM_CORPUS_RELEASE", "9.0")
    settings = Settings()
    assert settings.port == 9123
    assert settings.data_dir == Path("/tmp/tandem-x")
    assert settings.qdrant_path == Path("/tmp/tandem-x/qdrant")
    assert settings.model_path == Path("/tmp/models-x/SmolLM2-135M-Instruct")
    assert settings.index_roots == ["/a", "/b"]
    assert settings.api_keys == ["k1", "k2"] and settings.admin_keys == ["a1"]
    assert settings.vllm.endpoints() == ["http://vllm:8000"] and settings.vllm.external
    assert settings.vllm.port == 8111
    assert settings.qdrant.url == "http://qdrant:6333"
    assert settings.corpus_path == Path("/docs/v9") and settings.corpus_release_name == "9.0"
    assert not settings.open_access


def test_defaults_are_local_and_safe() -> None:
    settings = Settings()
    assert settings.open_access and settings.host == "127.0.0.1"
    assert settings.vllm.endpoints() == ["http://127.0.0.1:8001"] and not settings.vllm.external
    assert settings.index_roots == [str(PROJECT_ROOT / "corpus")]
    assert settings.models_dir.resolve() != settings.data_dir.resolve()
    assert settings.corpus_path.parent == PROJECT_ROOT / "corpus"


def test_several_vllm_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_VLLM__URLS", "http://a:8000,http://b:8000/")
    assert Settings().vllm.endpoints() == ["http://a:8000", "http://b:8000"]


def test_open_access_on_a_public_address_is_refused() -> None:
    with pytest.raises(ValidationError, match="only runs open on 127.0.0.1"):
        Settings(host="0.0.0.0")
    Settings(host="0.0.0.0", api_keys=["k"], admin_keys=["a"])


def test_a_key_cannot_be_both_chat_and_admin() -> None:
    with pytest.raises(ValidationError, match="both a chat key and an admin key"):
        Settings(api_keys=["same"], admin_keys=["same"])


def test_widget_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_WIDGET__ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("TANDEM_API_KEYS", "chat1")
    monkeypatch.setenv("TANDEM_WIDGET__KEY", "chat1")
    settings = Settings()
    assert settings.widget.origins == ["https://a.example", "https://b.example"]
    assert settings.widget.key == "chat1" and settings.feedback.retention_days == 30


def test_the_widget_key_must_be_a_chat_key() -> None:
    with pytest.raises(ValidationError, match="chat key"):
        Settings(api_keys=["chat"], admin_keys=["admin"], widget={"key": "admin"})  # type: ignore[arg-type]


def test_cpu_flags_come_from_the_flags_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx512f avx512_bf16\n"
        "bugs\t\t: sysret_ss_attrs\n\nprocessor\t: 1\nflags\t\t: fpu avx512f avx512_bf16\n"
    )
    assert cpu_flags(cpuinfo) == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()
