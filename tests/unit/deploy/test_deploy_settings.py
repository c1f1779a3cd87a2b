"""Every TANDEM_* name the deploy files set is a setting, and each container's settings are
complete: built from the image's ENV plus the file's environment, they validate and name the
external services, keys and mounted folders a production replica needs."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import BaseModel
from tests.unit.deploy.deploy_files import (
    Container,
    all_containers,
    compose_containers,
    image_env,
    kubernetes_containers,
    manifests,
    secret_placeholders,
)

from tandem.settings import Settings

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_setting(name: str) -> bool:
    """TANDEM_VLLM__URLS -> Settings.vllm.urls, following nested groups."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("TANDEM_").lower().split("__")
    for depth, part in enumerate(parts):
        info = model.model_fields.get(part)
        if info is None:
            return False
        if depth < len(parts) - 1:
            annotation = info.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def tandem_containers() -> list[Container]:
    return [c for c in all_containers() if c.runs_orchestrator_image]


def settings_of(container: Container, monkeypatch: pytest.MonkeyPatch, adapters: Path) -> Settings:
    """The settings the container would build: image ENV, then the file's environment. The
    adapters folder is a mount, so it is checked to be one and replaced by a local folder."""
    env = {**image_env(), **container.env}
    assert env["TANDEM_ADAPTERS_DIR"] in container.mounts, container.source
    for name in [n for n in os.environ if n.startswith("TANDEM_")]:
        monkeypatch.delenv(name)
    for name, value in {**env, "TANDEM_ADAPTERS_DIR": str(adapters)}.items():
        if name.startswith("TANDEM_"):
            monkeypatch.setenv(name, value)
    return Settings()


def test_the_image_and_the_files_set_only_existing_settings() -> None:
    names = {name for c in all_containers() for name in c.env if name.startswith("TANDEM_")}
    names |= {name for name in image_env() if name.startswith("TANDEM_")}
    assert len(names) >= 10  # the readers found the environments
    unknown = sorted(name for name in names if not is_setting(name))
    assert not unknown, f"not in tandem/settings.py: {unknown}"


def test_a_misspelt_name_is_caught() -> None:
    assert is_setting("TANDEM_VLLM__URLS") and is_setting("TANDEM_ADAPTERS_DIR")
    assert not is_setting("TANDEM_VLLM__URL_LIST") and not is_setting("TANDEM_QDRANT__KEY")


@pytest.mark.parametrize("container", tandem_containers(), ids=lambda c: c.source)
def test_each_tandem_container_has_complete_settings(
    container: Container, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_of(container, monkeypatch, tmp_path)
    assert settings.qdrant.url and settings.qdrant.api_key, "a Qdrant server and its key"
    assert all(root in container.mounts for root in settings.index_roots)
    assert settings.model.path is None or str(settings.model.path) in container.mounts
    assert settings.data_dir.is_absolute() and settings.models_dir.is_relative_to(
        settings.data_dir
    ), "the embedder's export must land in the writable data dir"
    if settings.host not in LOCAL_HOSTS:  # serves the API: keys, and vLLM with its key
        assert settings.api_keys and settings.admin_keys
        assert settings.vllm.external and settings.vllm.api_key


@pytest.mark.parametrize("container", tandem_containers(), ids=lambda c: c.source)
def test_containers_that_listen_refuse_to_run_without_keys(
    container: Container, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keys = {"TANDEM_API_KEYS", "TANDEM_ADMIN_KEYS"}
    keyless = replace(container, env={k: v for k, v in container.env.items() if k not in keys})
    if keyless.env.get("TANDEM_HOST", image_env()["TANDEM_HOST"]) in LOCAL_HOSTS:
        settings_of(keyless, monkeypatch, tmp_path)  # one-off jobs need none
        return
    with pytest.raises(ValueError, match="only runs open on 127.0.0.1"):
        settings_of(keyless, monkeypatch, tmp_path)


def test_vllm_and_the_orchestrator_see_adapters_at_the_same_path() -> None:
    for group in (compose_containers(), kubernetes_containers()):
        adapter_dirs = {c.env["TANDEM_ADAPTERS_DIR"] for c in group if c.runs_orchestrator_image}
        vllms = [c for c in group if c.image.startswith("vllm/vllm-openai:")]
        assert len(adapter_dirs) == 1 and vllms
        for vllm in vllms:
            assert adapter_dirs <= vllm.mounts, vllm.source


def test_the_vllm_urls_name_every_statefulset_pod() -> None:
    docs = [doc for _, doc in manifests()]
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    (headless,) = [d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP")]
    assert headless["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    name, service = sts["metadata"]["name"], sts["spec"]["serviceName"]
    expected = [f"http://{name}-{i}.{service}:8000" for i in range(sts["spec"]["replicas"])]
    (orchestrator,) = [c for c in all_containers() if c.source.endswith("tandem-orchestrator")]
    assert orchestrator.env["TANDEM_VLLM__URLS"].split(",") == expected


def test_selectors_and_network_policies_match_the_pod_labels() -> None:
    docs = [doc for _, doc in manifests()]
    pod_labels = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in docs
        if d["kind"] in {"Deployment", "StatefulSet", "Job"}
    }
    by_app = {labels["app"]: labels for labels in pod_labels.values()}
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] in {"Service", "PodDisruptionBudget"}:
            selector = spec["selector"].get("matchLabels", spec["selector"])
            assert selector["app"] in by_app, doc["metadata"]["name"]
        if doc["kind"] == "NetworkPolicy":
            for peer in [peer for rule in spec["ingress"] for peer in rule["from"]]:
                selector = peer["podSelector"]
                apps = {selector.get("matchLabels", {}).get("app")} - {None}
                for expression in selector.get("matchExpressions", []):
                    apps |= set(expression["values"])
                assert apps <= set(by_app), doc["metadata"]["name"]


def test_the_secret_example_holds_every_key_the_files_read() -> None:
    secrets = secret_placeholders()
    assert set(secrets) == {
        "chat-keys",
        "admin-keys",
        "vllm-api-key",
        "qdrant-api-key",
        "qdrant-read-only-api-key",
        "handoff-secret",
    }
