"""Read the adapter's Prometheus metrics (``api.metrics``' registry) by sample name."""

from __future__ import annotations

from typing import Any


def registry_of(api: Any) -> Any:
    metrics = api.metrics
    for attr in ("registry", "_registry"):
        reg = getattr(metrics, attr, None)
        if reg is not None:
            return reg
    return metrics  # the registry itself


def samples(api: Any, name: str) -> list[Any]:
    """Every sample named ``name`` (any labels)."""
    out = []
    for family in registry_of(api).collect():
        for s in family.samples:
            if s.name == name:
                out.append(s)
    return out


def metric_value(api: Any, name: str, **labels: str) -> float | None:
    """Sum of the samples named ``name`` whose labels include ``labels``; None if there are none."""
    found = [s for s in samples(api, name) if all(s.labels.get(k) == v for k, v in labels.items())]
    if not found:
        return None
    return float(sum(s.value for s in found))
