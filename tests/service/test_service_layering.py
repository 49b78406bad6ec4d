"""The service is the top layer: nothing below it imports it, and a placeholder service never
loads ib_insync (the provider imports the adapter only when it builds one)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_lower_layer_imports_the_service() -> None:
    offenders = []
    for package in ("brokers", "app", "models", "simulator", "utils"):
        for path in (ROOT / "src" / package).rglob("*.py"):
            if any(n == "src.service" or n.startswith("src.service.") for n in _imports(path)):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_a_placeholder_service_does_not_load_ib_insync() -> None:
    code = ("import sys\nfrom src.app.config import Config\nfrom src.service import create_app\n"
            "create_app(Config().replace(SERVICE_BROKER='placeholder'), token=None)\n"
            "print('ib_insync' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
