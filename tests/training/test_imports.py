"""training/ imports only the app's lower layers (errors, config, models, personas, prompt, db), never memory."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[2] / "training"
ALLOWED_APP = {"ohlora.errors", "ohlora.config", "ohlora.models", "ohlora.personas", "ohlora.prompt", "ohlora.db"}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(TRAINING.rglob("*.py")), ids=lambda p: str(p.relative_to(TRAINING)))
def test_training_imports_point_down(path):
    bad = {n for n in imported(path)
           if n == "memory" or n.startswith("memory.") or (n.startswith("ohlora") and n not in ALLOWED_APP)}
    assert not bad, f"{path.name} imports {sorted(bad)}"
