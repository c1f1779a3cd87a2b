"""compose.yaml against the Compose specification; every manifest against Kubernetes' schemas.

Both validators ship their schemas (check-jsonschema's vendored compose-spec schema,
kubernetes-validate's per-version OpenAPI schemas), so this runs offline and without Docker
or a cluster. A broken copy of each file must fail, so a validator that checks nothing fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.unit.deploy.deploy_files import COMPOSE, compose, manifests

# The oldest Kubernetes release still in upstream support as of 2026-11 and the newest
# kubernetes-validate 1.37.0 ships; the manifests use only APIs stable across both.
KUBERNETES_VERSIONS = ("1.32.0", "1.37.0")


def check_compose_spec(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_follows_the_compose_spec() -> None:
    result = check_compose_spec(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["vllm"]["depends_on"] = {"qdrant": {"condition": "when_ready"}}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = check_compose_spec(path)
    assert result.returncode == 1 and "when_ready" in result.stdout, result.stdout


def test_compose_publishes_only_the_orchestrator() -> None:
    published = {name for name, svc in compose()["services"].items() if svc.get("ports")}
    assert published == {"orchestrator"}


def test_compose_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    for name in ("vllm", "qdrant", "orchestrator"):
        assert "healthcheck" in services[name], name
    conditions = {dep["condition"] for dep in services["orchestrator"]["depends_on"].values()}
    assert conditions == {"service_healthy"}
    devices = services["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_images_are_pinned() -> None:
    images = [svc["image"] for svc in compose()["services"].values()]
    for _, doc in manifests():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        images += [container["image"] for container in spec.get("containers", [])]
    for image in images:
        name, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{image}: pin a version"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_kubernetes(version: str) -> None:
    checked = []
    for path, doc in manifests():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {error.message}")
        checked.append(doc["kind"])
    expected = {"StatefulSet", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"}
    assert expected | {"Job", "Secret", "PersistentVolumeClaim"} <= set(checked)


def test_the_kubernetes_check_rejects_unknown_fields() -> None:
    deployment: dict[str, Any] = next(doc for _, doc in manifests() if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**container, "readinessProbes": container["readinessProbe"]}
    deployment["spec"]["template"]["spec"]["containers"] = [broken]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_probes_budgets_and_policies_are_in_place() -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in manifests()}
    deployment = docs["Deployment", "tandem-orchestrator"]["spec"]["template"]["spec"]
    (container,) = deployment["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    vllm = docs["StatefulSet", "tandem-vllm"]["spec"]["template"]["spec"]["containers"][0]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    for name in ("tandem-orchestrator", "tandem-vllm"):
        assert ("PodDisruptionBudget", name) in docs
    guarded = {
        tuple(sorted(doc["spec"]["podSelector"]["matchLabels"].items()))
        for (kind, _), doc in docs.items()
        if kind == "NetworkPolicy"
    }
    assert (("app", "tandem-vllm"),) in guarded
    assert any(("app.kubernetes.io/name", "qdrant") in labels for labels in guarded)
