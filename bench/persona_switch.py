"""Persona switching and decode speed on llama.cpp; prints one JSON object.

- switch_ms_p50: activating another adapter on the live context (set_adapter, KV reset)
- reload_ms_p50: the alternative: load the base GGUF again and attach the adapter
- tps_base / tps_adapter / tps_merged: decode tokens/s with no adapter, with a LoRA adapter
  active, and on the merged q4_k_m GGUF of the same adapter (same prompt, N tokens)
- tps_ask / tps_raw: `ohlora ask --json` end to end (persona, memory recall, prompt
  building) vs raw llama-cpp-python on the same model, adapter and prompt

Adapters: the personas' trained `adapter.gguf` when present, otherwise random LoRA
adapters of the same size (r=8 on every linear projection) - speed does not depend on the
values. Usage: python bench/persona_switch.py [--base SPEC] [--tokens 64] [--reps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def random_adapter(folder: Path, base_gguf: Path, r: int = 8, seed: int = 0) -> Path:
    """A PEFT folder with a random LoRA on every linear projection of the base."""
    import numpy as np
    from safetensors.numpy import save_file

    from training.gguf_lora import base_info

    info = base_info(base_gguf)
    rng = np.random.default_rng(seed)
    names = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}
    tensors = {}
    for gname, (n_out, n_in) in info.shapes.items():
        parts = gname.split(".")
        if parts[0] != "blk" or parts[2] not in names:
            continue
        module = f"model.layers.{parts[1]}.{names[parts[2]]}"
        tensors[f"base_model.model.{module}.lora_A.weight"] = rng.normal(0, 0.01, (r, n_in)).astype(np.float32)
        tensors[f"base_model.model.{module}.lora_B.weight"] = rng.normal(0, 0.01, (n_out, r)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, "target_modules": list(names.values()), "bias": "none"}))
    return folder


def decode_tps(llm, tokens: list[int], n: int) -> float:
    """Greedy decode of n tokens after the prompt (end-of-turn ignored): tokens/s after the first."""
    llm.reset()
    times = []
    for i, _tok in enumerate(llm.generate(tokens, temp=0.0, top_k=1, reset=True)):
        times.append(time.perf_counter())
        if i + 1 >= n:
            break
    return (len(times) - 1) / (times[-1] - times[0])


def p50(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="", help="base spec (default: packaged Gemma 3 270M)")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--persona", default="ohlora", help="persona for the ask / raw comparison")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from ohlora.backends.llamacpp import LlamaCppBackend
    from ohlora.models import resolve_base
    from ohlora.personas import load_persona
    from training.gguf_lora import write_lora_gguf
    from training.gguf_merge import merge_lora_into_gguf

    base = resolve_base(args.base)
    work = Path(tempfile.mkdtemp(prefix="ohlora-bench-"))
    adapters: dict[str, Path] = {}
    peft_dirs: dict[str, Path] = {}
    for pid in ("ohlora", "ironman"):
        persona = load_persona(pid)
        if persona.adapter_gguf_path is not None and (persona.base or "") == (args.base or ""):
            adapters[pid] = persona.adapter_gguf_path
            if persona.adapter_dir is not None:
                peft_dirs[pid] = persona.adapter_dir
        else:
            peft_dirs[pid] = random_adapter(work / pid, base.path, seed=len(adapters))
            adapters[pid] = write_lora_gguf(peft_dirs[pid], work / f"{pid}.gguf", base.arch, base=base.path)
    trained = all(load_persona(p).adapter_gguf_path is not None for p in adapters)

    backend = LlamaCppBackend(base, n_ctx=2048, n_threads=os.cpu_count() or 2)
    for pid, path in adapters.items():
        backend.load_adapter(pid, path)
    switch = []
    order = list(adapters)
    for i in range(args.reps):
        t0 = time.perf_counter()
        backend.set_adapter(order[i % 2])
        switch.append((time.perf_counter() - t0) * 1000)

    reload = []
    for _ in range(max(3, args.reps // 5)):
        t0 = time.perf_counter()
        fresh = LlamaCppBackend(base, n_ctx=2048, n_threads=os.cpu_count() or 2)
        fresh.set_adapter("ohlora", adapters["ohlora"])
        reload.append((time.perf_counter() - t0) * 1000)
        fresh.llm.close()
        del fresh

    from datetime import datetime

    from ohlora.prompt import build_messages, template_for

    persona = load_persona(args.persona)
    text = "오늘 하루 어땠는지 얘기해 줄래?"
    prompt = template_for(base).render(
        build_messages(persona, [], [], text, datetime.now(), include_examples=False), add_generation_prompt=True)
    tokens = backend.tokenize(prompt)
    import llama_cpp

    merged = merge_lora_into_gguf(base.path, peft_dirs["ohlora"], work / "merged-q4_k_m.gguf", "q4_k_m")
    llm = llama_cpp.Llama(str(merged), n_ctx=2048, verbose=False, n_threads=os.cpu_count() or 2)
    # interleaved rounds, so that load from other processes hits all three alike
    speeds: dict[str, list[float]] = {"base": [], "adapter": [], "merged": []}
    for _ in range(3):
        backend.set_adapter(None)
        speeds["base"].append(decode_tps(backend.llm, tokens, args.tokens))
        backend.set_adapter("ohlora")
        speeds["adapter"].append(decode_tps(backend.llm, tokens, args.tokens))
        speeds["merged"].append(decode_tps(llm, tokens, args.tokens))
    tps_base, tps_adapter, tps_merged = (statistics.median(speeds[k]) for k in ("base", "adapter", "merged"))
    llm.close()
    backend.llm.close()

    # end to end: `ohlora ask` (sampling as the persona says) vs raw llama-cpp-python, same settings
    tps_ask, tps_raw, ask_tokens = _ask_vs_raw(base, persona, text, args)
    print(json.dumps({
        "base": base.name,
        "adapters": "trained" if trained else "random r=8, all linear layers",
        "switch_ms_p50": p50(switch),
        "reload_ms_p50": p50(reload),
        "tps_base": round(tps_base, 2),
        "tps_adapter": round(tps_adapter, 2),
        "tps_merged": round(tps_merged, 2),
        "tps_ask": tps_ask,
        "tps_raw": tps_raw,
        "ask_tokens": ask_tokens,
        "decode_tokens": args.tokens,
        "threads": os.cpu_count(),
    }))
    return 0


def _ask_vs_raw(base, persona, text, args):
    """`ohlora ask --json` tokens/s, and raw llama-cpp-python streaming the same prompt."""
    import llama_cpp

    cmd = [sys.executable, "-m", "ohlora.cli", "ask", "--json", "--persona", persona.id, "--seed", "0",
           "--max-tokens", str(args.tokens), text]
    if args.base:
        cmd[4:4] = ["--base", args.base]
    runs = []
    for _ in range(3):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            return None, None, proc.stderr.strip().splitlines()[-1:] or ["ask failed"]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    tps_ask = statistics.median(r["tokens_per_s"] for r in runs)
    n = max(2, int(statistics.median(r["completion_tokens"] for r in runs)))

    from datetime import datetime

    from ohlora.prompt import build_messages, template_for

    prompt = template_for(base).render(
        build_messages(persona, [], [], text, datetime.now(), include_examples=persona.adapter_gguf_path is None),
        add_generation_prompt=True)
    # the same adapter `ohlora ask` activates (the persona's trained one, if any)
    kw = {"lora_path": str(persona.adapter_gguf_path)} if persona.adapter_gguf_path else {}
    llm = llama_cpp.Llama(str(base.path), n_ctx=2048, verbose=False, n_threads=os.cpu_count() or 2, **kw)
    g = persona.generation
    speeds = []
    for _ in range(3):
        times = []
        for _chunk in llm.create_completion(prompt, max_tokens=n, temperature=g.temperature, top_p=g.top_p,
                                            top_k=g.top_k, min_p=g.min_p, repeat_penalty=g.repeat_penalty,
                                            seed=0, stream=True):
            times.append(time.perf_counter())
        if len(times) > 1:
            speeds.append((len(times) - 1) / (times[-1] - times[0]))
    llm.close()
    return round(tps_ask, 2), round(statistics.median(speeds), 2) if speeds else None, n


if __name__ == "__main__":
    raise SystemExit(main())
