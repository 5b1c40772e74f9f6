"""`ohlora serve`: the OpenAI-compatible API on uvicorn.

Binding to anything but loopback needs an API key (`--api-key` or OHLORA_API_KEY): without one
the command refuses to start. The socket is bound before the model loads, so a busy port fails
at once; `--port 0` takes a free one (the line "listening on http://HOST:PORT/v1" says which).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys

from ohlora.errors import UserError


def register(sub) -> None:
    from ohlora.registry import DEFAULT_BACKEND, backend_names
    from ohlora.serve import MAX_BODY_BYTES

    p = sub.add_parser(
        "serve",
        help="an OpenAI-compatible HTTP API: every persona is a model, with its users' memory",
        description="Serve the personas over the OpenAI chat-completions API (SillyTavern, Open WebUI, "
                    "the openai SDK). Conversations go to the same store as the chat app.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (needed for a non-loopback --host); "
                                     "default: $OHLORA_API_KEY")
    p.add_argument("--backend", choices=backend_names(), help=f"inference engine (default: {DEFAULT_BACKEND})")
    p.add_argument("--base", help="the base model the bare persona ids run on (default: config / Gemma 3 270M)")
    p.add_argument("--bases", help="comma-separated other bases offered as persona@base "
                                   "(default: the packaged ones installed; '' for none)")
    p.add_argument("--threads", type=int, help="CPU threads for llama.cpp (default: config n_threads, else all cores)")
    p.add_argument("--queue-size", type=int, default=32,
                   help="requests that may wait while one is generated; more get 429 (default 32)")
    p.add_argument("--max-body", type=int, default=MAX_BODY_BYTES,
                   help=f"largest request body in bytes (default {MAX_BODY_BYTES})")
    p.add_argument("--no-persona-cache", action="store_true",
                   help="do not keep a KV snapshot per persona (every persona switch re-reads its prompt)")
    p.add_argument("--log-level", choices=("warning", "info", "debug"), default="warning",
                   help="info also logs every request")
    p.set_defaults(func=cmd_serve)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot bind {host}: {exc}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ohlora.config import load_settings

    key = args.api_key if args.api_key is not None else os.environ.get("OHLORA_API_KEY")
    key = key.strip() if key else None
    if not is_loopback(args.host) and not key:
        raise UserError(f"--host {args.host} makes the API reachable from other machines: give --api-key KEY "
                        "(or set OHLORA_API_KEY); clients then send 'Authorization: Bearer KEY'")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be 0-65535, got {args.port}")
    if args.queue_size < 0:
        raise UserError("--queue-size must be 0 or more")
    if args.max_body < 1024:
        raise UserError("--max-body must be at least 1024 bytes")
    try:
        import uvicorn

        from ohlora.serve.app import create_app
        from ohlora.serve.service import Service
    except ImportError as exc:
        raise UserError(f"`ohlora serve` needs {exc.name}: pip install 'starlette' 'uvicorn'") from None

    logging.basicConfig(format="ohlora serve: %(message)s", stream=sys.stderr)
    logging.getLogger("ohlora.serve").setLevel(args.log_level.upper())
    settings = load_settings()
    if args.backend:
        settings = replace(settings, backend=args.backend)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be at least 1")
        settings = replace(settings, n_threads=args.threads)
    bases = None if args.bases is None else [b.strip() for b in args.bases.split(",") if b.strip()]
    sock = _bind(args.host, args.port)
    service = Service(settings, base=args.base, bases=bases, queue_size=args.queue_size,
                      persona_cache=not args.no_persona_cache)
    try:
        print("ohlora serve: loading the model and the personas' adapters…", file=sys.stderr, flush=True)
        service.warm()
    except BaseException:
        service.close()
        sock.close()
        raise
    app = create_app(service, api_key=key, max_body=args.max_body)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    names = ", ".join(m["id"] for m in service.models())
    print(f"ohlora serve: listening on http://{shown}:{port}/v1 (models: {names})"
          f"{'; API key required' if key else ''}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, access_log=args.log_level != "warning",
                            timeout_graceful_shutdown=5, lifespan="on",
                            limit_concurrency=max(64, 2 * args.queue_size + 16))  # more open connections: 503
    uvicorn.Server(config).run(sockets=[sock])
    return 0
