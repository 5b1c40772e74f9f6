"""Persona SFT: TRL `SFTTrainer` + peft LoRA (QLoRA on CUDA), loss on assistant tokens only.

`train()` reads top to bottom: plan, data, outputs folder, model, trainer, outputs. The
parts live beside it: `config` (settings, recipes), `plan` (devices, files, checks),
`split` (a data file -> tokens), `model` (base + LoRA), `trainer` (TRL), `samples`, `outputs`
(the folder), `report`.

What makes it faster than plain TRL on the same data (see bench/train_throughput.py):
- the loss projects only the target positions through the 262k-row output layer
  (`training.loss.target_cross_entropy`), never the prompt or the padding;
- batches are padding-free (conversations packed end to end, positions restarting, no
  attention across them), so no compute goes to padding;
- the dataset is tokenized once by us (chat's own rendering), TRL does not re-template it;
- no gradient checkpointing on the CPU (no second forward);
- under bf16 (a bf16 GPU, or a CPU with native bf16) the frozen base is stored in bf16 (half
  its memory, no per-step weight cast), LoRA inputs are not cast to float32 and back under
  autocast, and AdamW is the fused one (one kernel for all LoRA tensors).

Output is atomic: everything is written into `<out>.partial/` (checkpoints included, so
Ctrl-C + `--resume` works) and renamed to `<out>` only when the adapter, `report.json`
and `loss.png` are complete.
"""

from __future__ import annotations

import errno
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ohlora.errors import UserError

from training.config import TrainConfig, check_numbers
from training.model import load_model, patch_target_loss, wrap_lora
from training.outputs import TrainResult, big_files, finish_folder, prepare_partial, save_adapter, write_gguf, write_settings
from training.plan import check_from_adapter, device_plan, run_plan, schedule
from training.samples import generate_samples, sample_rows, samples_before
from training.trainer import Interrupted, Run, sft_config

__all__ = ["Interrupted", "TrainConfig", "TrainResult", "train"]


def train(cfg: TrainConfig, console=None, on_trainer: Callable | None = None) -> TrainResult:
    """Train a LoRA adapter; raises UserError on bad input and Interrupted on Ctrl-C."""
    try:
        return _train(cfg, console, on_trainer)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise UserError(
                f"disk full while training ({exc.filename or 'output'}); free space and continue with --resume"
            ) from None
        raise
    except MemoryError:
        raise UserError("out of memory: lower --batch-size or --max-length (or use --qlora: a 4-bit base)") from None


def _train(cfg: TrainConfig, console, on_trainer: Callable | None) -> TrainResult:
    import torch
    from transformers import AutoTokenizer

    from ohlora.models import ensure_hf_copy
    from ohlora.prompt import template_for

    from training.encode import Encoder
    from training.split import load_split
    from training.fingerprint import base_fingerprint
    from training.report import build_report, plot_loss, write_report

    t_start = time.perf_counter()

    # plan: every check that needs no model, then the base's fingerprint
    check_numbers(cfg)
    dev = device_plan(cfg)
    say = console.print if console is not None and dev.is_main else (lambda *a, **k: None)  # rank 0 speaks
    plan = run_plan(cfg)
    hf_dir = Path(ensure_hf_copy(plan.base))
    fp = base_fingerprint(plan.base, json.loads((hf_dir / "config.json").read_text(encoding="utf-8")))
    from_adapter = check_from_adapter(cfg, plan.base, fp)

    # data: tokenized once, with chat's own rendering
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    encoder = Encoder(tokenizer, template_for(plan.base))
    train_split = load_split(plan.train_path, encoder, plan.persona, cfg, "training")
    eval_split = load_split(plan.eval_path, encoder, plan.persona, cfg, "eval") if plan.eval_path else None
    eval_enc = eval_split.encoded if eval_split else []
    problems = train_split.problems + (eval_split.problems if eval_split else [])
    for p in problems[:5]:
        say(f"[yellow]skipped[/] {p}")
    if len(problems) > 5:
        say(f"[yellow]skipped[/] … {len(problems) - 5} more (see report.json)")
    say(f"data: {len(train_split.encoded)} training / {len(eval_enc)} eval conversations; "
        f"base {plan.base.name}; output {plan.output}")

    # the schedule, the trainer's arguments (they start the process group of a distributed run,
    # and must exist before the model under ZeRO-3), then the partial folder: rank 0 first
    partial = plan.partial
    total_steps, eval_steps, save_steps = schedule(cfg, len(train_split.encoded), dev.world_size)
    args = sft_config(cfg, partial, total_steps, eval_steps, save_steps, bool(eval_enc), dev)  # before the model
    with args.main_process_first(local=False, desc="the partial folder"):
        resume_ck = prepare_partial(plan, cfg.resume, fp, dev)
    settings = {**asdict(cfg), **dev.settings()}
    if dev.is_main:
        write_settings(partial, settings)

    # model: the base, its target-only loss, the LoRA
    torch.manual_seed(cfg.seed)
    model = load_model(hf_dir, dev, cfg)
    patch_target_loss(model)
    model = wrap_lora(model, cfg, from_adapter)
    prompts = [] if not cfg.samples or dev.distributed else sample_rows(
        eval_split.rows if eval_split else [], train_split.rows, cfg.samples)
    before = samples_before(model, tokenizer, encoder, plan.persona, prompts, cfg.sample_tokens, partial, say)

    # trainer
    run = Run(model, args, tokenizer, train_split.encoded, eval_enc, cfg, console if dev.is_main else None,
              progress=cfg.progress and dev.is_main)
    run.train(partial, resume_ck, on_trainer)
    final_eval = run.final_eval_loss() if eval_enc else None
    after = generate_samples(model, tokenizer, encoder, plan.persona, prompts, cfg.sample_tokens) if prompts else []

    # outputs: adapter, report, loss curve, the folder swap, adapter.gguf
    if not save_adapter(run.trainer, model, partial, dev, plan.base.name, fp):
        return TrainResult(plan.output, {})
    big = big_files(partial)
    report = build_report(
        plan=plan, fp=fp, train=train_split, evals=eval_split, settings=settings, run=run, final_eval=final_eval,
        wall_seconds=time.perf_counter() - t_start, dev=dev, samples_before=before, samples_after=after,
        resumed=resume_ck is not None,
    )
    write_report(partial / "report.json", report)
    plot_loss(partial / "loss.png", report)
    finish_folder(partial, plan.output)
    result = TrainResult(plan.output, report)
    if big:
        result.notes.append(f"adapter file over 20 MB: {', '.join(big)} (lower --rank to ship it in the repo)")
    if cfg.gguf:
        result.gguf, note = write_gguf(plan.output, plan.gguf_path, plan.base.arch, Path(plan.base.path))
        if note:
            result.notes.append(note)
    return result
