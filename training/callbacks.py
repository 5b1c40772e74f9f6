"""Trainer callbacks: a Rich progress bar (loss, tokens/s, ETA), Ctrl-C -> checkpoint, a log recorder."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

from transformers import TrainerCallback


@dataclass
class Meter:
    """Counts what the loss function saw; shared by the trainer and the callbacks."""

    tokens: int = 0  # real (unpadded) tokens through a training step
    target_tokens: int = 0
    train_time: float = 0.0  # seconds inside training steps (evaluation and checkpoints excluded)
    started: float | None = None  # start of the current step
    history: list[dict] = field(default_factory=list)  # every log line: step, loss, eval_loss, tokens/s

    def tokens_per_s(self) -> float:
        return self.tokens / self.train_time if self.train_time > 0 else 0.0


class RecorderCallback(TrainerCallback):
    """Keeps the train/eval losses per step and the training clock."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def on_step_begin(self, args, state, control, **kw):
        self.meter.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self.meter.started is not None:
            self.meter.train_time += time.perf_counter() - self.meter.started
            self.meter.started = None

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        row = {"step": state.global_step}
        for key in ("loss", "eval_loss", "learning_rate", "grad_norm"):
            if key in logs:
                row[key] = float(logs[key])
        if len(row) > 1:
            row["tokens_per_s"] = round(self.meter.tokens_per_s(), 1)
            self.meter.history.append(row)


def _any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is on any (all ranks call it at the same step), so a Ctrl-C
    that reaches the ranks a moment apart still stops them all after the same step."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return flag
    import torch

    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class InterruptCallback(TrainerCallback):
    """First Ctrl-C: finish the current step, save a checkpoint, stop. Second: stop now."""

    def __init__(self) -> None:
        self.interrupted = False
        self._old = None

    def _handler(self, signum, frame):
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True

    def on_train_begin(self, args, state, control, **kw):
        try:
            self._old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread
            self._old = None

    def on_step_end(self, args, state, control, **kw):
        if _any_rank(self.interrupted):  # every rank calls it, every step
            self.interrupted = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kw):
        self.restore()

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def interrupt(self) -> None:
        """What Ctrl-C does (for tests)."""
        self.interrupted = True


class SaveAtEndCallback(TrainerCallback):
    """Checkpoint after the last step too, so a failure while writing the adapter can be resumed."""

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= state.max_steps:
            control.should_save = True
        return control


class RichProgressCallback(TrainerCallback):
    """One bar: step n/N, loss, tokens/s, elapsed and ETA."""

    def __init__(self, meter: Meter, console=None) -> None:
        self.meter = meter
        self.console = console
        self.progress = None
        self.task = None
        self.loss = float("nan")

    def on_train_begin(self, args, state, control, **kw):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, loss="-", tps="-")

    def on_step_end(self, args, state, control, **kw):
        if self.progress is not None:
            self.progress.update(
                self.task, completed=state.global_step, tps=f"{self.meter.tokens_per_s():.0f}",
                loss=f"{self.loss:.3f}" if self.loss == self.loss else "-",
            )

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
        if logs and "eval_loss" in logs and self.progress is not None:
            self.progress.console.print(f"step {state.global_step}: eval loss {logs['eval_loss']:.4f}")

    def on_train_end(self, args, state, control, **kw):
        self.stop()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
