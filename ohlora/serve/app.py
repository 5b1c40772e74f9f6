"""The HTTP side: Starlette routes over a `Service`, OpenAI's wire format.

    GET  /health                      no key needed; the queue's state
    GET  /v1/models, /v1/models/{id}  one model per persona (and persona@base)
    POST /v1/chat/completions         streaming (SSE) and not
    GET  /v1/conversations[/{id}]     the stored conversations of the request's user

A chat request is parsed (every bad input is a 4xx with {"error": {...}}), resolved to a
persona, and queued (429 + Retry-After when the wait list is full). The response starts when
the first token is there, so an error before it is still a plain HTTP error. A client that goes
away (while queued, while waiting, or mid-stream) cancels its job: a waiting job leaves the
line, a running one stops after the current token and its partial reply is saved as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from typing import Any, AsyncIterator, Callable

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ohlora.serve.queue import Job, QueueClosed, QueueFull
from ohlora.serve.schemas import (MAX_BODY_BYTES, USER_HEADERS, APIError, ChatRequest, check_user, parse_chat,
                                  parse_json)
from ohlora.serve.service import Service

log = logging.getLogger("ohlora.serve")
OPEN_PATHS = ("/health",)


def error_response(err: APIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


class BearerAuth:
    """Every path but /health needs `Authorization: Bearer KEY` when the server has a key."""

    def __init__(self, app, api_key: str | None) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send) -> None:
        if self.key is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
        scheme, _, token = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            await self.app(scope, receive, send)
            return
        msg = "Incorrect API key provided" if given else "Missing API key: send 'Authorization: Bearer KEY'"
        err = APIError(401, msg, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        await error_response(err)(scope, receive, send)


class SSEResponse(StreamingResponse):
    """A stream that notices a client leaving even when nothing is being sent (ASGI 2.4 or not)."""

    def __init__(self, content: AsyncIterator[str], on_disconnect: Callable[[], None], **kw) -> None:
        super().__init__(content, media_type="text/event-stream", **kw)
        self.on_disconnect = on_disconnect

    async def __call__(self, scope, receive, send) -> None:
        gone = False
        try:
            async with anyio.create_task_group() as tg:
                async def stream() -> None:
                    try:
                        await self.stream_response(send)
                    except OSError:
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(stream)
                await self.listen_for_disconnect(receive)
                gone = True
                tg.cancel_scope.cancel()
        finally:
            if gone:
                self.on_disconnect()
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


async def _disconnected(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class Watch:
    """Waits for a job's next event, or for the client to leave (then None)."""

    def __init__(self, request: Request) -> None:
        self.gone = asyncio.ensure_future(_disconnected(request.receive))

    async def next(self, job: Job) -> tuple[str, Any] | None:
        get = asyncio.ensure_future(job.events.get())
        await asyncio.wait({get, self.gone}, return_when=asyncio.FIRST_COMPLETED)
        if get.done():
            return get.result()
        get.cancel()
        return None

    async def stop(self) -> None:
        self.gone.cancel()
        try:
            await self.gone
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _usage(done: dict) -> dict:
    p, c = done["prompt_tokens"], done["completion_tokens"]
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def create_app(service: Service, *, api_key: str | None = None, max_body: int = MAX_BODY_BYTES) -> Starlette:
    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_body:
            raise APIError(413, f"the request body is {length} bytes; at most {max_body} are accepted",
                           code="request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise APIError(413, f"the request body is over {max_body} bytes", code="request_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    def request_user(request: Request) -> str | None:
        user = check_user(request.query_params.get("user"))
        for h in USER_HEADERS:
            if user is None and request.headers.get(h):
                user = check_user(request.headers[h], h)
        return user

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "backend": service.settings.backend,
                             "bases": [b.name for b in service.bases], "queue": service.queue.stats(),
                             "persona_cache": {"on": not service.kv.disabled, "restored": service.kv.restored}})

    async def models(request: Request) -> Response:
        data = await asyncio.to_thread(service.models)
        return JSONResponse({"object": "list", "data": data})

    async def model(request: Request) -> Response:
        mid = request.path_params["model_id"]
        target = service.resolve(mid)
        for m in await asyncio.to_thread(service.models):
            if m["id"] == mid:
                return JSONResponse(m)
        return JSONResponse({"id": mid, "object": "model", "created": service.created, "owned_by": "ohlora",
                             "persona": target.persona.id})

    async def conversations(request: Request) -> Response:
        user = request_user(request)
        data = await asyncio.to_thread(service.conversations, user)
        return JSONResponse({"object": "list", "data": data})

    async def conversation(request: Request) -> Response:
        user = request_user(request)
        raw = request.path_params["cid"]
        if not raw.isdigit() or len(raw) > 18:
            raise APIError(404, f"no conversation {raw[:40]!r}", code="conversation_not_found")
        return JSONResponse(await asyncio.to_thread(service.conversation, user, int(raw)))

    async def chat(request: Request) -> Response:
        body = parse_json(await read_body(request))
        req = parse_chat(body, request.headers)
        target = service.resolve(req.model)
        job = Job(lambda j: service.run(j, req, target), asyncio.get_running_loop())
        try:
            service.queue.submit(job)
        except QueueFull as exc:
            raise APIError(429, str(exc), type="rate_limit_error", code="queue_full",
                           headers={"Retry-After": str(exc.retry_after)}) from None
        except QueueClosed as exc:
            raise APIError(503, str(exc), type="server_error", code="shutting_down") from None
        watch = Watch(request)
        opened: dict = {}
        try:
            while True:
                event = await watch.next(job)
                if event is None:  # the client left before the first token
                    service.queue.cancel(job)
                    return Response(status_code=499)
                if event[0] == "open":
                    opened = event[1]
                    continue
                break
            if event[0] == "error":
                return error_response(event[1] or _internal())
            headers = {}
            if opened.get("conversation_id") is not None:
                headers["X-Ohlora-Conversation"] = str(opened["conversation_id"])
            if req.stream:
                await watch.stop()
                return SSEResponse(_sse(job, req, event), on_disconnect=lambda: service.queue.cancel(job),
                                   headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            parts: list[str] = []
            while event[0] == "delta":
                parts.append(event[1])
                event = await watch.next(job)
                if event is None:
                    service.queue.cancel(job)
                    return Response(status_code=499)
            if event[0] == "error":
                return error_response(event[1] or _internal())
            done = event[1]
            return JSONResponse({
                "id": _completion_id(), "object": "chat.completion", "created": int(time.time()),
                "model": req.model, "system_fingerprint": None,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": done["text"]},
                             "logprobs": None, "finish_reason": done["finish_reason"]}],
                "usage": _usage(done), "ohlora": done["ohlora"],
            }, headers=headers)
        finally:
            await watch.stop()

    async def _sse(job: Job, req: ChatRequest, first: tuple[str, Any]) -> AsyncIterator[str]:
        cid, created = _completion_id(), int(time.time())

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model,
                    "system_fingerprint": None,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
            if req.include_usage:
                data["usage"] = None
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        finished = False
        try:
            yield chunk({"role": "assistant", "content": ""})
            event, leading = first, True
            while True:
                kind, payload = event
                if kind == "delta":
                    text = payload.lstrip() if leading else payload
                    if text:
                        leading = False
                        yield chunk({"content": text})
                elif kind == "done":
                    yield chunk({}, payload["finish_reason"], ohlora=payload["ohlora"])
                    if req.include_usage:
                        usage = {"id": cid, "object": "chat.completion.chunk", "created": created,
                                 "model": req.model, "system_fingerprint": None, "choices": [],
                                 "usage": _usage(payload)}
                        yield f"data: {json.dumps(usage)}\n\n"
                    yield "data: [DONE]\n\n"
                    finished = True
                    return
                elif kind == "error":
                    yield f"data: {json.dumps((payload or _internal()).body(), ensure_ascii=False)}\n\n"
                    finished = True
                    return
                event = await job.events.get()
        finally:
            if not finished:
                service.queue.cancel(job)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, APIError)
        return error_response(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        if status == 404:
            msg, code = f"no such endpoint: {request.method} {request.url.path}", "not_found"
        elif status == 405:
            msg, code = f"method {request.method} is not allowed on {request.url.path}", "method_not_allowed"
        else:
            msg, code = str(exc.detail), None
        return error_response(APIError(status, msg, code=code, headers=exc.headers))

    async def on_server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(_internal())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.to_thread(service.close)

    routes = [
        Route("/health", health),
        Route("/v1/models", models),
        Route("/v1/models/{model_id:path}", model),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/conversations", conversations),
        Route("/v1/conversations/{cid}", conversation),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        APIError: on_api_error, HTTPException: on_http_error, Exception: on_server_error})
    app.add_middleware(BearerAuth, api_key=api_key)
    return app


def _internal() -> APIError:
    return APIError(500, "internal server error; see the server log", type="server_error", code="internal_error")
