"""Eval loss (`ohlora eval --loss-only`): seconds per persona, the old path beside the new one.

- old: the path before the speed-up: one example at a time, the model's own loss over full
  logits (the 262k-row output layer at every position), torch's default thread count;
- new: `training.evaluate.eval_losses` (target positions only, the shared prompt prefix
  once, batches of similar length, bfloat16 products where the CPU has them natively);
- new-f32: the same in float32.

Both load the base once and every adapter on it, and compute the same per-example losses
(base and each adapter) on the persona's eval.jsonl. Each run is its own subprocess, timed
from start to end like the CLI (imports and model loading included); process CPU seconds
are given too (steadier on a shared machine).

    OHLORA_HOME=/tmp/x HF_HUB_OFFLINE=1 python bench/eval_loss.py [--persona ohlora ironman]
        [--paths old new new-f32] [--eval-rev REV]

`--eval-rev REV` runs each persona's eval.jsonl as it was at git revision REV (the same set
across the personas' data changes).

Prints JSON: {"ohlora": {"old": {"seconds": s, "cpu_seconds": c, "summary": {...}}, "new": {...},
"speedup": x, "max_mean_loss_rel_diff": d}, ...} (speedup and difference of new against old).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def old_losses(persona, eval_file: Path | None) -> dict[str, list[float]]:
    """The loop `eval_losses` ran before: full logits, float32, one example a forward."""
    import torch

    from training.evaluate import loss_setup, losses_per_adapter

    setup = loss_setup(persona, eval_file=eval_file)
    run = setup.peft or setup.model

    def losses() -> list[float]:
        out = []
        with torch.inference_mode():
            for enc in setup.encoded:
                out.append(float(run(input_ids=torch.tensor([enc.input_ids]), labels=torch.tensor([enc.labels])).loss))
        return out

    return losses_per_adapter(setup, losses)


def run_variant(persona_id: str, path: str, eval_file: str) -> dict:
    from ohlora.personas import load_persona
    from training.evaluate import eval_losses, loss_summary

    persona = load_persona(persona_id)
    file = Path(eval_file) if eval_file else None
    t0 = time.perf_counter()
    if path == "old":
        per_example = old_losses(persona, file)
    else:
        per_example = eval_losses(persona, bf16=False if path == "new-f32" else None, eval_file=file)
    return {"loss_seconds": round(time.perf_counter() - t0, 1), "examples": len(per_example["base"]),
            "summary": loss_summary(persona_id, per_example)}


def _eval_file_at(rev: str, persona_id: str, folder: Path) -> str:
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:personas/{persona_id}/eval.jsonl"],
                          capture_output=True, text=True, check=True).stdout
    path = folder / f"{persona_id}-eval.jsonl"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _timed(cmd: list[str], env: dict) -> tuple[dict, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall, cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persona", nargs="+", default=["ohlora", "ironman"])
    p.add_argument("--paths", nargs="+", choices=["old", "new", "new-f32"], default=["old", "new"])
    p.add_argument("--eval-rev", metavar="REV", help="each persona's eval.jsonl as of this git revision")
    p.add_argument("--variant", nargs=3, metavar=("PERSONA", "PATH", "EVAL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        print(json.dumps(run_variant(*args.variant)))
        return 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    result: dict = {"cpu_count": os.cpu_count(), "ohlora_home": os.environ.get("OHLORA_HOME"), "eval_rev": args.eval_rev}
    scratch = Path(tempfile.mkdtemp(prefix="bench-eval-loss-"))
    for pid in args.persona:
        row: dict = {}
        eval_file = _eval_file_at(args.eval_rev, pid, scratch) if args.eval_rev else ""
        for path in args.paths:
            out, wall, cpu = _timed([sys.executable, __file__, "--variant", pid, path, eval_file], env)
            row[path] = {"seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), **out}
            print(f"{pid} {path}: {row[path]['seconds']} s (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        if "old" in row and "new" in row:
            old, new = row["old"]["summary"]["eval_loss"], row["new"]["summary"]["eval_loss"]
            row["speedup"] = round(row["old"]["seconds"] / row["new"]["seconds"], 2)
            row["max_mean_loss_rel_diff"] = max(abs(old[k] - new[k]) / old[k] for k in old)
        result[pid] = row
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
