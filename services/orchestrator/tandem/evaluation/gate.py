"""Release gate: thresholds the hybrid configuration must meet."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from tandem.errors import BadInput
from tandem.evaluation.scores import ConfigSummary

GATED_CONFIG = "hybrid"


@dataclass(frozen=True)
class Gate:
    """Thresholds for hybrid; a `None` threshold is not checked."""

    min_coverage: float | None = 0.5
    min_source_hit: float | None = 0.6
    min_compliance: float | None = 0.8
    min_citation_validity: float | None = 0.95
    max_failures: int | None = 0
    max_p95_ms: float | None = None

    def with_overrides(self, **values: float | int | None) -> Gate:
        """A copy with the given thresholds replaced; `None` values leave them as they are."""
        given = {k: v for k, v in values.items() if v is not None}
        return replace(self, **_validated(given, "gate thresholds"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_RATES = ("min_coverage", "min_source_hit", "min_compliance", "min_citation_validity")


def _validated(values: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name for f in fields(Gate)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise BadInput(f"{where}: unknown gate keys {unknown}; allowed: {sorted(known)}")
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise BadInput(f"{where}: '{key}' must be a non-negative number or null")
        if key in _RATES and value > 1:
            raise BadInput(f"{where}: '{key}' is a rate between 0 and 1, got {value}")
        if key == "max_failures" and value != int(value):
            raise BadInput(f"{where}: 'max_failures' must be a whole number, got {value}")
    return {k: int(v) if k == "max_failures" and v is not None else v for k, v in values.items()}


def load_gate(path: Path, base: Gate | None = None) -> Gate:
    """Thresholds from a YAML or JSON file (keys as in `Gate`), over `base` (the defaults)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read gate file {path}: {exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # YAML is a superset of JSON, so other suffixes parse either

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
        raise BadInput(f"gate file {path} does not parse: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("gate"), dict):
        data = data["gate"]  # allow a `gate:` section in a larger file
    if not isinstance(data, dict):
        raise BadInput(f"gate file {path} must hold a mapping of thresholds")
    values = _validated(data, str(path))
    return replace(base or Gate(), **values)


def check_gate(gate: Gate, summaries: dict[str, ConfigSummary]) -> list[str]:
    """Human-readable violations of `gate` by the hybrid configuration (empty = passed)."""
    summary = summaries.get(GATED_CONFIG)
    if summary is None:
        return [f"the gate checks the '{GATED_CONFIG}' configuration, which was not run"]
    violations: list[str] = []
    lower_bounds = (
        ("answer coverage", summary.mean_coverage, gate.min_coverage),
        ("source hit rate", summary.source_hit_rate, gate.min_source_hit),
        ("format compliance", summary.compliance_rate, gate.min_compliance),
        ("citation validity", summary.citation_validity_rate, gate.min_citation_validity),
    )
    for label, value, minimum in lower_bounds:
        if minimum is None or (value is None and label == "source hit rate"):
            continue  # no question names an expected source: nothing to hold it to
        if value is None or value < minimum:
            shown = "n/a" if value is None else f"{value:.3f}"
            violations.append(f"{GATED_CONFIG} {label} {shown} is below {minimum}")
    if gate.max_failures is not None and summary.failed > gate.max_failures:
        violations.append(
            f"{GATED_CONFIG} had {summary.failed} failed questions, more than {gate.max_failures}"
        )
    if gate.max_p95_ms is not None:
        p95 = summary.latency_p95_ms
        if p95 is None or p95 > gate.max_p95_ms:
            shown = "n/a" if p95 is None else f"{p95:.0f} ms"
            violations.append(f"{GATED_CONFIG} latency p95 {shown} is above {gate.max_p95_ms} ms")
    return violations
