"""The Python entry point: `Assistant.open()` → `ask()` and `search()`, returning plain dataclasses."""

from __future__ import annotations

import threading
import time

from .errors import IndexMismatchError, QueryError, StaleIndexError
from .settings import Settings
from .types import Answer, IndexStatus, Passage, SyncReport

MAX_QUESTION_CHARS = 2000  # longer questions are refused, by every interface (HTTP, CLI, the page, Python)
REFRESH_SECONDS = 2.0


class Assistant:
    """Parts are injected (tests, servers); `open()` builds the real ones from Settings."""

    def __init__(self, settings: Settings, store, retriever, embedder):
        self.settings = settings
        self.store = store
        self.retriever = retriever
        self.embedder = embedder
        self._sync_lock = threading.Lock()  # one sync at a time; questions are never blocked by it
        self._checked = time.monotonic()  # when the index was last checked for changes made elsewhere

    @classmethod
    def open(cls, settings: Settings | None = None) -> "Assistant":
        from .embeddings import describe, load_embedder
        from .retrieval import Retriever
        from .store import Store

        settings = settings or Settings()
        store = Store.open(settings)
        built_with = store.manifest.get("embed_model")
        if built_with != describe(settings.embed_model):
            raise IndexMismatchError(
                f"The index was built with the embedding model {built_with}, but {describe(settings.embed_model)} is "
                f"configured. Use --embed-model to match, or rebuild with: assistant index --full"
            )
        embedder = load_embedder(settings.embed_model)
        return cls(settings, store, Retriever.open(settings, store, embedder), embedder)

    def search(self, query: str, k: int = 10, filters: dict | None = None) -> list[Passage]:
        from .retrieval import to_passage

        query = _clean(query)
        return self._current(lambda r: [to_passage(s) for s in r.search(query, k=k, filters=filters)])

    def ask(self, question: str, history: list | None = None, k: int = 5, filters: dict | None = None) -> Answer:
        from .answer import compose
        from .followup import resolve

        question = _clean(question)
        resolved = resolve(question, history or [])

        def answer(retriever):  # one index for the whole answer, even if a sync swaps it meanwhile
            scored = retriever.search(resolved, k=max(k, 5), filters=filters)
            return compose(question, resolved, scored[:k], retriever.store.document_text, retriever)

        return self._current(answer)

    def _current(self, work):
        """Run `work(retriever)`; if a rebuild replaced the index under it, reopen the index and run it once more.
        On a Chroma server, where other processes sync too, the index is also reopened when it changed (checked at
        most every REFRESH_SECONDS)."""
        if self.settings.chroma_url and time.monotonic() - self._checked > REFRESH_SECONDS:
            self._checked = time.monotonic()
            self.refresh()
        try:
            return work(self.retriever)
        except StaleIndexError:
            self.refresh()
            return work(self.retriever)

    def document_text(self, doc_id: str) -> str | None:
        return self.retriever.store.document_text(doc_id)

    def documents(self) -> list[dict]:
        """Every indexed document's metadata (title, date, issuer, language, chunks, path...)."""
        return [{"doc_id": doc_id, **{k: v for k, v in meta.items() if k not in ("structure", "text_pieces")}}
                for doc_id, meta in sorted(self.store.documents().items())]

    def status(self) -> IndexStatus:
        from .indexer import status

        return status(self.settings)

    def sync(self, full: bool = False) -> SyncReport:
        """Bring the index in line with the corpus (one sync at a time), then serve from the new index. Questions
        asked meanwhile are answered from the index as it was."""
        from .indexer import sync

        with self._sync_lock:
            serving, live = self.retriever, self.retriever.store
            if not full:  # a rebuild writes a new generation beside this one: nothing to keep
                self._freeze_changing(serving)
            try:
                report = sync(self.settings, full=full, progress=False, embedder=self.embedder)
                self.refresh()
            finally:  # a retriever swapped out keeps its view for the questions still using it
                if self.retriever is serving:
                    serving.store = live
        return report

    def _freeze_changing(self, retriever) -> None:
        """Questions answered while this process syncs see the documents the sync is about to rewrite as they were
        (store.FrozenView), until the new index is swapped in."""
        from .indexer import status
        from .store import FrozenView

        behind = status(self.settings).behind
        indexed = retriever.store.documents()
        changing = [d for d in behind["changed"] + behind["removed"] if d in indexed]
        if changing:
            retriever.store = FrozenView(self.store, changing)

    def refresh(self) -> bool:
        """Reopen the index if another process (or a sync) changed it; True when it did."""
        from .retrieval import Retriever
        from .store import Store

        store = Store.open(self.settings)
        if store.manifest.get("sync_id") == self.store.manifest.get("sync_id"):
            return False
        retriever = Retriever.open(self.settings, store, self.embedder)
        self.store, self.retriever = store, retriever  # swapped together: a question sees one index or the other
        return True


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise QueryError("The question must be text.")
    if len(text) > MAX_QUESTION_CHARS:
        raise QueryError(f"The question is {len(text):,} characters long; at most {MAX_QUESTION_CHARS:,} are read. "
                         "Shorten it.")
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text).strip()
    if not text:
        raise QueryError("The question is empty.")
    return text
