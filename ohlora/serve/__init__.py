"""`ohlora serve`: an OpenAI-compatible HTTP API over the same sessions, store and memory.

    schemas.py   the request parser: every bad input becomes an OpenAI-style error body
    queue.py     one engine, one generation at a time, FIFO, a bounded wait list (429)
    threads.py   serve.db: which API user owns a conversation; stateless clients' threads
    service.py   the engine side: models, personas on one base, per-user memory, one job
    app.py       the Starlette routes: /v1/models, /v1/chat/completions (SSE), /health
    cli.py       `ohlora serve`: checks the bind and the key, warms the engine, runs uvicorn

Nothing here reads or writes a file named by a client: a user id is checked against a
pattern and becomes a folder name under the data dir; a conversation id is an integer.
"""

MAX_BODY_BYTES = 1 << 20  # a request body above this is refused with 413 (`--max-body`)
