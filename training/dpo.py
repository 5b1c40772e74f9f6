"""Preference training: `ohlora train --method dpo`, TRL's DPOTrainer on top of a persona's SFT adapter.

    ohlora data from-chats prefs/                  # your swipes and edits become pairs
    ohlora train --method dpo --persona ohlora --data prefs/preference.json --output ohlora-dpo

`train()` reads top to bottom: plan, pairs, model, the reference's numbers, trainer, the
numbers after, outputs. The design:

- **Start**: the persona's SFT adapter (its `adapter/` folder, or `--from-adapter DIR`) is
  loaded trainable and trained further; it must have been trained on this base (fingerprint).
- **Reference**: the same adapter, frozen. Given a PeftModel that already carries an adapter
  and no `ref_model`, TRL copies it into a second adapter named "ref" and computes the
  reference log-probs with it (peft's ref-adapter approach: one base model in memory, two
  small LoRAs). So DPO moves the persona towards what the user chose, measured against the
  persona as SFT left it, not against the bare base. The report checks that "ref" did not move.
- **Pairs**: `training.pairs` reads them (LLaMA-Factory's `ranking` format, as `ohlora data
  from-chats` writes it) and renders each exactly as chat renders it, tokenized like SFT targets.
- **Held out**: `--eval-data FILE`, or a share of the pairs (`--held-out`, default 0.2), never
  trained on, to see whether the preference carries over to pairs the model did not see.
- **Report** (`report.json`): per split (trained pairs, held-out pairs), before and after:
  the reward margin, beta * ((log pi(c) - log ref(c)) - (log pi(r) - log ref(r))), which is 0
  before training by definition (the policy is the reference); the log-prob margin
  log pi(c) - log pi(r), which is not; and the share of pairs with the chosen reply ahead.
  Log-probs are sums over the reply's tokens, computed with TRL's own fused LM head.

The output folder is written as `<out>.partial/` and renamed when complete (adapter with only
the trained adapter, `ohlora_base.json`, `report.json`, `loss.png`); `<out>.gguf` beside it.
"""

from __future__ import annotations

import errno
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ohlora.errors import UserError

from training.config import TrainConfig, check_numbers
from training.data import Problem
from training.pairs import encode_pairs, load_pairs, split_pairs

if TYPE_CHECKING:
    from training.outputs import TrainResult


# -- numbers: summed log-probs of each reply, the margins they make ------------------------
def reply_logps(model, collator, encoded: Sequence[dict], batch_size: int = 2) -> list[tuple[float, float]]:
    """(log p(chosen), log p(rejected)) per pair under the active adapter, summed over the reply's
    tokens, through TRL's fused LM head (the numbers DPOTrainer's loss uses)."""
    import torch

    out: list[tuple[float, float]] = []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            batch = collator(list(encoded[start:start + batch_size]))
            labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
            res = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                        labels=labels.to(device), fused_lm_head=True, use_cache=False)
            sums = res.log_probs.sum(dim=1).float().cpu()
            chosen, rejected = sums.chunk(2)
            out += [(float(c), float(r)) for c, r in zip(chosen, rejected)]
    model.train(was_training)
    return out


def margins(policy: Sequence[tuple[float, float]], ref: Sequence[tuple[float, float]], beta: float) -> dict:
    """Means over the pairs: reward margin and its accuracy, log-prob margin and its accuracy."""
    n = len(policy)
    if not n:
        return {"pairs": 0}
    reward = [beta * ((pc - rc) - (pr - rr)) for (pc, pr), (rc, rr) in zip(policy, ref)]
    logp = [pc - pr for pc, pr in policy]
    return {
        "pairs": n,
        "reward_margin": round(sum(reward) / n, 4),
        "reward_accuracy": round(sum(m > 0 for m in reward) / n, 3),
        "logp_margin": round(sum(logp) / n, 3),
        "logp_accuracy": round(sum(m > 0 for m in logp) / n, 3),
        "chosen_logp": round(sum(c for c, _ in policy) / n, 3),
        "rejected_logp": round(sum(r for _, r in policy) / n, 3),
    }


