"""The one list of inference backend names (config validation, `--backend` choices, help).

A leaf module: it imports nothing of ours, so `ohlora.config` can validate against it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    name: str
    target: str  # "module:Class"
    help: str
    scripted: bool = False  # needs no model file; any adapter "fits"


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("llamacpp", "ohlora.backends.llamacpp:LlamaCppBackend",
                "GGUF through llama.cpp on the CPU; persona adapters switch in place (default)"),
        Backend("hf", "ohlora.backends.hf:HFBackend", "transformers + peft (CUDA when present, else CPU)"),
        Backend("fake", "ohlora.backends.fake:FakeBackend", "scripted replies, no model (tests and demos)",
                scripted=True),
    )
}
DEFAULT_BACKEND = "llamacpp"


def backend_names(public: bool = False) -> list[str]:
    return [n for n, b in BACKENDS.items() if not (public and b.scripted)]
