"""Readers for the deploy files: compose.yaml, deploy/kubernetes/*.yaml, the Dockerfile.

Each container is reduced to what the checks need: its image, arguments, environment
(`TANDEM_*` and the rest, secrets resolved to the placeholders in deploy/secrets.example.yaml)
and its mount paths, so one set of tests covers compose and Kubernetes alike.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose.yaml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
SECRETS_EXAMPLE = ROOT / "deploy" / "secrets.example.yaml"
HELM_VALUES = ROOT / "deploy" / "qdrant-values.yaml"
DOCKERFILE = ROOT / "services" / "orchestrator" / "Dockerfile"
ORCHESTRATOR_IMAGE = "tandem-orchestrator"
# ${NAME}, ${NAME:-default}, ${NAME:?error}: Compose interpolation
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


@dataclass
class Container:
    """One container of either format, reduced to what the checks read."""

    source: str  # "compose.yaml: vllm", "vllm.yaml: StatefulSet/tandem-vllm"
    image: str
    args: list[str]
    env: dict[str, str]
    mounts: set[str] = field(default_factory=set)

    @property
    def runs_orchestrator_image(self) -> bool:
        return self.image.split(":")[0].startswith(ORCHESTRATOR_IMAGE)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/, the example Secret included."""
    files = [*sorted(KUBERNETES.glob("*.yaml")), SECRETS_EXAMPLE]
    return [(path, doc) for path in files for doc in load_yaml_documents(path)]


def secret_placeholders() -> dict[str, str]:
    (secret,) = load_yaml_documents(SECRETS_EXAMPLE)
    data: dict[str, str] = secret["stringData"]
    return data


def interpolate(value: str) -> str:
    """Compose interpolation with every variable unset: defaults apply, required ones get a
    placeholder named after the variable (so distinct keys stay distinct)."""

    def replace(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        return rest if kind == "-" else f"placeholder-{name.lower()}"

    return _INTERPOLATION.sub(replace, value)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def compose_containers() -> list[Container]:
    containers = []
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: write environment as a mapping"
        mounts = {interpolate(volume).split(":")[1] for volume in service.get("volumes", [])}
        containers.append(
            Container(
                source=f"compose.yaml: {name}",
                image=service["image"],
                args=[*service.get("entrypoint", []), *service.get("command", [])],
                env={key: interpolate(str(value)) for key, value in environment.items()},
                mounts=mounts,
            )
        )
    return containers


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in {"Deployment", "StatefulSet", "Job", "DaemonSet"}:
        spec: dict[str, Any] = doc["spec"]["template"]["spec"]
        return spec
    return None


def _env_value(item: dict[str, Any], secrets: dict[str, str]) -> str:
    if "value" in item:
        return str(item["value"])
    ref = item["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "tandem-keys", f"{item['name']}: unknown Secret {ref['name']}"
    assert ref["key"] in secrets, f"{item['name']}: tandem-keys has no key {ref['key']!r}"
    return secrets[ref["key"]]


def kubernetes_containers() -> list[Container]:
    secrets = secret_placeholders()
    containers = []
    for path, doc in manifests():
        spec = _pod_spec(doc)
        for item in spec["containers"] if spec else []:
            containers.append(
                Container(
                    source=f"{path.name}: {doc['kind']}/{doc['metadata']['name']}",
                    image=item["image"],
                    args=[*item.get("command", []), *item.get("args", [])],
                    env={e["name"]: _env_value(e, secrets) for e in item.get("env", [])},
                    mounts={m["mountPath"] for m in item.get("volumeMounts", [])},
                )
            )
    return containers


def all_containers() -> list[Container]:
    return [*compose_containers(), *kubernetes_containers()]


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage: what every orchestrator container starts with."""
    env: dict[str, str] = {}
    for instruction, rest in dockerfile_stages()[-1]:
        if instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env
