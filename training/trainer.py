"""The TRL trainer around the model: its arguments, the target-only loss, callbacks, Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ohlora.errors import UserError

from training.callbacks import InterruptCallback, Meter, RecorderCallback, RichProgressCallback, SaveAtEndCallback
from training.config import TrainConfig

if TYPE_CHECKING:
    from training.encode import Encoded
    from training.plan import Devices


_LOST_MARKERS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator was aborted",
                 "Socket Timeout", "Timed out", "remote process exited")


def rank_lost(exc: BaseException) -> str | None:
    """The collective's complaint when another rank of a distributed run died, else None."""
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    text = str(exc)
    dist_error = getattr(dist, "DistError", None)
    if (dist_error is not None and isinstance(exc, dist_error)) or any(m in text for m in _LOST_MARKERS):
        line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        line = line.split("] ", 1)[-1]  # drop gloo's source location
        return line.split(". This is typically")[0][:160]
    return None


class Interrupted(Exception):
    """Training stopped by Ctrl-C after saving a checkpoint."""

    def __init__(self, partial: Path, step: int) -> None:
        super().__init__(f"stopped at step {step}; checkpoint saved in {partial}; continue with --resume")
        self.partial, self.step = partial, step


def sft_config(cfg: TrainConfig, partial: Path, total_steps: int, eval_steps: int, save_steps: int,
               has_eval: bool, dev: "Devices"):
    """TRL's SFTConfig for this run. Build it before the model: under DeepSpeed ZeRO-3 it makes
    `from_pretrained` load sharded."""
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
        bf16=dev.bf16,
        fp16=False,
        use_cpu=not dev.cuda,
        gradient_checkpointing=dev.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        # QLoRA on CUDA: paged 8-bit AdamW (optimizer state pages out under memory pressure);
        # on the CPU there is nothing to page to, and the LoRA's float32 AdamW state is small.
        # LoRA otherwise: fused AdamW, one kernel for all ~250 LoRA tensors instead of ~10 small
        # ops each, which on 2 busy CPU cores cost ~1.5 s a step (--qlora on the CPU and ZeRO-3
        # keep the plain one they were tested with)
        optim=("paged_adamw_8bit" if cfg.qlora and dev.cuda else
               "adamw_torch" if cfg.qlora or cfg.zero3 else "adamw_torch_fused"),
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        max_length=None,
        packing=False,
        dataloader_num_workers=0,
        save_only_model=False,
        ddp_find_unused_parameters=False,  # every LoRA parameter takes part in every step
    )
    if cfg.zero3:
        kwargs["deepspeed"] = zero3_config(dev)
    known = SFTConfig.__dataclass_fields__
    if "save_safetensors" in known:
        kwargs["save_safetensors"] = True
    if "activation_checkpointing" in known:  # transformers >= 5.x renamed gradient_checkpointing
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
        kwargs["activation_checkpointing_kwargs"] = kwargs.pop("gradient_checkpointing_kwargs")
    args = SFTConfig(**kwargs)
    if cfg.zero3:
        import deepspeed

        # on the CPU the arguments start a gloo group through torch.distributed, which DeepSpeed's
        # own comm layer does not see (zero.Init would then count 1 rank); hand it the same group
        deepspeed.init_distributed(dist_backend="nccl" if dev.cuda else "gloo")
    return args


def zero3_config(dev: "Devices") -> dict:
    """DeepSpeed ZeRO-3: parameters, gradients and optimizer state partitioned across the ranks.

    TrainingArguments turns it into an `HfDeepSpeedConfig` when it is built, which is what makes
    `from_pretrained` load each weight already partitioned; so `sft_config` runs before the model."""
    return {
        "zero_optimization": {
            "stage": 3,
            "overlap_comm": False,
            "contiguous_gradients": True,
            "stage3_gather_16bit_weights_on_model_save": True,  # save_model writes the whole adapter
            "offload_optimizer": {"device": "none"},
            "offload_param": {"device": "none"},
        },
        "bf16": {"enabled": dev.bf16},
        "fp16": {"enabled": False},
        "train_micro_batch_size_per_gpu": "auto",
        "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        # the Trainer's torch AdamW over the LoRA parameters (DeepSpeedCPUAdam would compile a
        # C++ extension on first use, and the LoRA's optimizer state is small)
        "zero_force_ds_cpu_optimizer": False,
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
    }


