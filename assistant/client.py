"""The assistant over HTTP: the same methods and result types as the in-process `Assistant`.

    from assistant.client import AssistantClient

    client = AssistantClient("http://127.0.0.1:7860")
    answer = client.ask("How long does the executive order give the Secretary of Labor to reexamine guidance?")
    answer.text, answer.citations[0].quote      # Answer, Citation, Passage: the dataclasses of assistant.types

Errors are the AssistantError subclasses of assistant.errors: QueryError (400), AccessDeniedError (401/403),
NotFoundError (404), UploadError / UploadTooLargeError (400/413 on upload), IndexUnavailableError (503, also an
IndexMissingError), ServerUnavailableError (not reachable, timed out, or a 5xx).
"""

from __future__ import annotations

import mimetypes
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import quote

import httpx

from .errors import (
    AccessDeniedError,
    AssistantError,
    IndexUnavailableError,
    NotFoundError,
    QueryError,
    ServerUnavailableError,
    UploadError,
    UploadTooLargeError,
)
from .types import Answer, Citation, FailedFile, IndexStatus, Passage, SyncReport


@dataclass(frozen=True)
class UploadedFile:
    """What became of one uploaded file."""

    filename: str  # the name as sent
    doc_id: str  # its name in the corpus (sanitized): the document id once indexed; "" when refused outright
    ok: bool
    status: str  # "added", "updated", "unchanged" (already indexed with this content), "refused", "failed"
    error: str = ""  # why it was refused or failed


@dataclass(frozen=True)
class UploadResult:
    files: tuple[UploadedFile, ...]
    sync: SyncReport | None  # the sync that indexed them (None when no file was stored)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)


class AssistantClient:
    """`AssistantClient(base_url, token=None)`: `token` is the server's admin token, needed by `upload` and
    `sync` (it also reads); `read_token` is its ASSISTANT_READ_TOKEN, for a server that guards reading.
    `timeout` bounds questions and look-ups; `sync_timeout` bounds uploads and syncs (they index)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0, sync_timeout: float = 600.0,
                 read_token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.sync_timeout = sync_timeout
        sent = token or read_token
        headers = {"Authorization": f"Bearer {sent}"} if sent else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    # --- the Assistant's methods

    def ask(self, question: str, history: list | None = None, k: int = 5, filters: dict | None = None) -> Answer:
        data = self._call("POST", "/api/ask", json={"question": question, "history": history or [], "k": k,
                                                     "filters": filters})
        return answer_from(data)

    def search(self, query: str, k: int = 10, filters: dict | None = None) -> list[Passage]:
        data = self._call("POST", "/api/search", json={"query": query, "k": k, "filters": filters})
        return [_build(Passage, p) for p in data]

    def documents(self) -> list[dict]:
        return self._call("GET", "/api/documents")

    def document_text(self, doc_id: str) -> str:
        return self._call("GET", f"/api/documents/{quote(doc_id)}/text")["text"]

    def status(self) -> IndexStatus:
        return _build(IndexStatus, self._call("GET", "/api/status"))

    def sync(self, full: bool = False) -> SyncReport:
        return sync_report_from(self._call("POST", "/api/index", json={"full": full}, timeout=self.sync_timeout))

    def upload(self, paths) -> UploadResult:
        """Upload files into the server's corpus and index them; one result per file (see UploadedFile)."""
        paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
        with ExitStack() as stack:
            parts = []
            for path in paths:
                try:
                    handle = stack.enter_context(open(path, "rb"))
                except OSError as exc:
                    raise UploadError(f"Cannot read {path}: {exc.strerror or exc}") from None
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                parts.append(("files", (path.name, handle, kind)))
            data = self._call("POST", "/api/documents", files=parts, timeout=self.sync_timeout, upload=True)
        return UploadResult(
            files=tuple(_build(UploadedFile, f) for f in data.get("files", [])),
            sync=sync_report_from(data["sync"]) if data.get("sync") else None,
        )

    def delete(self, doc_id: str) -> SyncReport:
        """Delete a document's file from the server's corpus (admin) and sync; the report of that sync."""
        data = self._call("DELETE", f"/api/documents/{quote(doc_id)}", timeout=self.sync_timeout, upload=True)
        return sync_report_from(data["sync"])

    def health(self) -> dict:
        return self._call("GET", "/healthz")

    # --- plumbing

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "AssistantClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, timeout: float | None = None, upload: bool = False, **kwargs):
        try:
            response = self._http.request(method, path, timeout=timeout or self.timeout, **kwargs)
        except httpx.TimeoutException:
            raise ServerUnavailableError(
                f"The assistant server at {self.base_url} did not answer within {timeout or self.timeout:g} s; "
                f"try again, or raise the client's timeout."
            ) from None
        except httpx.TransportError as exc:
            raise ServerUnavailableError(
                f"The assistant server is not reachable at {self.base_url} ({type(exc).__name__}: {exc}). "
                f"Start it with: assistant serve"
            ) from None
        if response.is_success:
            return response.json()
        raise _error_for(response, upload)


def _error_for(response: httpx.Response, upload: bool) -> AssistantError:
    try:
        message = response.json().get("error") or response.text
    except ValueError:
        message = response.text.strip()[:300] or response.reason_phrase
    status = response.status_code
    if status == 400:
        return UploadError(message) if upload else QueryError(message)
    if status in (401, 403):
        return AccessDeniedError(message)
    if status == 404:
        return NotFoundError(message)
    if status == 413:
        return UploadTooLargeError(message)
    if status == 503:
        return IndexUnavailableError(message)
    if status >= 500:
        return ServerUnavailableError(f"The assistant server failed (HTTP {status}): {message}")
    return AssistantError(f"HTTP {status}: {message}")


# --- JSON -> the dataclasses of assistant.types (fields a newer server adds are ignored)


def _build(cls, data: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def answer_from(data: dict) -> Answer:
    return Answer(
        question=data["question"],
        text=data["text"],
        grounded=data["grounded"],
        citations=tuple(_build(Citation, c) for c in data.get("citations", [])),
        passages=tuple(_build(Passage, p) for p in data.get("passages", [])),
        resolved_question=data.get("resolved_question", ""),
    )


def sync_report_from(data: dict) -> SyncReport:
    values = {k: v for k, v in data.items() if k in {f.name for f in fields(SyncReport)}}
    values["failed"] = [_build(FailedFile, f) for f in data.get("failed", [])]
    return _build(SyncReport, values)
