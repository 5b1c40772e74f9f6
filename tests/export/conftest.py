"""Export fixtures: per base model (Gemma 3 270M, SmolLM2-135M) one trained adapter, its GGUF
twin, the logits of the PEFT model on persona text, and a report collected across tests."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

MODELS = {"gemma": ("", "gemma3"), "smollm2": ("smollm2", "llama"), "qwen": ("qwen1.5b", "qwen2")}
from export_report import REPORT  # noqa: E402


@dataclass
class LoraCase:
    key: str
    base: object  # ohlora.models.BaseModel
    hf_dir: Path
    adapter_dir: Path
    adapter_gguf: Path
    work: Path
    ids: list[list[int]]
    train_stats: dict
    _cache: dict = field(default_factory=dict)

    def hf(self, with_adapter: bool):
        """Transformers logits (dequantized HF copy, +PEFT adapter), computed once."""
        from equivalence import hf_logits

        key = ("hf", with_adapter)
        if key not in self._cache:
            self._cache[key] = hf_logits(self.hf_dir, self.adapter_dir if with_adapter else None, self.ids)
        return self._cache[key]

    @property
    def positions(self) -> int:
        return sum(len(i) for i in self.ids)


def _make_case(key: str, root: Path) -> LoraCase:
    from lora_fixture import EVAL_TEXTS, LEARNING_RATE, train_adapter
    from transformers import AutoTokenizer

    from ohlora.models import ensure_hf_copy, resolve_base
    from training.gguf_lora import write_lora_gguf

    spec, arch = MODELS[key]
    base = resolve_base(spec)
    hf_dir = ensure_hf_copy(base)
    work = root / key
    work.mkdir(parents=True, exist_ok=True)
    adapter_dir = work / "adapter"
    stats = train_adapter(hf_dir, arch, adapter_dir, lr=LEARNING_RATE.get(arch, 5e-3))
    adapter_gguf = write_lora_gguf(adapter_dir, work / "adapter.gguf", base.arch, base=base.path)
    tok = AutoTokenizer.from_pretrained(hf_dir)
    ids = [tok(t)["input_ids"] for t in EVAL_TEXTS[arch]]
    return LoraCase(key, base, hf_dir, adapter_dir, adapter_gguf, work, ids, stats)


@pytest.fixture(scope="session")
def lora_cases(tmp_path_factory):
    """Built lazily inside a test (so under its OHLORA_HOME, whose models cache is shared),
    once per model per session."""
    cases: dict[str, LoraCase] = {}
    root = tmp_path_factory.mktemp("lora-cases")

    def get(key: str) -> LoraCase:
        if key not in cases:
            cases[key] = _make_case(key, root)
        return cases[key]

    return get


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.write_sep("-", "export equivalence report")
        for key, row in REPORT.items():
            terminalreporter.write_line(f"{key}: {json.dumps(row)}")
        out = os.environ.get("OHLORA_EXPORT_REPORT")
        if out:
            Path(out).write_text(json.dumps(REPORT, indent=2))
