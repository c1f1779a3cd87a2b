"""deploy/qdrant-values.yaml uses only keys of the official Qdrant chart, and both Qdrant
configurations (the chart's `config:` and services/qdrant/config.yaml) only Qdrant's own keys.

Sources of the key lists below, read 2026-11-27 (no network here, so they are written out):
- CHART_KEYS: qdrant/qdrant-helm, charts/qdrant/values.yaml and values.schema.json
  (chart 1.15-1.19 line: `apiKey`/`readOnlyApiKey` take false, true, a string or
  `valueFrom.secretKeyRef`; `snapshotRestoration` is "only supported for single-node
  clusters"; there is no `replicationFactor` value).
- QDRANT_CONFIG_KEYS: qdrant/qdrant, config/config.yaml (the keys Tandem sets or may set).
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import yaml
from tests.unit.deploy.deploy_files import HELM_VALUES, ROOT, secret_placeholders

# fmt: off
_VOLUME_CLAIM = {
    "accessModes", "size", "annotations", "additionalLabels", "storageVolumeName",
    "storageSubPath", "storageClassName", "snapshotsVolumeName", "snapshotsSubPath",
    "volumeAttributesClassName",
}
_PROBE = {"enabled", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
          "failureThreshold", "successThreshold"}
# top-level key -> its known sub-keys (None: free-form, checked another way)
CHART_KEYS: dict[str, set[str] | None] = {
    "replicaCount": set(),
    "image": {"repository", "pullPolicy", "tag", "useUnprivilegedImage"},
    "imagePullSecrets": None, "nameOverride": set(), "fullnameOverride": set(),
    "args": None, "env": None, "service": None, "ingress": None,
    "livenessProbe": _PROBE, "readinessProbe": _PROBE, "startupProbe": _PROBE,
    "additionalLabels": None, "podAnnotations": None, "podLabels": None,
    "resources": None, "containerSecurityContext": None, "podSecurityContext": None,
    "lifecycle": None, "updateVolumeFsOwnership": set(), "nodeSelector": None,
    "tolerations": None, "affinity": None, "topologySpreadConstraints": None,
    "persistence": _VOLUME_CLAIM,
    "snapshotPersistence": _VOLUME_CLAIM | {"enabled"},
    "snapshotRestoration": {"enabled", "pvcName", "mountPath", "snapshots"},
    "config": None, "sidecarContainers": None, "metrics": None, "serviceAccount": None,
    "priorityClassName": set(), "shareProcessNamespace": set(),
    "terminationGracePeriodSeconds": set(), "podManagementPolicy": set(),
    "podDisruptionBudget": {"enabled", "maxUnavailable", "minAvailable",
                            "unhealthyPodEvictionPolicy"},
    "apiKey": None, "readOnlyApiKey": None,
    "additionalVolumes": None, "additionalVolumeMounts": None,
}
QDRANT_CONFIG_KEYS = {
    "log_level", "telemetry_disabled",
    "storage.storage_path", "storage.snapshots_path", "storage.on_disk_payload",
    "storage.collection.replication_factor", "storage.collection.write_consistency_factor",
    "service.api_key", "service.read_only_api_key", "service.enable_tls",
    "service.http_port", "service.grpc_port",
    "cluster.enabled", "cluster.p2p.port", "cluster.p2p.enable_tls",
    "cluster.consensus.tick_period_ms",
}
# fmt: on


def values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(HELM_VALUES.read_text())
    return data


def leaf_paths(tree: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        path = f"{prefix}{key}"
        paths |= leaf_paths(value, f"{path}.") if isinstance(value, dict) else {path}
    return paths


def test_only_chart_keys() -> None:
    for key, value in values().items():
        assert key in CHART_KEYS, f"{key!r} is not a value of the qdrant chart"
        known = CHART_KEYS[key]
        if known is not None and isinstance(value, dict):
            assert set(value) <= known, f"{key}: unknown {set(value) - known}"


def test_three_replicated_nodes_with_keys_from_the_secret() -> None:
    data = values()
    assert data["replicaCount"] == 3 and data["config"]["cluster"]["enabled"] is True
    assert data["config"]["storage"]["collection"]["replication_factor"] == 2
    assert not data["snapshotRestoration"]["enabled"], "the chart restores on one node only"
    secrets = secret_placeholders()
    for key in ("apiKey", "readOnlyApiKey"):
        ref = data[key]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "tandem-keys" and ref["key"] in secrets


def test_qdrant_configurations_use_qdrant_keys() -> None:
    helm_config = leaf_paths(values()["config"])
    compose_config = leaf_paths(yaml.safe_load((ROOT / "services/qdrant/config.yaml").read_text()))
    for paths in (helm_config, compose_config):
        assert paths and paths <= QDRANT_CONFIG_KEYS, paths - QDRANT_CONFIG_KEYS
    assert "service.api_key" not in compose_config, "keys come from QDRANT__SERVICE__API_KEY"


def test_kubernetes_shaped_values_validate() -> None:
    """`affinity` and `resources` are copied into the chart's pod spec as they are."""
    data = values()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "qdrant-values-check"},
        "spec": {
            "affinity": data["affinity"],
            "containers": [{"name": "qdrant", "image": "x", "resources": data["resources"]}],
        },
    }
    kubernetes_validate.validate(pod, "1.37.0", strict=True)
    assert f"qdrant/qdrant:{data['image']['tag']}" in (ROOT / "compose.yaml").read_text()
