"""HTTP: one process serving the Gradio chat page at `/` and a JSON API under `/api/`, around one Assistant.

`create_app(assistant, settings)` returns the FastAPI app; `assistant serve` runs it with uvicorn (see `Server`).
Every API error is JSON `{"error": message}` with its status: 400 bad request, 401 no or wrong token, 403 admin
requests switched off, 404, 413 file or request too large, 503 no index yet; messages never carry a traceback or a
host path. With a read token set, every read needs a token too (RequestGuard). Syncs (uploads, deletions,
POST /api/index, the folder watcher) go through `Assistant.sync`, one at a time, in worker threads: questions keep
being answered from the index as it was until the new one is swapped in.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import uploads
from .api import MAX_QUESTION_CHARS
from .errors import (
    AssistantError,
    DocumentError,
    IndexMismatchError,
    IndexMissingError,
    ModelUnavailableError,
    NotFoundError,
    QueryError,
    StoreError,
    UploadError,
    UploadTooLargeError,
)
from .settings import Settings, path_scrubber
from .types import Answer, Passage, SyncReport

log = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "ASSISTANT_ADMIN_TOKEN"
READ_TOKEN_ENV = "ASSISTANT_READ_TOKEN"
TOKEN_COOKIE = "assistant_token"
MAX_UPLOAD_FILES = 20  # per request
MAX_JSON_BYTES = 256_000  # a JSON request: a question of MAX_QUESTION_CHARS and a long conversation fit easily
MAX_PAGE_BODY_BYTES = 4_000_000  # the chat page's own requests (they carry the conversation); not its uploads
OPEN_PATHS = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}  # no document data
NO_INDEX = ("The index has not been built yet. Build it on the server with `assistant index` (or start it with "
            "`assistant serve`, which builds it), or POST /api/index with the admin token.")


class ApiError(Exception):
    """An error answered as JSON {"error": message} with this HTTP status."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


# --- request bodies (published in the OpenAPI schema)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_QUESTION_CHARS,
                          description=f"The question, in English or Chinese (at most {MAX_QUESTION_CHARS} characters).")
    history: list = Field(default_factory=list, description='Earlier turns, as [{"role", "content"}] messages or '
                                                            "[question, answer] pairs, for follow-up questions.")
    k: int = Field(5, ge=1, le=50, description="Passages to answer from.")
    filters: dict | None = Field(None, description="doc_id (one or a list), language (zh, en, mixed), date_from, "
                                                   "date_to (YYYY-MM-DD).")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(max_length=MAX_QUESTION_CHARS, description="What to search for, in either language.")
    k: int = Field(10, ge=1, le=100, description="Passages to return.")
    filters: dict | None = Field(None, description="As for /api/ask.")


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full: bool = Field(False, description="Rebuild everything (after changing the model or chunking).")


# --- the Assistant before the index exists


