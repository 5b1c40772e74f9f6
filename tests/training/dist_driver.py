"""One rank of a distributed test run: `python -m training.cli` exactly, plus probes.

tests/training/test_distributed.py starts it through `training.launch` (torchrun), so the ranks
train with the real CLI, flags and launcher; the probes only watch, from a trainer callback:

- OHLORA_TEST_PROBE_DIR=DIR: each rank writes DIR/rank<R>.json: at the start, how many parameter
  elements it holds and how many the model has (ZeRO-3: its partition); after each optimizer
  step, a sha256 of its LoRA weights (DDP: equal on every rank).
- OHLORA_TEST_KILL=RANK:STEP: that rank kills itself (SIGKILL) as step STEP+1 begins.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path


def _probe():
    from transformers import TrainerCallback

    rank = int(os.environ.get("RANK", "0"))
    out_dir = os.environ.get("OHLORA_TEST_PROBE_DIR")
    kill = os.environ.get("OHLORA_TEST_KILL")
    kill_rank, kill_step = (int(x) for x in kill.split(":")) if kill else (-1, -1)
    record: dict = {"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", "1")), "steps": []}

    def write() -> None:
        if out_dir:
            path = Path(out_dir) / f"rank{rank}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record), encoding="utf-8")
            tmp.replace(path)

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            held = total = visible = zero_params = 0
            for p in model.parameters():
                if hasattr(p, "ds_id"):  # a ZeRO-3 parameter: this rank keeps only ds_tensor
                    zero_params += 1
                    total += p.ds_numel
                    held += p.ds_tensor.numel()
                    visible += p.data.numel()  # 0 while not gathered
                else:
                    total += p.numel()
                    held += p.numel()
                    visible += p.numel()
            record.update(params_total=total, params_held=held, params_visible=visible, zero_params=zero_params)
            write()

        def on_step_begin(self, args, state, control, **kw):
            if rank == kill_rank and state.global_step == kill_step:
                os.kill(os.getpid(), signal.SIGKILL)

        def on_step_end(self, args, state, control, model=None, **kw):
            h = hashlib.sha256()
            for name, p in sorted(model.named_parameters()):
                if p.requires_grad and not hasattr(p, "ds_id"):
                    h.update(name.encode())
                    h.update(p.detach().float().cpu().numpy().tobytes())
            record["steps"].append({"step": state.global_step, "lora_sha256": h.hexdigest()})
            write()

    return Probe()


def main() -> int:
    from training.model import quiet_libraries

    quiet_libraries()
    import training.sft as sft

    real_train = sft.train

    def train(cfg, console=None, on_trainer=None):
        return real_train(cfg, console, on_trainer=lambda trainer, interrupt: trainer.add_callback(_probe()))

    sft.train = train  # training.cli imports it when it runs
    from training.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main())
