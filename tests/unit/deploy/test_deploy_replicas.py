"""The orchestrator's manifests keep nothing precious on a pod (issue 32): every record is in
Qdrant, so replicas need no session affinity and the data volume may go with the pod."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.deploy.deploy_files import Container, kubernetes_containers, manifests
from tests.unit.deploy.test_deploy_settings import settings_of


def orchestrator() -> Container:
    (found,) = [c for c in kubernetes_containers() if c.source.endswith("tandem-orchestrator")]
    return found


def test_the_service_spreads_clients_over_every_replica() -> None:
    (service,) = [
        d for _, d in manifests() if d["kind"] == "Service" and d["metadata"]["name"] == "tandem"
    ]
    assert service["spec"].get("sessionAffinity", "None") == "None"


def test_the_data_volume_is_a_cache_that_goes_with_the_pod() -> None:
    (deployment,) = [d for _, d in manifests() if d["kind"] == "Deployment"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["data"]  # a rollout deletes it: nothing there may matter


def test_a_webhook_set_later_finds_its_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    container = orchestrator()
    env = {**container.env, "TANDEM_HANDOFF__WEBHOOK_URL": "https://desk.example/hook"}
    settings = settings_of(Container(container.source, container.image, container.args, env,
                                     container.mounts), monkeypatch, tmp_path)  # fmt: skip
    assert settings.qdrant.url and settings.handoff.secret
    assert settings.rate_limit_per_minute == 120