# -- the run --------------------------------------------------------------------------------
@dataclass
class DpoPlan:
    persona: Any
    base: Any
    start: Path  # the SFT adapter trained further (and, frozen, the reference)
    data: str
    held_out_file: str | None
    output: Path

    @property
    def partial(self) -> Path:
        return self.output.with_name(self.output.name + ".partial")


def plan_dpo(cfg: TrainConfig) -> DpoPlan:
    """Every check that needs no model: persona, the adapter to start from, files, output."""
    from ohlora.models import resolve_base
    from ohlora.personas import load_persona

    if cfg.resume:
        raise UserError("--resume continues an SFT run; a DPO run keeps no checkpoints: run it again")
    persona = load_persona(cfg.persona) if cfg.persona else None
    if cfg.from_adapter:
        start = Path(cfg.from_adapter).expanduser()
    elif persona is not None:
        start = persona.folder / persona.adapter
    else:
        raise UserError("--method dpo trains an SFT adapter further: give --persona ID (its adapter) or --from-adapter DIR")
    if not (start / "adapter_config.json").is_file():
        raise UserError(f"{start}: no SFT adapter there (no adapter_config.json); train one first: "
                        f"ohlora train --persona {persona.id if persona else 'ID'}")
    if not cfg.data:
        raise UserError("--method dpo needs preference pairs: --data OUT/preference.json (from `ohlora data from-chats OUT`)")
    if not cfg.output:
        raise UserError("--output DIR is required with --method dpo (the SFT adapter it starts from is kept)")
    output = Path(cfg.output).expanduser().resolve()
    if output == start.resolve():
        raise UserError(f"--output {output} is the adapter DPO starts from: write the trained one elsewhere")
    for path in (cfg.data, cfg.eval_data):
        if path is not None and not (Path(path).expanduser().is_file() or Path(path).expanduser().is_dir()):
            raise UserError(f"preference file not found: {path}")
    plan = DpoPlan(persona, resolve_base(cfg.base if cfg.base is not None else (persona.base if persona else "")),
                   start, cfg.data, cfg.eval_data, output)
    if plan.partial.exists():
        raise UserError(f"an unfinished run left {plan.partial}: delete that folder and run again")
    return plan


def dpo_config(cfg: TrainConfig, partial: Path, total_steps: int, dev):
    from trl import DPOConfig

    kwargs = dict(
        output_dir=str(partial), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs if cfg.epochs > 0 else 1.0, max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        warmup_steps=int(round(cfg.warmup * total_steps)), lr_scheduler_type=cfg.scheduler,
        weight_decay=cfg.weight_decay, seed=cfg.seed, data_seed=cfg.seed, logging_steps=1, save_strategy="no",
        eval_strategy="no", bf16=dev.bf16, fp16=False, use_cpu=not dev.cuda,
        gradient_checkpointing=dev.gradient_checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False},
        optim="paged_adamw_8bit" if cfg.qlora else "adamw_torch", report_to=[], disable_tqdm=True,
        beta=cfg.beta, max_length=cfg.max_length, precompute_ref_log_probs=False, dataloader_num_workers=0,
    )
    known = DPOConfig.__dataclass_fields__
    if "activation_checkpointing" in known:  # transformers >= 5.x renamed gradient_checkpointing
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
        kwargs["activation_checkpointing_kwargs"] = kwargs.pop("gradient_checkpointing_kwargs")
    return DPOConfig(**kwargs)


def trainer_class():
    """DPOTrainer that takes pairs we tokenized (chat's rendering) instead of re-templating them."""
    from trl import DPOTrainer

    class OhloraDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(dataset.column_names):
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    return OhloraDPOTrainer


