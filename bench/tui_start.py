"""Chat app start-up: time from launch to first paint and to model-ready, as JSON.

Runs the real `ohlora chat` in a subprocess on a pseudo-terminal (120x40), as a user
would, several times. The app appends {event, t} lines to the file named by
OHLORA_TUI_TIMINGS: `init` when the app object is built (imports done), `first_paint` after the first screen has been drawn, `model_ready`
once the engine has loaded in its worker. Times are measured from just before the
process is spawned (Python start-up and imports included).

    python bench/tui_start.py [--runs 3] [--base smollm2]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path


def _drain(fd: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def one_run(env: dict, args: list[str], timeout: float) -> dict:
    timings = Path(env["OHLORA_TUI_TIMINGS"])
    timings.unlink(missing_ok=True)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(master, stop), daemon=True)
    reader.start()
    t0 = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ohlora.cli", "chat", *args],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
    )
    os.close(slave)
    events: dict[str, float] = {}
    deadline = time.time() + timeout
    while "model_ready" not in events and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if timings.exists():
            for line in timings.read_text().splitlines():
                rec = json.loads(line)
                events.setdefault(rec["event"], rec["t"] - t0)
    os.write(master, b"\x11")  # ctrl+q
    try:
        rc = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.terminate()
        rc = proc.wait(5)
    stop.set()
    os.close(master)
    return {
        "imports_done_s": round(events.get("init", float("nan")), 3),
        "first_paint_s": round(events.get("first_paint", float("nan")), 3),
        "model_ready_s": round(events.get("model_ready", float("nan")), 3),
        "exit_code": rc,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--base", help="base model (default: the packaged Gemma 3 270M)")
    ap.add_argument("--timeout", type=float, default=120)
    opts = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ohlora-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OHLORA_")}
        env.update(OHLORA_HOME=home, HF_HUB_OFFLINE="1", OHLORA_TUI_TIMINGS=str(Path(home) / "timings.jsonl"))
        env["TERM"] = env.get("TERM", "xterm-256color") if env.get("TERM") not in (None, "", "dumb") else "xterm-256color"
        # install step, not timed: assemble the packaged model into this home's cache
        subprocess.run(
            [sys.executable, "-c", "from ohlora.models import resolve_base; import sys; resolve_base(sys.argv[1])",
             opts.base or ""],
            env=env, check=True,
        )
        args = ["--base", opts.base] if opts.base else []
        runs = [one_run(env, args, opts.timeout) for _ in range(opts.runs)]

    first = [r["first_paint_s"] for r in runs]
    ready = [r["model_ready_s"] for r in runs]
    print(json.dumps({
        "bench": "tui_start",
        "base": opts.base or "gemma-3-270m (packaged)",
        "terminal": "pty 120x40",
        "runs": runs,
        "first_paint_s_median": round(statistics.median(first), 3),
        "model_ready_s_median": round(statistics.median(ready), 3),
        "first_paint_under_1_5s": max(first) < 1.5,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