class LazyAssistant:
    """Stands in for the server's Assistant while no index exists: questions raise IndexMissingError (503) until
    a sync (POST /api/index, an upload, the watcher) builds the index; then it is the real Assistant."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._assistant = None
        self._lock = threading.Lock()

    def opened(self):
        if self._assistant is None:
            from .api import Assistant

            with self._lock:
                if self._assistant is None:
                    self._assistant = Assistant.open(self.settings)
        return self._assistant

    def __getattr__(self, name):
        if name.startswith("_"):  # copy, pickle and hasattr probes: not the Assistant's API
            raise AttributeError(name)
        return getattr(self.opened(), name)

    def documents(self) -> list[dict]:
        try:
            return self.opened().documents()
        except IndexMissingError:
            return []  # nothing is indexed yet (the chat page can still be built)

    def document_text(self, doc_id: str) -> str | None:
        try:
            return self.opened().document_text(doc_id)
        except IndexMissingError:
            return None

    def sync(self, full: bool = False) -> SyncReport:
        with self._lock:
            if self._assistant is None:
                from .api import Assistant
                from .indexer import sync
                from .store import Store

                if Store.open_or_none(self.settings) is None:
                    report = sync(self.settings, full=full, progress=False)
                    self._assistant = Assistant.open(self.settings)
                    return report
                self._assistant = Assistant.open(self.settings)
        return self._assistant.sync(full=full)


def _ready(assistant):
    """The Assistant to answer from, or IndexMissingError (503) when there is no index yet."""
    return assistant.opened() if isinstance(assistant, LazyAssistant) else assistant


# --- uploads


def safe_filename(name: str) -> str:
    """uploads.safe_filename, refusing with ApiError(400)."""
    try:
        return uploads.safe_filename(name)
    except UploadError as exc:
        raise ApiError(400, f"{name!r}: {exc}.") from None


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _limit_body(request: Request, cap: int) -> Request:
    """The request, reading at most `cap` body bytes (ApiError 413 beyond), so an endless upload stops early."""
    received = 0

    async def receive():
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > cap:
            raise ApiError(413, f"The upload is over {_size(cap)} in total; send fewer or smaller files.")
        return message

    return Request(request.scope, receive)


# --- who may read, and how much a request may carry


class RequestGuard:
    """ASGI middleware in front of everything (the JSON API and the mounted chat page):

    - with a read token, every path but OPEN_PATHS needs it (or the admin token): `Authorization: Bearer <token>`,
      or the cookie set when the page is opened once as /?token=<token> (browsers send no headers of their own);
    - JSON requests over MAX_JSON_BYTES and the page's own requests over MAX_PAGE_BODY_BYTES get 413, counted as
      the body arrives (a missing or false Content-Length does not help). Uploads have their own limits;
    - without an admin token, the page's file uploads (Gradio's /gradio_api/upload, which would store them in its
      cache) get 403: the upload tab is off then.
    Tokens are compared in constant time."""

    def __init__(self, app, read_tokens: tuple[str, ...], page_uploads: bool = True):
        self.app = app
        self.tokens = tuple(t.encode() for t in read_tokens if t)
        self.page_uploads = page_uploads  # Gradio takes files for the upload tab; with uploads off, nobody may

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if self.tokens and path not in OPEN_PATHS and not self._allowed(scope):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            if (given := self._query_token(scope)) is not None and self._valid(given):
                # the page opened with ?token=: keep it in a cookie, and drop it from the address bar
                cookie = f"{TOKEN_COOKIE}={quote(given, safe='')}; Path=/; HttpOnly; SameSite=Strict"
                if scope.get("scheme") == "https":  # behind TLS, never sent over plain HTTP
                    cookie += "; Secure"
                return await _respond(send, 303, b"", [(b"location", (path or "/").encode()),
                                                       (b"set-cookie", cookie.encode())])
            message = (f"This server needs its read token ({READ_TOKEN_ENV}): send 'Authorization: Bearer <token>', "
                       "or open the chat page once as /?token=<token>.")
            return await _respond(send, 401, _json({"error": message}), [(b"www-authenticate", b"Bearer")])
        if not self.page_uploads and path.endswith("/gradio_api/upload"):
            message = f"Uploads are switched off: the server has no {ADMIN_TOKEN_ENV}."
            return await _respond(send, 403, _json({"error": message}))
        cap = self._body_cap(scope)
        if cap is None:
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > cap:
            return await _respond(send, 413, _json({"error": _too_big(cap)}))
        body, more = [], True
        received = 0
        while more:  # read the (small) body here, so an oversized one is refused before anything parses it
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            received += len(message.get("body", b""))
            if received > cap:
                return await _respond(send, 413, _json({"error": _too_big(cap)}))
            body.append(message.get("body", b""))
            more = message.get("more_body", False)
        replay = [{"type": "http.request", "body": b"".join(body), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        return await self.app(scope, replayed, send)

    def _body_cap(self, scope) -> int | None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return None
        path = scope.get("path", "")
        if path == "/api/documents" or path.endswith("/upload"):
            return None  # uploads: bounded by the file limit where they are read
        return MAX_JSON_BYTES if path.startswith("/api/") else MAX_PAGE_BODY_BYTES

    def _allowed(self, scope) -> bool:
        headers = dict(scope["headers"])
        scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and self._valid(given.strip()):
            return True
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE and self._valid(unquote(value)):
                return True
        return False

    def _valid(self, given: str) -> bool:
        data = given.encode("utf-8", "replace")
        return any(hmac.compare_digest(data, token) for token in self.tokens)

    @staticmethod
    def _query_token(scope) -> str | None:
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        return values[0] if values else None


def _json(data) -> bytes:
    return json.dumps(data).encode()


def _too_big(cap: int) -> str:
    return f"The request body is over {_size(cap)}; send a shorter question or conversation."


async def _respond(send, status: int, body: bytes, headers: list | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + (headers or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- errors


def _status_of(exc: AssistantError) -> tuple[int, str | None]:
    """HTTP status for an AssistantError, and a replacement message where the original is for the command line."""
    if isinstance(exc, IndexMissingError):
        return 503, NO_INDEX
    if isinstance(exc, UploadTooLargeError):
        return 413, None
    if isinstance(exc, NotFoundError):
        return 404, None
    if isinstance(exc, (QueryError, DocumentError, UploadError)):
        return 400, None
    if isinstance(exc, (IndexMismatchError, ModelUnavailableError, StoreError)):
        return 503, None
    return 500, None


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "string_too_long":  # said as the other interfaces say it
            limit, given = err.get("ctx", {}).get("max_length", 0), err.get("input")
            size = f" is {len(given):,} characters long;" if isinstance(given, str) else ""
            parts.append(f"{where}{size} at most {limit:,} characters are read. Shorten it.")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "Bad request: " + "; ".join(parts)


def _valid_text(value):
    """`value` with lone surrogates (valid in JSON escapes, not in any text encoding) replaced by U+FFFD, through
    lists and dicts: a question or conversation carrying them would otherwise fail when the answer is encoded."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace") if any(
            "\ud800" <= ch <= "\udfff" for ch in value) else value
    if isinstance(value, list):
        return [_valid_text(v) for v in value]
    if isinstance(value, dict):
        return {_valid_text(k): _valid_text(v) for k, v in value.items()}
    return value


