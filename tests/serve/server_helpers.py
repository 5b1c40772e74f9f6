"""A real `ohlora serve` subprocess on a free loopback port, and small HTTP helpers (stdlib only)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, home: Path, args: tuple[str, ...] = (), env: dict | None = None, timeout: float = 120):
        self.home = Path(home)
        self.args = args
        self.env = {**os.environ, "OHLORA_HOME": str(self.home), "OHLORA_EMBEDDER": "hash", **(env or {})}
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.start(timeout)

    def start(self, timeout: float = 120) -> None:
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ohlora.cli", "serve", "--port", "0", *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=self.env, cwd=REPO,
        )
        found = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.lines.append(line)
                if "listening on http://" in line:
                    self.url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start:\n" + "".join(self.lines))

    @property
    def base(self) -> str:  # http://127.0.0.1:PORT
        return self.url.rsplit("/v1", 1)[0]

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def client(self, key: str = "none", **kw):
        import openai

        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=kw.pop("timeout", 120), **kw)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    # -- raw HTTP ---------------------------------------------------------------------
    def http(self, method: str, path: str, body: bytes | dict | list | str | None = None,
             headers: dict | None = None, timeout: float = 60) -> tuple[int, dict, dict]:
        """(status, headers, JSON body) of one request; error statuses do not raise."""
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body, ensure_ascii=False).encode()
        elif isinstance(body, str):
            data = body.encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw, status, hdrs = resp.read(), resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            raw, status, hdrs = exc.read(), exc.code, dict(exc.headers)
        text = raw.decode()
        try:
            parsed = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            parsed = {"_raw": text}
        return status, {k.lower(): v for k, v in hdrs.items()}, parsed

    def chat(self, text: str, model: str = "ohlora", headers: dict | None = None, **fields) -> tuple[int, dict, dict]:
        body = {"model": model, "messages": [{"role": "user", "content": text}], **fields}
        return self.http("POST", "/v1/chat/completions", body, headers)

    def health(self) -> dict:
        return self.http("GET", "/health")[2]

    def wait_for(self, check, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.05)


def db_rows(home: Path, sql: str, args: tuple = (), name: str = "ohlora.db") -> list[tuple]:
    con = sqlite3.connect(Path(home) / "data" / name)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def integrity(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))