def _log_callback(history: list[dict], say, total: int):
    from transformers import TrainerCallback

    class Log(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" not in logs:
                return
            row = {"step": state.global_step, "loss": float(logs["loss"])}
            for key in ("rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected", "learning_rate"):
                if key in logs:
                    row[key.replace("rewards/", "reward_").replace("accuracies", "accuracy")] = float(logs[key])
            history.append(row)
            if say is not None:
                say(f"step {row['step']}/{total}: loss {row['loss']:.4f}"
                    + (f", reward margin {row['reward_margins']:+.4f}" if "reward_margins" in row else ""))

    return Log()


def train(cfg: TrainConfig, console=None) -> "TrainResult":
    """Train the adapter further on preference pairs; UserError on bad input."""
    try:
        return _train(cfg, console)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise UserError(f"disk full while training ({exc.filename or 'output'})") from None
        raise
    except MemoryError:
        raise UserError("out of memory: lower --batch-size or --max-length (or use --qlora on a GPU)") from None


def _train(cfg: TrainConfig, console) -> "TrainResult":
    import shutil

    import torch
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoTokenizer

    from ohlora.models import ensure_hf_copy
    from ohlora.prompt import template_for

    from training.encode import Encoder
    from training.fingerprint import base_fingerprint, check_adapter_base
    from training.model import load_model
    from training.outputs import TrainResult, finish_folder, save_adapter, write_gguf
    from training.plan import device_plan, schedule
    from training.report import peak_memory_mb, plot_loss, versions, write_report

    say = console.print if console is not None else (lambda *a, **k: None)
    t0 = time.perf_counter()

    # plan: no model yet
    check_numbers(cfg)
    if cfg.beta <= 0:
        raise UserError("--beta must be positive")
    if not 0 <= cfg.held_out < 1:
        raise UserError("--held-out is a share of the pairs in [0, 1)")
    dev = device_plan(cfg)
    if dev.distributed:
        raise UserError("--method dpo runs in one process (no accelerate launch)")
    plan = plan_dpo(cfg)
    hf_dir = Path(ensure_hf_copy(plan.base))
    fp = base_fingerprint(plan.base, json.loads((hf_dir / "config.json").read_text(encoding="utf-8")))
    check_adapter_base(plan.start, plan.base, fp)

    # pairs: read, split, rendered as chat renders them
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    encoder = Encoder(tokenizer, template_for(plan.base))
    pairs, problems = load_pairs(plan.data)
    if plan.held_out_file:
        held, more = load_pairs(plan.held_out_file)
        problems += more
    else:
        pairs, held = split_pairs(pairs, cfg.held_out, cfg.seed)
    if cfg.persona:
        others = [p for p in pairs + held if p.persona not in (None, cfg.persona)]
        if others:
            problems += [Problem(p.source, f"a pair of persona '{p.persona}', not '{cfg.persona}'") for p in others]
            pairs = [p for p in pairs if p.persona in (None, cfg.persona)]
            held = [p for p in held if p.persona in (None, cfg.persona)]
    train_enc, pairs, bad = encode_pairs(pairs, encoder, plan.persona, cfg.max_length, cfg.seed)
    held_enc, held, bad_held = encode_pairs(held, encoder, plan.persona, cfg.max_length, cfg.seed + 1)
    problems += bad + bad_held
    if cfg.strict and problems:
        raise UserError(f"{problems[0]} (--strict)")
    for p in problems[:5]:
        say(f"[yellow]skipped[/] {p}")
    if not train_enc:
        first = f"; first problem: {problems[0]}" if problems else ""
        raise UserError(f"{plan.data}: no usable preference pairs{first}")
    say(f"data: {len(train_enc)} pairs to train on, {len(held_enc)} held out; base {plan.base.name}; "
        f"starting from {plan.start}; output {plan.output}")

    partial = plan.partial
    partial.mkdir(parents=True)
    try:
        total, _, _ = schedule(cfg, len(train_enc), 1)
        args = dpo_config(cfg, partial, total, dev)

        # model: the base, the SFT adapter trainable; TRL adds its frozen copy "ref"
        torch.manual_seed(cfg.seed)
        model = load_model(hf_dir, dev, cfg)
        model = PeftModel.from_pretrained(model, str(plan.start), is_trainable=True)
        start_weights = {k: v.detach().clone() for k, v in model.named_parameters() if ".default." in k}
        history: list[dict] = []
        trainer = trainer_class()(
            model=model, args=args, processing_class=tokenizer,
            train_dataset=Dataset.from_list(train_enc), callbacks=[_log_callback(history, say if cfg.progress else None, total)],
        )
        model = trainer.model
        if "ref" not in model.peft_config:
            raise UserError("TRL did not add the frozen reference adapter; this TRL/peft pair is not supported")
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)

        # the reference's numbers: the policy before training is the reference
        collate = trainer.data_collator
        ref_train = reply_logps(model, collate, train_enc)
        ref_held = reply_logps(model, collate, held_enc)
        before = {"train": margins(ref_train, ref_train, cfg.beta), "held_out": margins(ref_held, ref_held, cfg.beta)}
        say(f"before: log-prob margin {before['train']['logp_margin']:+.3f} (trained pairs)"
            + (f", {before['held_out']['logp_margin']:+.3f} (held out)" if held_enc else ""))

        try:
            trainer.train()
        except KeyboardInterrupt:
            raise UserError("stopped before the end; nothing was written (a DPO run keeps no checkpoints)") from None

        after = {"train": margins(reply_logps(model, collate, train_enc), ref_train, cfg.beta),
                 "held_out": margins(reply_logps(model, collate, held_enc), ref_held, cfg.beta)}
        say(f"after: reward margin {after['train']['reward_margin']:+.4f} (trained pairs)"
            + (f", {after['held_out']['reward_margin']:+.4f} (held out)" if held_enc else ""))
        params = dict(model.named_parameters())
        ref_frozen = all(torch.equal(params[k.replace(".default.", ".ref.")], v) for k, v in start_weights.items())

        # outputs: the trained adapter only (not the reference copy), report, loss curve, swap
        model.delete_adapter("ref")
        save_adapter(trainer, model, partial, dev, plan.base.name, fp)
        report = {
            "method": "dpo",
            "base": fp,
            "output": str(plan.output),
            "start_adapter": str(plan.start),
            "reference": "the start adapter, frozen (TRL's 'ref' adapter copy)",
            "reference_frozen": ref_frozen,
            "data": {"file": plan.data, "held_out_file": plan.held_out_file, "train_pairs": len(train_enc),
                     "held_out_pairs": len(held_enc), "skipped": [str(p) for p in problems]},
            "settings": {**asdict(cfg), **dev.settings()},
            "beta": cfg.beta,
            "steps": trainer.state.global_step,
            "train_loss": history,
            "before": before,
            "after": after,
            "reward_margin": {split: {"before": before[split].get("reward_margin"),
                                      "after": after[split].get("reward_margin")} for split in ("train", "held_out")},
            "logp_margin": {split: {"before": before[split].get("logp_margin"),
                                    "after": after[split].get("logp_margin")} for split in ("train", "held_out")},
            "wall_seconds": round(time.perf_counter() - t0, 1),
            **peak_memory_mb(dev.cuda),
            "versions": versions(),
        }
        write_report(partial / "report.json", report)
        plot_loss(partial / "loss.png", report)
    except BaseException:  # nothing to resume from: leave no half-written folder behind
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finish_folder(partial, plan.output)
    result = TrainResult(plan.output, report)
    if cfg.gguf:
        result.gguf, note = write_gguf(plan.output, plan.output.with_name(plan.output.name + ".gguf"),
                                       plan.base.arch, Path(plan.base.path))
        if note:
            result.notes.append(note)
    return result
