"""The TRL trainer around the model: its arguments, the target-only loss, callbacks, Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from training.callbacks import InterruptCallback, Meter, RecorderCallback, RichProgressCallback, SaveAtEndCallback
from training.config import TrainConfig

if TYPE_CHECKING:
    from training.encode import Encoded
    from training.plan import Devices


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
    known = SFTConfig.__dataclass_fields__
    if "save_safetensors" in known:
        kwargs["save_safetensors"] = True
    if "activation_checkpointing" in known:  # transformers >= 5.x renamed gradient_checkpointing
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
        kwargs["activation_checkpointing_kwargs"] = kwargs.pop("gradient_checkpointing_kwargs")
    return SFTConfig(**kwargs)


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


def to_dataset(encoded: Sequence["Encoded"]):
    from datasets import Dataset

    return Dataset.from_dict({
        "input_ids": [e.input_ids for e in encoded],
        "labels": [e.labels for e in encoded],
    })


class Run:
    """One trainer with its meter and callbacks; `train()` raises Interrupted on Ctrl-C."""

    def __init__(self, model, args, tokenizer, train_enc: Sequence["Encoded"], eval_enc: Sequence["Encoded"],
                 cfg: TrainConfig, console=None) -> None:
        from transformers.trainer_callback import PrinterCallback

        from training.collate import PackedCollator, PaddedCollator

        self.meter = Meter()
        self.interrupt = InterruptCallback()
        self.progress = RichProgressCallback(self.meter, console) if cfg.progress else None
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
        finally:
            self.interrupt.restore()
            if self.progress:
                self.progress.stop()
        state = self.trainer.state
        if self.interrupt.interrupted or state.global_step < state.max_steps:
            raise Interrupted(partial, state.global_step)

    def final_eval_loss(self) -> float:
        """The eval loss at the last step: the logged one if the run ended on an evaluation."""
        step = self.trainer.state.global_step
        last = [h for h in self.meter.history if "eval_loss" in h]
        if last and last[-1]["step"] == step:
            return last[-1]["eval_loss"]
        loss = float(self.trainer.evaluate()["eval_loss"])
        self.meter.history.append({"step": step, "eval_loss": loss})
        return loss
