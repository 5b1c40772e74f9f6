"""How the replies the app writes itself (ohlora.guards) do on a folder of labelled messages (JSON out).

The folder holds JSONL files of `{"text", "lang"}` rows, one file per kind of message:
`harmful` (must be refused), `crisis` (must get a crisis line), `edgy` and `ordinary` (must
reach the model: nothing flagged), `clock` (must be answered from the clock), `notclock`
(mention time, ask something else). Missing files are skipped. Each message goes through the
real Guards (built-in embedder, the shipped safety head) with written lines off, so the
figures are the safety head's and the clock rules' alone.

    python bench/guards.py FOLDER [--head PATH] [--details]

`bench/guards/` was written apart from every file the head or the clock rules were fitted on
(dev: the clock rules were fixed on it and the head chosen with it; test: read twice while
choosing; test2: read once, after). Nothing in test or test2 may be used to fit or tune
them, and no message of bench/guards/ is in ohlora/guards/safety_train.jsonl (a test checks).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# file -> the kind of reply every message in it must get ("" = none: the model answers)
EXPECT = {"harmful": "harmful", "crisis": "crisis", "edgy": "", "ordinary": "", "clock": "clock", "notclock": ""}
NOW = datetime(2026, 12, 4, 15, 20)  # a Friday afternoon


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--head", type=Path, default=None, help="a safety head .npz (default: the shipped one)")
    ap.add_argument("--details", action="store_true", help="list every message that got the wrong reply")
    args = ap.parse_args(argv)

    from ohlora.guards import Guards
    from ohlora.guards.safety import HEAD_FILE
    from ohlora.personas import load_persona
    from ohlora.registry import make_embedder

    guards = Guards(lambda: make_embedder(""), head=args.head or HEAD_FILE, seed=0)
    persona = load_persona("ohlora")
    report: dict[str, dict] = {}
    wrong: list[str] = []
    seconds: list[float] = []
    for name, want in EXPECT.items():
        path = args.folder / f"{name}.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        got = {"harmful": 0, "crisis": 0, "clock": 0, "": 0}
        for row in rows:
            t0 = time.perf_counter()
            reply = guards.check(row["text"], persona, NOW)
            seconds.append(time.perf_counter() - t0)
            kind = "" if reply is None else (reply.detail if reply.kind == "safety" else reply.kind)
            got[kind] += 1
            ok = kind == want or (want == "harmful" and kind == "crisis") or (want == "crisis" and kind == "harmful")
            if not ok:
                wrong.append(f"{name}: got {kind or 'model'!r}: {row['text']}")
        right = sum(v for k, v in got.items() if k == want or {k, want} == {"harmful", "crisis"})
        report[name] = {"n": len(rows), "right": right, "share": round(right / max(len(rows), 1), 3),
                        "got": {k or "model": v for k, v in got.items() if v}}
    seconds.sort()
    out = {"folder": str(args.folder), "head": str(args.head or HEAD_FILE), "by_file": report,
           "check_ms_p50": round(1000 * seconds[len(seconds) // 2], 1) if seconds else None}
    if args.details:
        out["wrong"] = wrong
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
