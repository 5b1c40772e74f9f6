"""Load on `ohlora serve`: N concurrent clients on the real `openai` client; prints one JSON object.

Each client is its own user (`load-<i>`) and sends R streamed requests, one after another,
alternating the personas (ohlora / ironman), short prompts, a fixed max_tokens and seed, each in
a new conversation. Per run: throughput (completion tokens/s over the wall time), time to first
token p50/p95, queue wait p50/p95 (the server's own figure), latency, errors; then a check that
every reply is stored under its user and persona (GET /v1/conversations/<id> as that user gives
exactly the prompt and the reply; as another user, 404).

Loopback only; bounded: at most --requests per client, and no new request after --deadline s.
Without --url it starts `ohlora serve` itself on 127.0.0.1 in a temporary OHLORA_HOME (the models
cache is shared with yours; memory uses the hash embedder unless --embedder says otherwise).

    python bench/serve_load.py --clients 1,8 --requests 20 [--max-tokens 32] [--threads 1]
    python bench/serve_load.py --url http://127.0.0.1:8000/v1 --clients 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROMPTS = {
    "ohlora": ["안녕! 오늘 기분 어때?", "나 오늘 좀 피곤해", "주말에 뭐 할까?", "비 오는 날 좋아해?", "저녁 뭐 먹지?"],
    "ironman": ["Who are you?", "What's your best suit?", "Any advice for a long day?", "Tell me a joke.",
                "What are you building today?"],
}
PERSONAS = ("ohlora", "ironman")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 4)


def loopback_only(url: str) -> None:
    from ohlora.serve.cli import is_loopback

    host = urllib.parse.urlparse(url).hostname or ""
    if not is_loopback(host):
        sys.exit(f"serve_load: {url} is not a loopback address; this bench only loads 127.0.0.1 / ::1")


class LocalServer:
    def __init__(self, args) -> None:
        from ohlora.config import get_paths

        self.tmp = tempfile.TemporaryDirectory(prefix="serve-load-")
        home = Path(self.tmp.name)
        models = get_paths().models_dir
        models.mkdir(parents=True, exist_ok=True)
        (home / "cache").mkdir()
        (home / "cache" / "models").symlink_to(models, target_is_directory=True)
        self.home = home
        env = {**os.environ, "OHLORA_HOME": str(home), "OHLORA_EMBEDDER": args.embedder}
        cmd = [sys.executable, "-m", "ohlora.cli", "serve", "--port", "0", "--queue-size", str(args.queue_size)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.backend:
            cmd += ["--backend", args.backend]
        if args.base:
            cmd += ["--base", args.base]
        if args.no_persona_cache:
            cmd += ["--no-persona-cache"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=REPO)
        self.url = ""
        deadline = time.monotonic() + 600
        for line in self.proc.stderr:
            if "listening on http://" in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                break
            if time.monotonic() > deadline:
                break
        if not self.url:
            self.stop()
            sys.exit("serve_load: the server did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.tmp.cleanup()


def one_request(client, user: str, persona: str, prompt: str, max_tokens: int, seed: int) -> dict:
    t0 = time.perf_counter()
    rec = {"user": user, "persona": persona, "prompt": prompt, "error": None}
    try:
        stream = client.chat.completions.create(
            model=persona, messages=[{"role": "user", "content": prompt}], stream=True, user=user,
            max_tokens=max_tokens, seed=seed, stream_options={"include_usage": True},
            extra_headers={"X-Ohlora-Conversation": "new"})
        parts, first = [], None
        for ch in stream:
            if ch.choices:
                piece = ch.choices[0].delta.content
                if piece:
                    if first is None:
                        first = time.perf_counter()
                    parts.append(piece)
                if ch.choices[0].finish_reason:
                    rec["ohlora"] = getattr(ch, "ohlora", None) or (ch.model_extra or {}).get("ohlora")
                    rec["finish_reason"] = ch.choices[0].finish_reason
            if ch.usage is not None:
                rec["completion_tokens"] = ch.usage.completion_tokens
        end = time.perf_counter()
        rec.update(text="".join(parts), ttft=(first or end) - t0, latency=end - t0)
    except Exception as exc:  # noqa: BLE001 - counted and reported
        rec["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return rec


def get_conversation(url: str, key: str, cid: int, user: str) -> tuple[int, dict]:
    req = urllib.request.Request(url.rstrip("/") + f"/conversations/{cid}",
                                 headers={"X-Ohlora-User": user, "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def check(url: str, key: str, records: list[dict], clients: int) -> dict:
    """Every reply stored under its user and persona, and invisible to another user."""
    lost = mixed = leaked = 0
    for rec in records:
        if rec["error"]:
            continue
        info = rec.get("ohlora") or {}
        cid = info.get("conversation_id")
        if cid is None:
            lost += 1
            continue
        status, body = get_conversation(url, key, cid, rec["user"])
        if status != 200:
            lost += 1
            continue
        got = [(m["role"], m["content"], m["persona"]) for m in body["messages"]]
        want = [("user", rec["prompt"], rec["persona"]), ("assistant", rec["text"].strip(), rec["persona"])]
        if got != want or info.get("user") != rec["user"] or info.get("persona") != rec["persona"]:
            mixed += 1
        if clients > 1:
            other = f"load-{(int(rec['user'].split('-')[1]) + 1) % clients}"
            if get_conversation(url, key, cid, other)[0] != 404:
                leaked += 1
    return {"checked": sum(1 for r in records if not r["error"]), "lost": lost, "mixed": mixed,
            "visible_to_another_user": leaked}


def run(url: str, key: str, clients: int, requests: int, max_tokens: int, deadline_s: float) -> dict:
    import openai

    records: list[dict] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s

    def client_loop(i: int) -> None:
        client = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=300)
        for j in range(requests):
            if time.monotonic() > stop_at:
                break
            persona = PERSONAS[(i + j) % 2]
            prompt = PROMPTS[persona][(i + j) % len(PROMPTS[persona])]
            rec = one_request(client, f"load-{i}", persona, prompt, max_tokens, seed=i * 1000 + j)
            with lock:
                records.append(rec)

    load_before = os.getloadavg()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    ok = [r for r in records if not r["error"]]
    tokens = sum(r.get("completion_tokens") or 0 for r in ok)
    errors: dict[str, int] = {}
    for r in records:
        if r["error"]:
            kind = r["error"].split(":")[0]
            errors[kind] = errors.get(kind, 0) + 1
    waits = [r["ohlora"]["queue_wait_s"] for r in ok if r.get("ohlora")]
    return {
        "clients": clients, "requests_per_client": requests, "sent": len(records), "ok": len(ok),
        "errors": errors, "wall_s": round(wall, 2), "completion_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2) if wall else None,
        "requests_per_s": round(len(ok) / wall, 3) if wall else None,
        "ttft_s": {"p50": pct([r["ttft"] for r in ok], 0.5), "p95": pct([r["ttft"] for r in ok], 0.95)},
        "queue_wait_s": {"p50": pct(waits, 0.5), "p95": pct(waits, 0.95)},
        "latency_s": {"p50": pct([r["latency"] for r in ok], 0.5), "p95": pct([r["latency"] for r in ok], 0.95)},
        "finish_reasons": {k: sum(1 for r in ok if r.get("finish_reason") == k) for k in ("stop", "length")},
        "store_check": check(url, key, records, clients),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server's base URL (loopback only); default: start one")
    ap.add_argument("--api-key", default=os.environ.get("OHLORA_API_KEY", "none"))
    ap.add_argument("--clients", default="1,8", help="comma list: one run per count (default 1,8)")
    ap.add_argument("--requests", type=int, default=20, help="requests per client (default 20, at most 200)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--deadline", type=float, default=900, help="no new request after this many seconds a run")
    ap.add_argument("--threads", type=int, help="--threads for the server it starts")
    ap.add_argument("--backend", help="--backend for the server it starts (fake: no model)")
    ap.add_argument("--base", help="--base for the server it starts")
    ap.add_argument("--embedder", default="hash", help="memory embedder for the server it starts (default hash)")
    ap.add_argument("--queue-size", type=int, default=32)
    ap.add_argument("--no-persona-cache", action="store_true", help="start the server with --no-persona-cache")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    if not counts or any(not 1 <= c <= 32 for c in counts) or not 1 <= args.requests <= 200:
        sys.exit("serve_load: --clients counts must be 1-32 and --requests 1-200")
    server = None
    url = args.url
    if url is None:
        server = LocalServer(args)
        url = server.url
    loopback_only(url)
    try:
        import openai

        warm = openai.OpenAI(base_url=url, api_key=args.api_key, max_retries=0, timeout=300)
        for persona in PERSONAS:  # not measured: first prompt of each persona
            one_request(warm, "load-warm", persona, PROMPTS[persona][0], 4, 0)
        runs = [run(url, args.api_key, c, args.requests, args.max_tokens, args.deadline) for c in counts]
    finally:
        if server is not None:
            server.stop()
    out = {"bench": "serve_load", "url": url, "max_tokens": args.max_tokens, "threads": args.threads,
           "persona_cache": not args.no_persona_cache if args.url is None else None,
           "backend": args.backend or "config", "cpus": os.cpu_count(), "runs": runs}
    by = {r["clients"]: r for r in runs}
    if 1 in by and len(by) > 1:
        base = by[1]["tokens_per_s"] or 0
        out["tokens_per_s_vs_one_client"] = {str(c): round(r["tokens_per_s"] / base, 3) if base else None
                                             for c, r in by.items() if c != 1}
    print(json.dumps(out, ensure_ascii=False, indent=2))
    bad = sum(r["store_check"]["lost"] + r["store_check"]["mixed"] + r["store_check"]["visible_to_another_user"]
              for r in runs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
