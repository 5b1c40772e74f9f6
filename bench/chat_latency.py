"""Time to first token, turn by turn, over a 20-turn chat with memory on (JSON out).

The chat runs through the real Conversation (recall -> prompt -> stream -> save -> observe)
on a fresh OHLORA_HOME-like temp folder, with the configured base and embedder. Each user
turn tells or asks something; memory recalls into every prompt. Reports, per turn, the
seconds from `say()` to the first piece, the prompt's token count and the tokens the
engine had to read (prompt minus the reused KV prefix, llama.cpp only). The replies the app
writes itself (ohlora.guards) are off: this times the model's path. Between turns the bench
does what the chat app does while the user reads and types (`ChatSession.warm_next`: the
next turn's start is read ahead), timed apart as `read_ahead_s`; `--no-read-ahead` skips it.
Before each message it does what the app does when the user pauses typing
(`ChatSession.warm_draft`: the recall and the prompt for the typed text are read before Enter),
timed apart as `draft_s`; `--no-draft` skips it. Time to first token is from Enter.

    python bench/chat_latency.py [--turns 20] [--persona ohlora] [--base SPEC] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TURNS = [
    "안녕! 나 민지야", "나 다음 주 금요일에 부산 여행 가", "요즘 회사 일이 너무 많아", "나 땅콩 알레르기 있어",
    "오늘 점심 뭐 먹지?", "우리 집 강아지 이름은 콩이야", "콩이 산책 시켜야 하는데 비 와", "주말에 영화 볼까 해",
    "여행 가서 뭐 먹으면 좋을까?", "요즘 잠을 잘 못 자", "간식 추천해줘", "나 토익 공부 시작했어",
    "공부가 잘 안 돼", "엄마 생신이 다음 달 3일이야", "선물 뭐가 좋을까?", "오늘 좀 우울하다",
    "콩이가 오늘 아팠어", "병원 가 봐야 할까?", "고마워, 덕분에 힘난다", "이제 자야겠다",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--persona", default="ohlora")
    ap.add_argument("--base", default=None)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-read-ahead", action="store_true", help="do not read the next turn's start between turns")
    ap.add_argument("--no-draft", action="store_true",
                    help="do not read each message ahead as the chat app does when the user pauses typing")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from memory import MemoryStore

    from ohlora.chat import ChatSession
    from ohlora.config import load_settings
    from ohlora.conversation import Conversation
    from ohlora.registry import make_embedder

    # the model's path is what is timed: replies the app writes itself (clock, safety, written
    # lines; ohlora.guards) come back in ~20 ms and would hide it
    settings = replace(load_settings(), memory=not args.no_memory, guard=False, lines=False)
    with tempfile.TemporaryDirectory(prefix="ohlora-latency-") as tmp:
        memory = None if args.no_memory else MemoryStore(Path(tmp) / "memory.db", make_embedder(settings.embedder))
        session = ChatSession(settings, args.persona, base_override=args.base, memory=memory)
        p = session.persona
        session.persona = replace(p, generation=replace(p.generation, max_tokens=args.max_tokens, seed=1))
        engine = session.engine()
        convo = Conversation(session)
        rows = []
        for i, text in enumerate((TURNS * 2)[: args.turns], 1):
            draft_s = None
            if not args.no_draft:  # the user typed the message and paused before pressing Enter
                t0 = time.perf_counter()
                session.warm_draft(text)
                draft_s = round(time.perf_counter() - t0, 3)
            before = getattr(getattr(engine, "llm", None), "n_tokens", None)
            t0 = time.perf_counter()
            first = None
            for _ in convo.say(text):
                if first is None:
                    first = time.perf_counter() - t0
            r = session.last
            row = {"turn": i, "ttft_s": round(first if first is not None else time.perf_counter() - t0, 3),
                   "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
                   "kv_before": before, "recalled": len(session.last_recalled), "draft_s": draft_s}
            if not args.no_read_ahead:
                t0 = time.perf_counter()
                session.warm_next()
                row["read_ahead_s"] = round(time.perf_counter() - t0, 3)
            rows.append(row)
        if memory is not None:
            memory.close()
    ttft = [r["ttft_s"] for r in rows]
    last5 = ttft[-5:]
    print(json.dumps({
        "bench": "chat_latency", "persona": args.persona, "base": session.base().name, "memory": not args.no_memory,
        "read_ahead": not args.no_read_ahead, "draft": not args.no_draft,
        "turns": rows, "ttft_p50_s": statistics.median(ttft), "ttft_turn_20_s": ttft[-1],
        "ttft_p50_last5_s": statistics.median(last5), "load_avg_1m": round(os.getloadavg()[0], 2),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