# --- the app


def create_app(assistant=None, settings: Settings | None = None, *, admin_token: str | None = None,
               read_token: str | None = None, watch: bool = False, settle: float = 1.0, build_ui=None) -> FastAPI:
    """The FastAPI app: the JSON API under /api/, /healthz, the OpenAPI schema, and the Gradio page at /.

    assistant: the server's one Assistant; None opens it when the index exists (503 until then).
    admin_token: enables uploads, deletions and POST /api/index (default: $ASSISTANT_ADMIN_TOKEN; unset = off).
    read_token: every read needs it, or the admin token (default: settings.read_token, $ASSISTANT_READ_TOKEN;
    unset = reading is open); see RequestGuard.
    watch: sync after changes in the corpus folder settle for `settle` seconds (assistant/watch.py).
    build_ui: `(assistant, settings, admin_token=...) -> gradio.Blocks`; default `ui.app.build_app`.
    """
    for key, value in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_OFFLINE", "1"), ("ANONYMIZED_TELEMETRY", "False")):
        os.environ.setdefault(key, value)
    settings = settings or (assistant.settings if assistant is not None else Settings())
    assistant = assistant if assistant is not None else LazyAssistant(settings)
    admin_token = admin_token if admin_token is not None else (os.environ.get(ADMIN_TOKEN_ENV) or None)
    read_token = read_token if read_token is not None else settings.read_token
    scrub = path_scrubber(settings)
    max_bytes = uploads.max_bytes(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.loop = asyncio.get_running_loop()
        watcher = None
        if watch:
            from .watch import CorpusWatcher

            settings.corpus_dir.mkdir(parents=True, exist_ok=True)
            watcher = CorpusWatcher(settings.corpus_dir, assistant.sync, settle=settle).start()
        app.state.watcher = watcher
        try:
            yield
        finally:
            if watcher is not None:
                await run_in_threadpool(watcher.stop)

    app = FastAPI(
        title="Policy Assistant",
        summary="Cited answers over policy documents in Chinese and English.",
        description="Every answer sentence is quoted from a document and marked [n]; each citation's quote equals "
                    "the document text at [start:end] (GET /api/documents/{doc_id}/text). Errors are "
                    '`{"error": message}`.',
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.assistant = assistant
    app.state.settings = settings
    app.add_middleware(RequestGuard, read_tokens=(read_token, admin_token) if read_token else (),
                       page_uploads=bool(admin_token))

    # --- errors as JSON

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return _error(exc.status, scrub(exc.message), exc.headers)

    @app.exception_handler(AssistantError)
    async def _assistant_error(request, exc: AssistantError):
        status, message = _status_of(exc)
        if status == 500:
            log.warning("%s: %s", type(exc).__name__, exc)
        return _error(status, scrub(message or str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        return _error(400, scrub(_validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "Request refused."
        return _error(exc.status_code, scrub(message), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.error("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "Internal server error; the server log has the details.")

    bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken",
                        description=f"The server's {ADMIN_TOKEN_ENV}; uploads and syncs are off when it is unset.")

    def require_admin(credentials: HTTPAuthorizationCredentials | None) -> None:
        if not admin_token:
            raise ApiError(403, f"Uploads and indexing over HTTP are switched off. Start the server with "
                                f"{ADMIN_TOKEN_ENV}=<a secret> to enable them, then send "
                                f"'Authorization: Bearer <that secret>'.")
        given = credentials.credentials.strip() if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), admin_token.encode()):
            raise ApiError(401, f"Missing or wrong admin token: send 'Authorization: Bearer <{ADMIN_TOKEN_ENV}>'.",
                           headers={"WWW-Authenticate": "Bearer"})

    # --- the API

    @app.get("/healthz", tags=["service"], summary="Liveness; says whether an index is loaded.")
    def healthz() -> dict:
        has_index = not isinstance(assistant, LazyAssistant) or assistant._assistant is not None
        if not has_index:
            from .store import Store

            has_index = Store.open_or_none(settings) is not None
        return {"status": "ok", "index": has_index}

    @app.post("/api/ask", tags=["answers"], response_model=Answer,
              summary="Answer a question with verified citations, or abstain (grounded=false).")
    def ask(body: AskRequest) -> dict:
        return _ready(assistant).ask(_valid_text(body.question), history=_valid_text(body.history), k=body.k,
                                     filters=_valid_text(body.filters)).to_dict()

    @app.post("/api/search", tags=["answers"], response_model=list[Passage],
              summary="The passages that best match a query (hybrid: vectors and keywords).")
    def search(body: SearchRequest) -> list[dict]:
        passages = _ready(assistant).search(_valid_text(body.query), k=body.k, filters=_valid_text(body.filters))
        return [p.to_dict() for p in passages]

    @app.get("/api/documents", tags=["documents"], summary="Every indexed document's metadata.")
    def documents() -> list[dict]:
        return _ready(assistant).documents()

    @app.get("/api/documents/{doc_id:path}/text", tags=["documents"],
             summary="A document's whole text: the text every citation's start and end point into.")
    def document_text(doc_id: str) -> dict:
        text = _ready(assistant).document_text(doc_id)
        if text is None:
            raise ApiError(404, f"No indexed document '{doc_id}'. GET /api/documents lists them.")
        return {"doc_id": doc_id, "text": text}

    @app.post("/api/documents", tags=["documents"],
              summary="Upload documents (admin): saved into the corpus folder, then indexed incrementally.",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "required": ["files"],
                  "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}})
    async def upload(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        require_admin(credentials)
        cap = MAX_UPLOAD_FILES * max_bytes + (1 << 20)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise ApiError(413, f"The upload is {_size(int(length))}, over the {_size(cap)} a request may carry.")
        form = await _limit_body(request, cap).form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES)
        try:
            sent = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            if not sent:
                raise ApiError(400, "No file in the request: send multipart/form-data with one or more 'files' parts.")
            plan: list[tuple[UploadFile, str, str]] = []  # (upload, name as sent, name in the corpus)
            for up in sent:  # every file is checked before any is stored: a refused request changes nothing
                filename = up.filename or ""
                size = up.size if up.size is not None else len(await up.read())
                try:
                    name = uploads.admit(filename, settings, size=size)
                except UploadError as exc:  # 400, or 413 for size (see _status_of)
                    raise type(exc)(f"{filename or '(no name)'}: {exc}.") from None
                if any(name == planned for _, _, planned in plan):
                    raise ApiError(400, f"Two files would be saved as '{name}'; rename one.")
                plan.append((up, filename or name, name))
            outcomes: list[uploads.Outcome] = []
            for up, filename, name in plan:
                try:
                    await run_in_threadpool(uploads.store, up.file, name, settings)
                    outcomes.append(uploads.Outcome(filename, name, "saved"))
                except UploadError as exc:  # it does not load as a document: refused, the others go on
                    outcomes.append(uploads.Outcome(filename, name, "refused", str(exc)))
        finally:
            await form.close()
        saved = any(o.status == "saved" for o in outcomes)
        report = await run_in_threadpool(assistant.sync) if saved else None
        indexed = {d["doc_id"] for d in await run_in_threadpool(assistant.documents)} if saved else set()
        return {"files": [o.to_dict() for o in uploads.settle(outcomes, report, indexed)],
                "sync": report.to_dict() if report else None}

    @app.delete("/api/documents/{doc_id:path}", tags=["documents"],
                summary="Delete a document (admin): its file leaves the corpus folder, then the index is synced.")
    def delete(doc_id: str, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        require_admin(credentials)
        uploads.remove(doc_id, settings)
        return {"deleted": doc_id, "sync": assistant.sync().to_dict()}

    @app.post("/api/index", tags=["documents"], response_model=SyncReport,
              summary="Sync the index with the corpus folder now (admin).")
    def index(body: IndexRequest | None = None,
              credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        require_admin(credentials)
        return assistant.sync(full=bool(body and body.full)).to_dict()

    @app.get("/api/status", tags=["service"], summary="What the index holds, and whether it is behind the corpus.")
    def status() -> dict:
        data = _ready(assistant).status().to_dict()
        # folder names only: where the server keeps its files is not the client's business
        data["corpus_dir"], data["index_dir"] = Path(data["corpus_dir"]).name, Path(data["index_dir"]).name
        return data

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str, request: Request):
        raise ApiError(404, f"No API endpoint {request.method} /api/{rest}; the endpoints are listed at /docs.")

    # --- the chat page, last: it is mounted at / and takes every path not matched above

    import gradio as gr

    options = {}
    if build_ui is None:
        from ui.app import build_app as build_ui, page_options

        options = page_options()
    blocks = build_ui(assistant, settings, admin_token=admin_token)
    # show_error=False: the page's own messages (gr.Error) still show; an unexpected exception's text, which may
    # name host paths, does not
    gr.mount_gradio_app(app, blocks, path="/", ssr_mode=False, show_error=False,
                        max_file_size=max_bytes, **options)
    return app


# --- running it


def _close_streams(app) -> None:
    """End Gradio's long-lived streams (a browser tab's heartbeat) so shutdown does not wait for them."""
    loop = getattr(app.state, "loop", None)
    for route in getattr(app, "routes", []):
        event = getattr(getattr(route, "app", None), "stop_event", None)
        if event is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)


class Server(uvicorn.Server):
    """uvicorn for `create_app`: Ctrl-C (or `stop()`) first closes the page's open streams, then exits."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 7860, log_level: str = "warning"):
        super().__init__(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                        timeout_graceful_shutdown=3, lifespan="on"))
        self.app = app

    def handle_exit(self, sig, frame) -> None:
        _close_streams(self.app)
        super().handle_exit(sig, frame)

    def stop(self) -> None:
        _close_streams(self.app)
        self.should_exit = True


class ServerThread:
    """A Server in a background thread (tests, notebooks): `with ServerThread(app) as url: ...`."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0):
        import socket

        if not port:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.url = f"http://{host}:{port}"
        self.server = Server(app, host, port)
        self.thread = threading.Thread(target=self.server.run, name=f"server-{port}", daemon=True)

    def start(self, timeout: float = 30.0) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"The server did not start on {self.url}")
            time.sleep(0.02)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        self.server.stop()
        self.thread.join(timeout)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
