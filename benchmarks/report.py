"""Statistics, targets and output (tables, PASS/FAIL summary, JSON, markdown) of a bench run.

Pure except ``write_json``; the benchmarks hand in numbers, this module judges and prints.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("values must not be empty")
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100), numpy's default method."""
    if not values:
        raise ValueError("values must not be empty")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q!r}")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; ``inf`` when the denominator is 0 and the numerator is not."""
    if denominator == 0:
        return 0.0 if numerator == 0 else math.inf
    return numerator / denominator


# ---------------------------------------------------------------- targets

_OPS = {
    "<=": lambda v, t: v <= t,
    ">=": lambda v, t: v >= t,
    "==": lambda v, t: v == t,
}


@dataclass
class Target:
    """One checked target: ``value op threshold`` (e.g. ratio ``<=`` 1.2)."""

    name: str
    value: float
    op: str
    threshold: float
    detail: str = ""
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"op must be one of {sorted(_OPS)}, got {self.op!r}")
        value = float(self.value)
        self.passed = not math.isnan(value) and bool(_OPS[self.op](value, self.threshold))

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


def all_passed(targets: Sequence[Target]) -> bool:
    return all(t.passed for t in targets)


def exit_code(targets: Sequence[Target], errors: Sequence[str] = ()) -> int:
    """0 when every target passed and no benchmark crashed, else 1."""
    return 0 if all_passed(targets) and not errors else 1


# ---------------------------------------------------------------- formatting


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isinf(value):
            return "inf"
        if math.isnan(value):
            return "n/a"
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"
        return f"{value:.4f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns right-aligned except the first."""
    cells = [[str(h) for h in headers]] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                         for i, c in enumerate(row))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def summary_rows(targets: Sequence[Target]) -> list[list[Any]]:
    return [[t.name, t.value, f"{t.op} {fmt(float(t.threshold))}", t.verdict, t.detail]
            for t in targets]


SUMMARY_HEADERS = ("target", "value", "required", "verdict", "detail")


def summary(targets: Sequence[Target], errors: Sequence[str] = ()) -> str:
    lines = [table(SUMMARY_HEADERS, summary_rows(targets))]
    for e in errors:
        lines.append(f"ERROR: {e}")
    ok = exit_code(targets, errors) == 0
    failed = sum(not t.passed for t in targets)
    lines.append(f"RESULT: {'PASS' if ok else 'FAIL'} "
                 f"({len(targets) - failed}/{len(targets)} targets passed"
                 f"{', ' + str(len(errors)) + ' benchmark error(s)' if errors else ''})")
    return "\n".join(lines)


# ---------------------------------------------------------------- results


@dataclass
class Section:
    """One benchmark's printed table plus its raw figures."""

    name: str
    headers: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        out = [f"== {self.name} ==", table(self.headers, self.rows)]
        out += [f"  * {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"### {self.name}", "", markdown_table(self.headers, self.rows)]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def results_document(meta: dict[str, Any], sections: Sequence[Section],
                     targets: Sequence[Target], errors: Sequence[str]) -> dict[str, Any]:
    return _jsonable({
        "meta": meta,
        "sections": [asdict(s) for s in sections],
        "targets": [{**asdict(t), "verdict": t.verdict} for t in targets],
        "errors": list(errors),
        "passed": exit_code(targets, errors) == 0,
    })


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def markdown_report(command: str, meta: dict[str, Any], sections: Sequence[Section],
                    targets: Sequence[Target], errors: Sequence[str]) -> str:
    out = [f"Command: `{command}`", ""]
    out += [f"- {k}: {v}" for k, v in meta.items()]
    for s in sections:
        out += ["", s.markdown()]
    out += ["", "### Targets", "", markdown_table(SUMMARY_HEADERS, summary_rows(targets))]
    for e in errors:
        out.append(f"\nERROR: {e}")
    return "\n".join(out) + "\n"
