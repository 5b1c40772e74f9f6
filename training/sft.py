"""Persona SFT: TRL `SFTTrainer` + peft LoRA (QLoRA on CUDA), loss on assistant tokens only.

What makes it faster than plain TRL on the same data (see bench/train_throughput.py):
- the loss projects only the target positions through the 262k-row output layer
  (`training.loss.target_cross_entropy`), never the prompt or the padding;
- batches are padding-free (conversations packed end to end, positions restarting, no
  attention across them), so no compute goes to padding;
- the dataset is tokenized once by us (chat's own rendering), TRL does not re-template it.

Output is atomic: everything is written into `<out>.partial/` (checkpoints included, so
Ctrl-C + `--resume` works) and renamed to `<out>` only when the adapter, `report.json`
and `loss.png` are complete.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import sys
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ohlora.errors import UserError

from training.callbacks import InterruptCallback, Meter, RecorderCallback, RichProgressCallback, SaveAtEndCallback
from training.data import Problem
from training.fingerprint import base_fingerprint, check_adapter_base, read_fingerprint, write_fingerprint

SAMPLE_FILE = "samples_before.json"
SETTINGS_FILE = "ohlora_train.json"
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass
class TrainConfig:
    persona: str | None = None
    data: str | None = None
    eval_data: str | None = None
    fmt: str = "auto"
    question_col: str = "question"
    answer_col: str = "answer"
    system_col: str | None = None
    base: str | None = None
    output: str | None = None
    from_adapter: str | None = None
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: str = "all-linear"
    lr: float = 2e-4
    epochs: float = 3.0
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    warmup: float = 0.03  # fraction of the steps
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    seed: int = 42
    max_length: int = 1024
    qlora: bool = False
    bf16: str = "auto"  # auto | on | off
    gradient_checkpointing: str = "auto"  # auto: on with CUDA, off on CPU
    packing: bool = True
    resume: bool = False
    strict: bool = False
    samples: int = 3
    sample_tokens: int = 80
    eval_steps: int = 0  # 0: about 4 evaluations per run
    save_steps: int = 0  # 0: about 10 checkpoints per run (min every 25 steps)
    progress: bool = True
    gguf: bool = True
    attn: str = "auto"  # attention implementation (auto: sdpa)


@dataclass
class TrainResult:
    output: Path
    report: dict
    gguf: Path | None = None
    notes: list[str] = field(default_factory=list)


class Interrupted(Exception):
    """Training stopped by Ctrl-C after saving a checkpoint."""

    def __init__(self, partial: Path, step: int) -> None:
        super().__init__(f"stopped at step {step}; checkpoint saved in {partial}; continue with --resume")
        self.partial, self.step = partial, step


# ---------------------------------------------------------------- setup helpers


def _device_plan(cfg: TrainConfig) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    if cfg.qlora and not cuda:
        raise UserError(
            "--qlora needs a CUDA GPU (bitsandbytes 4-bit), and none was found; "
            "drop --qlora to train on the CPU (LoRA, float32 weights)"
        )
    if cfg.qlora:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UserError("--qlora needs bitsandbytes: pip install 'ohlora[gpu]' (or pip install bitsandbytes)") from None
    if cfg.bf16 not in ("auto", "on", "off"):
        raise UserError(f"--bf16 must be auto, on or off (got {cfg.bf16!r})")
    if cuda:
        bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and torch.cuda.is_bf16_supported())
    else:
        bf16 = cfg.bf16 == "on"  # CPU: float32 unless asked (bf16 autocast is slower on most CPUs)
    gc = cfg.gradient_checkpointing
    if gc not in ("auto", "on", "off"):
        raise UserError(f"--gradient-checkpointing must be auto, on or off (got {gc!r})")
    # auto: on for CUDA (GPU memory is the limit); off on the CPU, where RAM is plentiful and
    # recomputing the forward costs ~40% of the step (Gemma 3 270M: 111 -> 154 tok/s on 2 cores)
    return {"cuda": cuda, "bf16": bf16, "gradient_checkpointing": gc == "on" or (gc == "auto" and cuda)}


def _check_numbers(cfg: TrainConfig) -> None:
    checks = [
        (cfg.rank >= 1, "--rank must be at least 1"),
        (cfg.alpha > 0, "--alpha must be positive"),
        (0 <= cfg.dropout < 1, "--dropout must be in [0, 1)"),
        (cfg.lr > 0, "--lr must be positive"),
        (cfg.epochs > 0 or cfg.max_steps > 0, "--epochs must be positive (or give --max-steps)"),
        (cfg.batch_size >= 1, "--batch-size must be at least 1"),
        (cfg.grad_accum >= 1, "--grad-accum must be at least 1"),
        (0 <= cfg.warmup < 1, "--warmup is a fraction of the steps in [0, 1)"),
        (cfg.max_length >= 16, "--max-length must be at least 16"),
        (cfg.samples >= 0, "--samples must be 0 or more"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg)


@dataclass
class _Plan:
    persona: object | None
    train_path: str
    eval_path: str | None
    base: object
    output: Path
    gguf_path: Path

    @property
    def partial(self) -> Path:
        return self.output.with_name(self.output.name + ".partial")


def _plan(cfg: TrainConfig) -> _Plan:
    from ohlora.models import resolve_base
    from ohlora.personas import load_persona

    persona = load_persona(cfg.persona) if cfg.persona else None
    if persona is None and not cfg.data:
        raise UserError("give --persona ID (train its adapter) or --data FILE with --output DIR")
    if cfg.data:
        train_path = cfg.data
    else:
        if not persona.train_file.is_file():
            raise UserError(f"persona '{persona.id}' has no training data at {persona.train_file}; give --data FILE")
        train_path = str(persona.train_file)
    eval_path = cfg.eval_data
    if eval_path is None and persona is not None and persona.eval_file.is_file() and not cfg.data:
        eval_path = str(persona.eval_file)
    base = resolve_base(cfg.base if cfg.base is not None else (persona.base if persona else ""))
    if cfg.output:
        output = Path(cfg.output).expanduser().resolve()
    elif persona is not None and not cfg.data and cfg.base is None:
        output = (persona.folder / persona.adapter).resolve()
    else:
        raise UserError("--output DIR is required with --data or --base (the persona's own adapter is kept)")
    gguf_path = (
        (persona.folder / persona.adapter_gguf).resolve()
        if persona is not None and not cfg.output and output == (persona.folder / persona.adapter).resolve()
        else output.with_name(output.name + ".gguf")
    )
    plan = _Plan(persona, train_path, eval_path, base, output, gguf_path)
    # cheap checks before any model or tokenizer is loaded
    from training.data import detect_format

    for path in (train_path, eval_path):
        if path is not None and cfg.fmt == "auto":
            detect_format(path)
        if path is not None and not Path(path.partition("#")[0]).is_file():
            raise UserError(f"data file not found: {path.partition('#')[0]}")
    if cfg.resume and not plan.partial.is_dir():
        raise UserError(f"nothing to resume: {plan.partial} does not exist (train without --resume)")
    return plan


def _load_rows(cfg: TrainConfig, path: str, encoder, persona, what: str):
    from training.data import load_data
    from training.encode import encode_rows

    ds = load_data(path, cfg.fmt, cfg.strict, cfg.question_col, cfg.answer_col, cfg.system_col)
    encoded, too_long = encode_rows(ds.rows, encoder, persona, cfg.max_length, cfg.seed)
    if too_long and cfg.strict:
        raise UserError(f"{too_long[0]} (--strict)")
    problems = ds.problems + too_long
    if not encoded:
        first = f"; first problem: {problems[0]}" if problems else ""
        raise UserError(f"{path}: no usable {what} conversations{first}")
    return encoded, problems, len(ds.rows) + len(ds.problems)


def _to_dataset(encoded):
    from datasets import Dataset

    return Dataset.from_dict({
        "input_ids": [e.input_ids for e in encoded],
        "labels": [e.labels for e in encoded],
    })


def patch_target_loss(model) -> None:
    """Let `model(..., labels=..., ohlora_target_loss=True)` return the target-only loss.

    The loss runs inside the model's forward, so DDP / DeepSpeed hooks see a normal forward.
    """
    from transformers.modeling_outputs import CausalLMOutputWithPast
    from trl.trainer.utils import maybe_gather_lm_head_ctx

    from training.loss import target_cross_entropy

    original = model.forward
    softcap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)

    def forward(self, *args, ohlora_target_loss=False, labels=None, num_items_in_batch=None, **kwargs):
        if not ohlora_target_loss:
            if labels is not None:
                kwargs["labels"] = labels
            if num_items_in_batch is not None:
                kwargs["num_items_in_batch"] = num_items_in_batch
            return original(*args, **kwargs)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs["use_cache"] = False
        backbone = getattr(self, self.base_model_prefix)
        hidden = backbone(*args, **kwargs).last_hidden_state
        head = self.get_output_embeddings()
        with maybe_gather_lm_head_ctx(head.weight):
            loss, n = target_cross_entropy(hidden, labels, head.weight, softcap, num_items_in_batch)
        out = CausalLMOutputWithPast(loss=loss)
        out["n_target"] = n
        return out

    model.forward = types.MethodType(forward, model)


def _trainer_class():
    from trl import SFTTrainer

    from training.collate import real_tokens

    class OhloraTrainer(SFTTrainer):
        """SFTTrainer whose loss touches the output layer only at target positions."""

        meter: Meter

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            training = model.training
            if training:
                self.meter.tokens += real_tokens(inputs)
            out = model(**inputs, ohlora_target_loss=True, num_items_in_batch=num_items_in_batch)
            loss = out.loss
            if training:
                self.meter.target_tokens += int(out["n_target"])
                if num_items_in_batch is None:
                    loss = loss / self.current_gradient_accumulation_steps
                elif self.args.average_tokens_across_devices:
                    loss = loss * self.accelerator.num_processes
            return (loss, out) if return_outputs else loss

    return OhloraTrainer


def _load_model(hf_dir: Path, plan_dev: dict, cfg: TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"attn_implementation": "sdpa" if cfg.attn == "auto" else cfg.attn}
    if cfg.qlora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if plan_dev["bf16"] else torch.float16,
        )
        kwargs["dtype"] = torch.bfloat16 if plan_dev["bf16"] else torch.float16
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # one 4-bit copy per GPU under DDP
    elif plan_dev["cuda"]:
        kwargs["dtype"] = torch.bfloat16 if plan_dev["bf16"] else torch.float32
    else:
        kwargs["dtype"] = torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(str(hf_dir), **kwargs)
    except torch.OutOfMemoryError:
        raise UserError("out of memory while loading the base model; try --qlora on a GPU or a smaller base") from None
    model.config.use_cache = False
    if cfg.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=plan_dev["gradient_checkpointing"])
    return model


def _wrap_lora(model, cfg: TrainConfig, base, fp: dict):
    from peft import LoraConfig, PeftModel, get_peft_model

    if cfg.from_adapter:
        src = Path(cfg.from_adapter).expanduser()
        if not (src / "adapter_config.json").is_file():
            raise UserError(f"{src}: not a PEFT adapter folder (no adapter_config.json)")
        check_adapter_base(src, base, fp)
        return PeftModel.from_pretrained(model, str(src), is_trainable=True)
    targets: str | list[str] = cfg.targets if cfg.targets == "all-linear" else [t.strip() for t in cfg.targets.split(",") if t.strip()]
    lcfg = LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
        bias="none", task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, lcfg)
    except ValueError as exc:
        raise UserError(f"--targets {cfg.targets}: {exc}") from None


# ---------------------------------------------------------------- samples


def _sample_prompts(eval_rows, train_rows, n: int) -> list:
    rows = (eval_rows or []) + (train_rows or [])
    return rows[:n]


def generate_samples(model, tokenizer, encoder, persona, rows, max_new_tokens: int) -> list[dict]:
    """Greedy answers to the first user turn of a few rows (as chat would prompt them)."""
    import torch

    from training.encode import row_datetime, row_messages

    out = []
    was_training = model.training
    model.eval()
    for i, row in enumerate(rows):
        first_user = row.turns[:1]
        msgs = row_messages(type(row)(list(first_user), row.memory, row.source), persona, row_datetime(i))
        if row.system and persona is None:
            msgs.insert(0, {"role": "system", "content": row.system})
        text = encoder.template.render(msgs, add_generation_prompt=True)
        ids = encoder.prefix + tokenizer(text, add_special_tokens=False)["input_ids"]
        inp = torch.tensor([ids], device=model.device)
        end_id = tokenizer.convert_tokens_to_ids(encoder.template.end_of_turn)
        eos = [x for x in {end_id, tokenizer.eos_token_id} if isinstance(x, int) and x >= 0]
        with torch.no_grad():
            gen = model.generate(
                input_ids=inp, attention_mask=torch.ones_like(inp), max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id or 0, use_cache=True,
            )
        new = gen[0, inp.shape[1]:].tolist()
        stopped = bool(new) and new[-1] in eos
        out.append({
            "prompt": first_user[0]["content"], "memory": row.memory,
            "answer": tokenizer.decode(new, skip_special_tokens=True).strip(), "stopped": stopped,
        })
    if was_training:
        model.train()
    return out


# ---------------------------------------------------------------- output folder


def _latest_checkpoint(partial: Path) -> Path | None:
    cks = sorted(
        (p for p in partial.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    return cks[-1] if cks else None


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _prepare_partial(plan: _Plan, cfg: TrainConfig, fp: dict) -> Path | None:
    partial = plan.partial
    if not _is_main():  # rank 0 checks and creates; the others follow its checkpoint
        partial.mkdir(parents=True, exist_ok=True)
        return _latest_checkpoint(partial) if cfg.resume else None
    if cfg.resume:
        if not partial.is_dir():
            raise UserError(f"nothing to resume: {partial} does not exist (train without --resume)")
        check_adapter_base(partial, plan.base, fp)
        ck = _latest_checkpoint(partial)
        if ck is None:
            raise UserError(f"nothing to resume: no checkpoint in {partial} (delete it and train again)")
        return ck
    if partial.exists():
        raise UserError(
            f"an interrupted run is in {partial}: continue it with --resume, or delete that folder to start over"
        )
    partial.mkdir(parents=True)
    write_fingerprint(partial, fp)
    return None


def _finish_folder(partial: Path, output: Path) -> None:
    """Drop checkpoints and scratch files, then swap `partial` in as `output`."""
    for p in partial.glob("checkpoint-*"):
        shutil.rmtree(p, ignore_errors=True)
    for name in (SAMPLE_FILE, "README.md", "training_args.bin"):
        (partial / name).unlink(missing_ok=True)
    old = output.with_name(output.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if output.exists():
        output.rename(old)
    partial.rename(output)
    shutil.rmtree(old, ignore_errors=True)


def _fix_adapter_config(folder: Path, base_name: str) -> None:
    """Portable adapter_config.json: name the base, not this machine's cache path."""
    path = folder / "adapter_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = base_name
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _peak_memory_mb(cuda: bool) -> dict:
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mb": round(rss_kb / 1024, 1)}
    if cuda:
        import torch

        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes", "deepspeed"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


