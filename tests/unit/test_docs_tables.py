"""docs/configuration.md and docs/errors.md are checked against the code's own tables, in both
directions: a key or code added on one side only fails here."""

from __future__ import annotations

import re
from pathlib import Path

from src.app.config import ENV_OVERRIDES, SCHEMA
from src.brokers import errors

DOCS = Path(__file__).resolve().parents[2] / "docs"
CODE_SETS = ("CONNECTIVITY_LOST", "CONNECTIVITY_RESTORED_DATA_LOST",
             "CONNECTIVITY_RESTORED_DATA_KEPT", "DATA_FARM_DOWN", "DATA_FARM_OK", "PACING",
             "MAX_TICKERS", "CLIENT_ID_IN_USE", "CONTRACT_NOT_FOUND", "ORDER_REJECTED",
             "MARKET_DATA_NOT_SUBSCRIBED", "COMPETING_LIVE_SESSION", "ORDER_CANCELLED",
             "WARNINGS")


def rows(name: str) -> list[list[str]]:
    out = []
    for line in (DOCS / name).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells and cells[0] not in ("key", "code", "---"):
            out.append(cells)
    return out


def test_configuration_doc_lists_every_schema_key_and_nothing_else() -> None:
    doc = {c[0].strip("`"): c for c in rows("configuration.md")}
    schema = {(f"{k.section}.{k.key}" if k.section else k.key): k for k in SCHEMA}
    assert set(doc) == set(schema)
    env = {place: var for var, place in ENV_OVERRIDES.items()}
    for name, spec in schema.items():
        cells = doc[name]
        assert cells[1].split()[0] == spec.type.__name__, name
        assert cells[4].strip("`") == spec.attr, name
        default = "null" if spec.default is None else (
            str(spec.default).lower() if isinstance(spec.default, bool) else
            repr(spec.default) if isinstance(spec.default, str) else str(spec.default))
        assert cells[2] == default, name
        if spec.choices:
            assert cells[3] == ", ".join(map(str, spec.choices)), name
        elif spec.minimum is not None or spec.maximum is not None:
            low = "" if spec.minimum is None else str(spec.minimum)
            high = "" if spec.maximum is None else str(spec.maximum)
            assert cells[3] == f"{low}..{high}", name
        else:
            assert cells[3] == "", name
        assert cells[5].strip("`") == env.get((spec.section, spec.key), ""), name


def test_every_config_yaml_key_is_in_the_schema() -> None:
    import yaml

    data = yaml.safe_load((DOCS.parent / "config.yaml").read_text(encoding="utf-8"))
    keys = {f"{s}.{k}" for s, v in data.items() if isinstance(v, dict) for k in v}
    keys |= {k for k, v in data.items() if not isinstance(v, dict)}
    assert keys == {(f"{k.section}.{k.key}" if k.section else k.key) for k in SCHEMA}


def _codes(cell: str) -> set[int]:
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", cell)
    assert m, cell
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    return set(range(lo, hi + 1))


def test_errors_doc_lists_every_code_of_every_set_and_what_it_becomes() -> None:
    documented: dict[str, set[int]] = {}
    for code_cell, set_cell, exc_cell, retry_cell, _effect in rows("errors.md"):
        name = set_cell.strip("`")
        assert name in CODE_SETS, name
        codes = _codes(code_cell)
        documented.setdefault(name, set()).update(codes)
        others = set().union(*(getattr(errors, n) for n in CODE_SETS if n != name))
        for code in codes if len(codes) == 1 else codes - others:  # a range: its own codes
            error = errors.error_from_ib(code, "")
            assert exc_cell.strip("`") == type(error).__name__, code
            assert retry_cell == ("yes" if error.retryable else "no"), code
    assert documented == {name: set(getattr(errors, name)) for name in CODE_SETS}


def test_every_final_code_set_of_errors_py_is_documented() -> None:
    sets = {n for n, v in vars(errors).items() if n.isupper() and isinstance(v, frozenset)}
    assert sets == set(CODE_SETS)