def trainer_class():
    """SFTTrainer whose loss touches the output layer only at target positions (the model is
    patched by `training.model.patch_target_loss`)."""
    from trl import SFTTrainer

    from training.collate import real_tokens

    class OhloraTrainer(SFTTrainer):
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


def float32_lora(model) -> None:
    """Trainable weights back to float32 after SFTTrainer cast a quantized model's LoRA to bf16:
    float32 master weights take every AdamW update (bf16 drops small ones), the CPU has no bf16
    math on most machines, and the adapter file stays float32 like every other run's (the GGUF
    writer reads it). On a bf16 GPU the forward still runs in bf16 under autocast."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def to_dataset(encoded: Sequence["Encoded"]):
    from datasets import Dataset

    return Dataset.from_dict({
        "input_ids": [e.input_ids for e in encoded],
        "labels": [e.labels for e in encoded],
    })


class Run:
    """One trainer with its meter and callbacks; `train()` raises Interrupted on Ctrl-C."""

    def __init__(self, model, args, tokenizer, train_enc: Sequence["Encoded"], eval_enc: Sequence["Encoded"],
                 cfg: TrainConfig, console=None, progress: bool | None = None) -> None:
        from transformers.trainer_callback import PrinterCallback

        from training.collate import PackedCollator, PaddedCollator

        self.meter = Meter()
        self.interrupt = InterruptCallback()
        shown = cfg.progress if progress is None else progress
        self.progress = RichProgressCallback(self.meter, console) if shown else None
        callbacks = [RecorderCallback(self.meter), self.interrupt, SaveAtEndCallback()]
        if self.progress:
            callbacks.append(self.progress)
        self.trainer = trainer_class()(
            model=model,
            args=args,
            train_dataset=to_dataset(train_enc),
            eval_dataset=to_dataset(eval_enc) if eval_enc else None,
            processing_class=tokenizer,
            data_collator=PackedCollator() if cfg.packing else PaddedCollator(tokenizer.pad_token_id or 0),
            callbacks=callbacks,
        )
        if cfg.qlora:
            float32_lora(self.trainer.model)
        self.trainer.meter = self.meter
        self.trainer.loss_is_scaled_for_ga = True
        self.trainer.remove_callback(PrinterCallback)  # the Rich bar shows the logs

    def train(self, partial: Path, resume_from: Path | None, on_trainer: Callable | None = None) -> None:
        if on_trainer is not None:
            on_trainer(self.trainer, self.interrupt)
        try:
            self.trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        except KeyboardInterrupt:
            raise Interrupted(partial, self.trainer.state.global_step) from None
        except Exception as exc:
            lost = rank_lost(exc)
            if lost is None:
                raise
            from training.outputs import latest_checkpoint

            ck = latest_checkpoint(partial) if partial.is_dir() else None
            then = (f"the last checkpoint is {ck.name} in {partial}: run the same command with --resume"
                    if ck is not None else f"no checkpoint yet: delete {partial} and train again")
            raise UserError(
                f"rank {self.trainer.args.process_index} stopped at step {self.trainer.state.global_step}: "
                f"another process of this run is gone ({lost}); no adapter was written; {then}"
            ) from None
        finally:
            self.interrupt.restore()
            if self.progress:
                self.progress.stop()
        state = self.trainer.state
        if self.interrupt.interrupted or state.global_step < state.max_steps:
            raise Interrupted(partial, state.global_step)
        self.meter_over_ranks()

    def meter_over_ranks(self) -> None:
        """Tokens counted on every rank (the report's tokens/s is the whole run's, not rank 0's)."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        t = torch.tensor([self.meter.tokens, self.meter.target_tokens], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        self.meter.tokens, self.meter.target_tokens = int(t[0].item()), int(t[1].item())

    def final_eval_loss(self) -> float:
        """The eval loss at the last step: the logged one if the run ended on an evaluation."""
        step = self.trainer.state.global_step
        last = [h for h in self.meter.history if "eval_loss" in h]
        if last and last[-1]["step"] == step:
            return last[-1]["eval_loss"]
        loss = float(self.trainer.evaluate()["eval_loss"])
        self.meter.history.append({"step": step, "eval_loss": loss})
        return loss
