"""`report.json` and `loss.png` for a training run."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.split import Split
    from training.plan import Devices, RunPlan
    from training.trainer import Run


def build_report(*, plan: "RunPlan", fp: dict, train: "Split", evals: "Split | None", settings: dict, run: "Run",
                 final_eval: float | None, wall_seconds: float, dev: "Devices", samples_before: list,
                 samples_after: list, resumed: bool) -> dict:
    """Everything report.json says about a finished run."""
    meter, eval_enc = run.meter, evals.encoded if evals else []
    return {
        "base": fp,
        "output": str(plan.output),
        "data": {
            "train_file": plan.train_path, "eval_file": plan.eval_path,
            "train_conversations": len(train.encoded), "eval_conversations": len(eval_enc),
            "skipped": [str(p) for p in train.problems + (evals.problems if evals else [])],
            "train_rows_read": train.n_read,
        },
        "settings": settings,
        "steps": run.trainer.state.global_step,
        "train_loss": [h for h in meter.history if "loss" in h],
        "eval_loss": [h for h in meter.history if "eval_loss" in h],
        "final_eval_loss": final_eval,
        "tokens_trained": meter.tokens,
        "target_tokens": meter.target_tokens,
        "tokens_per_s": round(meter.tokens_per_s(), 1),
        "train_seconds": round(meter.train_time, 1),
        "wall_seconds": round(wall_seconds, 1),
        **peak_memory_mb(dev.cuda),
        "versions": versions(),
        "samples_before": samples_before,
        "samples_after": samples_after,
        "resumed": resumed,
    }


def peak_memory_mb(cuda: bool) -> dict:
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mb": round(rss_kb / 1024, 1)}
    if cuda:
        import torch

        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes", "deepspeed"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def write_report(path: Path, report: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def plot_loss(path: Path, report: dict) -> None:
    """Train loss per step and eval loss per evaluation, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    train = report.get("train_loss") or []
    evals = report.get("eval_loss") or []
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train", lw=1.2)
    if evals:
        ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", label="eval", lw=1.2)
    base = report.get("base", {}).get("name", "")
    ax.set_title(f"loss ({base}, {report.get('steps', 0)} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
