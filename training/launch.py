"""`ohlora train --nproc N` / `--launcher ...` / `--nnodes M`: start the ranks of a multi-process run.

This process checks the flags and files (so a typo fails in a second, not after N model loads),
then runs one launcher with the flags that matter, and the ranks run `training.cli` with the
same training flags:

- `torchrun` (the default): `python -m torch.distributed.run --nproc_per_node N`, `--standalone`
  on one machine, static rendezvous on node 0 (`--master-addr`, `--master-port`) across machines;
- `accelerate`: `accelerate launch --multi_gpu --num_processes TOTAL` (TOTAL over all machines),
  with `ACCELERATE_USE_CPU=1` on the CPU. Never `--cpu --num_processes 2`: that runs one process;
- `deepspeed`: the ranks as torchrun starts them, each training under DeepSpeed ZeRO-3
  (`--zero3`), with `DS_ACCELERATOR=cpu` on the CPU (gloo). (The `deepspeed` command's
  pdsh/hostfile launcher is not used; torchrun's rendezvous does the same for every setting.)

On the CPU each rank gets `cores // N` threads (OMP_NUM_THREADS, unless set). Ctrl-C is passed
to the ranks once, so they agree on a step, save a checkpoint and stop (`--resume` continues).
When a rank fails, the others stop, no adapter is written, and this process says so in one line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from ohlora.errors import UserError

LAUNCHERS = ("torchrun", "accelerate", "deepspeed")
DEFAULT_PORT = 29500
_DESTS = ("nproc", "launcher", "nnodes", "node_rank", "master_addr", "master_port")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("several processes (DDP, DeepSpeed ZeRO-3, several machines)")
    sup = argparse.SUPPRESS
    g.add_argument("--nproc", type=int, metavar="N", default=sup,
                   help="processes on this machine, one per GPU or a share of the CPU cores "
                        "(default: 1, this process trains; with --launcher or --nnodes: the GPU count, else 1)")
    g.add_argument("--launcher", choices=LAUNCHERS, default=sup,
                   help="how the processes start: torchrun (DDP, the default), accelerate (DDP), "
                        "deepspeed (ZeRO-3: parameters sharded across the processes)")
    g.add_argument("--nnodes", type=int, metavar="M", default=sup,
                   help="machines in the run; start the same command on each with its own --node-rank")
    g.add_argument("--node-rank", type=int, metavar="I", default=sup, help="this machine's place, 0..M-1 (default: 0)")
    g.add_argument("--master-addr", metavar="HOST", default=sup,
                   help="node 0's address, reachable from every machine (required with --nnodes > 1)")
    g.add_argument("--master-port", type=int, metavar="PORT", default=sup,
                   help=f"node 0's rendezvous port (default: {DEFAULT_PORT}; one machine: a free port)")


@dataclass(frozen=True)
class LaunchOptions:
    launcher: str = "torchrun"
    nproc: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes


def requested(args: argparse.Namespace) -> bool:
    """Did the user ask for more than this one process?"""
    given = vars(args)
    if any(k in given for k in ("launcher", "nnodes", "node_rank", "master_addr", "master_port")):
        return True
    return given.get("nproc", 1) != 1


def options(args: argparse.Namespace, cuda_devices: int) -> LaunchOptions:
    """The launch flags, checked; UserError names the flag."""
    given = vars(args)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("this process is already one rank of a distributed run (WORLD_SIZE is set): "
                        "drop --nproc/--launcher/--nnodes, or start `ohlora train` itself without a launcher")
    nnodes = given.get("nnodes", 1)
    nproc = given.get("nproc", cuda_devices or 1)
    node_rank = given.get("node_rank", 0)
    if nproc < 1:
        raise UserError("--nproc must be at least 1")
    if nnodes < 1:
        raise UserError("--nnodes must be at least 1")
    if not 0 <= node_rank < nnodes:
        raise UserError(f"--node-rank must be in 0..{nnodes - 1} (got {node_rank})")
    master_addr = given.get("master_addr")
    if nnodes > 1 and not master_addr:
        raise UserError(f"--nnodes {nnodes} needs --master-addr: node 0's address, reachable from every machine")
    port = given.get("master_port")
    if port is not None and not 1 <= port <= 65535:
        raise UserError("--master-port must be in 1..65535")
    if cuda_devices and nproc > cuda_devices:
        raise UserError(f"--nproc {nproc} is more than the {cuda_devices} GPU(s) here (one process per GPU)")
    return LaunchOptions(given.get("launcher", "torchrun"), nproc, nnodes, node_rank, master_addr, port)


def cpu_threads(nproc: int) -> int:
    return max(1, (os.cpu_count() or 1) // nproc)


def command(opt: LaunchOptions, child: Sequence[str], cuda: bool,
            entry: Sequence[str] = ("-m", "training.cli")) -> tuple[list[str], dict[str, str]]:
    """The launcher's argv and the environment it adds, for `child` (the ranks' training flags)."""
    env: dict[str, str] = {}
    if not cuda and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(cpu_threads(opt.nproc))
    child = list(child)
    if opt.launcher == "accelerate":
        argv = [sys.executable, "-m", "accelerate.commands.launch"]
        if opt.world_size > 1:
            argv.append("--multi_gpu")  # also on the CPU (with ACCELERATE_USE_CPU): --cpu would run 1 process
        argv += ["--num_processes", str(opt.world_size), "--num_machines", str(opt.nnodes),
                 "--mixed_precision", "no", "--dynamo_backend", "no"]
        if opt.nnodes > 1:
            argv += ["--machine_rank", str(opt.node_rank), "--main_process_ip", str(opt.master_addr),
                     "--main_process_port", str(opt.master_port or DEFAULT_PORT)]
        elif opt.master_port:
            argv += ["--main_process_port", str(opt.master_port)]
        if not cuda:
            env["ACCELERATE_USE_CPU"] = "1"
        return argv + list(entry) + child, env
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(opt.nproc)]
    if opt.nnodes > 1:
        argv += ["--nnodes", str(opt.nnodes), "--node_rank", str(opt.node_rank),
                 "--master_addr", str(opt.master_addr), "--master_port", str(opt.master_port or DEFAULT_PORT)]
    elif opt.master_port:
        argv += ["--nnodes", "1", "--master_addr", opt.master_addr or "127.0.0.1", "--master_port", str(opt.master_port)]
    else:
        argv.append("--standalone")  # one machine: a free port, no clash with another run
    if opt.launcher == "deepspeed":
        if not cuda:
            env["DS_ACCELERATOR"] = "cpu"
        if "--zero3" not in child:
            child.append("--zero3")
    return argv + list(entry) + child, env


def child_argv(args: argparse.Namespace, add_arguments: Callable[[argparse.ArgumentParser], None]) -> list[str]:
    """The training flags the user gave, as argv for the ranks (the launch flags left out)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    given = vars(args)
    out: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in _DESTS or action.dest not in given:
            continue
        value = given[action.dest]
        flag = next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if value == action.const:
                out.append(flag)
        elif value is not None:
            out += [flag, str(value)]
    return out