# ---------------------------------------------------------------- main entry


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
        raise UserError("out of memory: lower --batch-size or --max-length (or use --qlora on a GPU)") from None


def _train(cfg: TrainConfig, console, on_trainer) -> TrainResult:
    _check_numbers(cfg)
    dev = _device_plan(cfg)
    plan = _plan(cfg)
    import torch
    from transformers import AutoTokenizer
    from trl import SFTConfig

    from ohlora.models import ensure_hf_copy
    from ohlora.prompt import template_for

    from training.collate import PackedCollator, PaddedCollator
    from training.encode import Encoder
    from training.report import plot_loss, write_report

    say = console.print if console is not None else (lambda *a, **k: None)
    t_start = time.perf_counter()
    hf_dir = ensure_hf_copy(plan.base)
    model_cfg = json.loads((Path(hf_dir) / "config.json").read_text(encoding="utf-8"))
    fp = base_fingerprint(plan.base, model_cfg)
    if cfg.from_adapter:  # refuse an adapter of another base before anything is written
        src = Path(cfg.from_adapter).expanduser()
        if not (src / "adapter_config.json").is_file():
            raise UserError(f"{src}: not a PEFT adapter folder (no adapter_config.json)")
        check_adapter_base(src, plan.base, fp)
    template = template_for(plan.base)
    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    encoder = Encoder(tokenizer, template)
    train_enc, train_problems, n_train_rows = _load_rows(cfg, plan.train_path, encoder, plan.persona, "training")
    eval_enc, eval_problems = [], []
    if plan.eval_path:
        eval_enc, eval_problems, _ = _load_rows(cfg, plan.eval_path, encoder, plan.persona, "eval")
    for p in (train_problems + eval_problems)[:5]:
        say(f"[yellow]skipped[/] {p}")
    if len(train_problems + eval_problems) > 5:
        say(f"[yellow]skipped[/] … {len(train_problems + eval_problems) - 5} more (see report.json)")
    say(f"data: {len(train_enc)} training / {len(eval_enc)} eval conversations; base {plan.base.name}; output {plan.output}")

    resume_ck = _prepare_partial(plan, cfg, fp)
    partial = plan.partial
    settings = {**asdict(cfg), **{f"device_{k}": v for k, v in dev.items()}}
    settings["world_size"] = int(os.environ.get("WORLD_SIZE", "1"))
    if _is_main():
        (partial / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, default=str) + "\n", encoding="utf-8")

    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = max(1, -(-len(train_enc) // (cfg.batch_size * cfg.grad_accum * world)))
    total_steps = cfg.max_steps if cfg.max_steps > 0 else int(round(steps_per_epoch * cfg.epochs)) or 1
    # auto: 4 evaluations a run; a short run (< 8 steps) is evaluated once, at its end
    eval_steps = cfg.eval_steps or (total_steps // 4 if total_steps >= 8 else total_steps)
    save_steps = cfg.save_steps or max(1, min(25, total_steps // 10 or 1))
    # before the model: under DeepSpeed ZeRO-3 the args make from_pretrained load sharded
    args = _sft_config(cfg, partial, total_steps, eval_steps, save_steps, bool(eval_enc), dev)
    torch.manual_seed(cfg.seed)
    model = _load_model(Path(hf_dir), dev, cfg)
    patch_target_loss(model)
    model = _wrap_lora(model, cfg, plan.base, fp)

    from training.data import load_data

    sample_rows = []
    if cfg.samples and not _distributed():
        src_rows = load_data(plan.eval_path, cfg.fmt).rows if plan.eval_path else []
        sample_rows = _sample_prompts(src_rows, [] if src_rows else load_data(plan.train_path, cfg.fmt, question_col=cfg.question_col, answer_col=cfg.answer_col, system_col=cfg.system_col).rows, cfg.samples)
    samples_file = partial / SAMPLE_FILE
    if sample_rows and samples_file.is_file():
        samples_before = json.loads(samples_file.read_text(encoding="utf-8"))
    elif sample_rows:
        say(f"sampling {len(sample_rows)} answers before training …")
        samples_before = generate_samples(model, tokenizer, encoder, plan.persona, sample_rows, cfg.sample_tokens)
        samples_file.write_text(json.dumps(samples_before, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        samples_before = []

    meter = Meter()
    interrupt = InterruptCallback()
    callbacks = [RecorderCallback(meter), interrupt, SaveAtEndCallback()]
    progress = RichProgressCallback(meter, console) if cfg.progress else None
    if progress:
        callbacks.append(progress)
    collator = PackedCollator() if cfg.packing else PaddedCollator(tokenizer.pad_token_id or 0)
    trainer_cls = _trainer_class()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=_to_dataset(train_enc),
        eval_dataset=_to_dataset(eval_enc) if eval_enc else None,
        processing_class=tokenizer,
        data_collator=collator,
        callbacks=callbacks,
    )
    trainer.meter = meter
    trainer.loss_is_scaled_for_ga = True
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the Rich bar shows the logs
    if on_trainer is not None:
        on_trainer(trainer, interrupt)
    try:
        trainer.train(resume_from_checkpoint=str(resume_ck) if resume_ck else None)
    except KeyboardInterrupt:
        raise Interrupted(partial, trainer.state.global_step) from None
    finally:
        interrupt.restore()
        if progress:
            progress.stop()
    if interrupt.interrupted or trainer.state.global_step < trainer.state.max_steps:
        raise Interrupted(partial, trainer.state.global_step)

    final_eval = None
    if eval_enc:
        last = [h for h in meter.history if "eval_loss" in h]
        if last and last[-1]["step"] == trainer.state.global_step:
            final_eval = last[-1]["eval_loss"]
        else:
            final_eval = float(trainer.evaluate()["eval_loss"])
            meter.history.append({"step": trainer.state.global_step, "eval_loss": final_eval})
    samples_after = (
        generate_samples(model, tokenizer, encoder, plan.persona, sample_rows, cfg.sample_tokens) if sample_rows else []
    )
    if _distributed() or trainer.is_deepspeed_enabled:
        trainer.save_model(str(partial))  # gathers ZeRO-3 shards; every rank must call it
        if not _is_main():
            return TrainResult(plan.output, {})
        for pattern in ("tokenizer*", "special_tokens_map.json", "chat_template.jinja", "training_args.bin"):
            for extra in partial.glob(pattern):
                extra.unlink()
    else:
        model.save_pretrained(str(partial), safe_serialization=True)
    _fix_adapter_config(partial, plan.base.name)
    write_fingerprint(partial, fp)
    big = [p.name for p in partial.glob("*.safetensors") if p.stat().st_size > MAX_FILE_BYTES]
    report = {
        "base": fp,
        "output": str(plan.output),
        "data": {
            "train_file": plan.train_path, "eval_file": plan.eval_path,
            "train_conversations": len(train_enc), "eval_conversations": len(eval_enc),
            "skipped": [str(p) for p in train_problems + eval_problems],
            "train_rows_read": n_train_rows,
        },
        "settings": settings,
        "steps": trainer.state.global_step,
        "train_loss": [h for h in meter.history if "loss" in h],
        "eval_loss": [h for h in meter.history if "eval_loss" in h],
        "final_eval_loss": final_eval,
        "tokens_trained": meter.tokens,
        "target_tokens": meter.target_tokens,
        "tokens_per_s": round(meter.tokens_per_s(), 1),
        "train_seconds": round(meter.train_time, 1),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        **_peak_memory_mb(dev["cuda"]),
        "versions": _versions(),
        "samples_before": samples_before,
        "samples_after": samples_after,
        "resumed": resume_ck is not None,
    }
    write_report(partial / "report.json", report)
    plot_loss(partial / "loss.png", report)
    _finish_folder(partial, plan.output)
    result = TrainResult(plan.output, report)
    if big:
        result.notes.append(f"adapter file over 20 MB: {', '.join(big)} (lower --rank to ship it in the repo)")
    if cfg.gguf:
        result.gguf, note = _write_gguf(plan.output, plan.gguf_path, plan.base.arch, Path(plan.base.path))
        if note:
            result.notes.append(note)
    return result


def _sft_config(cfg: TrainConfig, partial: Path, total_steps: int, eval_steps: int, save_steps: int, has_eval: bool, dev: dict):
    from trl import SFTConfig

    kwargs = dict(
        output_dir=str(partial),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        num_train_epochs=cfg.epochs if cfg.epochs > 0 else 1.0,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        warmup_steps=int(round(cfg.warmup * total_steps)),
        lr_scheduler_type=cfg.scheduler,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=1,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        prediction_loss_only=True,
        bf16=dev["bf16"],
        fp16=False,
        use_cpu=not dev["cuda"],
        gradient_checkpointing=dev["gradient_checkpointing"],
        gradient_checkpointing_kwargs={"use_reentrant": False},
        optim="paged_adamw_8bit" if cfg.qlora else "adamw_torch",
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        max_length=None,
        packing=False,
        dataloader_num_workers=0,
        save_only_model=False,
    )
    fields = SFTConfig.__dataclass_fields__
    if "save_safetensors" in fields:
        kwargs["save_safetensors"] = True
    if "activation_checkpointing" in fields:  # transformers >= 5.x renamed gradient_checkpointing
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
        kwargs["activation_checkpointing_kwargs"] = kwargs.pop("gradient_checkpointing_kwargs")
    return SFTConfig(**kwargs)


def _write_gguf(adapter_dir: Path, out_path: Path, arch: str, base_path: Path) -> tuple[Path | None, str | None]:
    try:
        from training.gguf_lora import write_lora_gguf
    except ImportError:
        return None, "adapter.gguf not written: training.gguf_lora is not available yet"
    import inspect

    kwargs = {"base": base_path} if "base" in inspect.signature(write_lora_gguf).parameters else {}
    try:
        write_lora_gguf(adapter_dir, out_path, arch, **kwargs)
    except UserError as exc:
        return None, f"adapter.gguf not written: {exc}"
    return out_path, None


def default_threads() -> None:
    """Use every core for training unless the user set OMP_NUM_THREADS."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