def _descendants(pid: int) -> list[int]:
    try:
        import psutil

        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except Exception:
        return []


def relaunch(args: argparse.Namespace, add_arguments: Callable[[argparse.ArgumentParser], None], console=None,
             entry: Sequence[str] = ("-m", "training.cli"), env: dict[str, str] | None = None) -> int:
    """Check the run here, start the launcher, wait; returns the exit code `ohlora train` should give."""
    import torch

    from training.config import TrainConfig, check_numbers, load_recipe
    from training.plan import run_plan

    say = console.print if console is not None else (lambda *a, **k: print(*a, file=sys.stderr))
    cuda = torch.cuda.is_available()
    opt = options(args, torch.cuda.device_count() if cuda else 0)
    recipe = load_recipe(args.recipe) if getattr(args, "recipe", None) else {}
    cfg = TrainConfig(**{**recipe, **{k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}})
    if opt.launcher == "deepspeed" and cfg.qlora:
        raise UserError("--qlora and --launcher deepspeed (ZeRO-3) do not mix: 4-bit weights cannot be sharded; "
                        "use --qlora with --launcher torchrun (DDP)")
    check_numbers(cfg)
    plan = run_plan(cfg)  # files, persona, base, output: fails here, before N model loads
    if not cfg.resume and plan.partial.exists() and opt.node_rank == 0:
        raise UserError(
            f"an interrupted run is in {plan.partial}: continue it with --resume, or delete that folder to start over")
    from ohlora.models import ensure_hf_copy

    ensure_hf_copy(plan.base)  # once, here: not N ranks converting the same GGUF at once
    argv, extra = command(opt, child_argv(args, add_arguments), cuda, entry)
    device = "GPU" if cuda else "CPU"
    where = f"{opt.nproc} process(es) on this machine" + (
        f", node {opt.node_rank} of {opt.nnodes} (rendezvous {opt.master_addr}:{opt.master_port or DEFAULT_PORT})"
        if opt.nnodes > 1 else "")
    mode = "DeepSpeed ZeRO-3" if opt.launcher == "deepspeed" else "DDP"
    say(f"launching {mode} on the {device}: {where}, world size {opt.world_size}")
    shown = " ".join(f"{k}={v}" for k, v in extra.items())
    say(f"  {shown + ' ' if shown else ''}{shlex.join(argv[1:] if argv[0] == sys.executable else argv)}")
    proc = subprocess.Popen(argv, env={**os.environ, **(env or {}), **extra}, start_new_session=True)
    interrupts = 0

    def forward(signum, frame):
        nonlocal interrupts
        if signum == signal.SIGINT:  # to the ranks, not torchrun (it would kill them before they save)
            interrupts += 1
            for pid in _descendants(proc.pid)[:] or [proc.pid]:
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass
        else:
            proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if proc.poll() is None:
            proc.terminate()
            proc.wait()
    if rc == 0:
        return 0
    if interrupts:
        say(f"stopped by Ctrl-C; the last checkpoint is in {plan.partial}: continue with --resume")
        return 130
    from training.outputs import latest_checkpoint

    why = f"exit code {rc}" if rc > 0 else f"signal {signal.Signals(-rc).name}"
    ck = latest_checkpoint(plan.partial) if plan.partial.is_dir() else None
    after = (f"the last checkpoint is {ck}: run the same command with --resume to continue" if ck is not None
             else f"no checkpoint was saved yet: delete {plan.partial} and train again")
    say(f"training stopped: a process of this run failed ({why}; its error is above); "
        f"no adapter was written to {plan.output}; {after}")
    return rc if rc > 0 else 1
