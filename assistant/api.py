"""The Python entry point: `Assistant.open()` → `ask()` and `search()`, returning plain dataclasses."""

from __future__ import annotations

from .errors import IndexMismatchError, QueryError
from .settings import Settings
from .types import Answer, Passage

MAX_QUESTION_CHARS = 2000  # longer input is cut: nothing a question needs lies beyond it


class Assistant:
    """Parts are injected (tests, servers); `open()` builds the real ones from Settings."""

    def __init__(self, settings: Settings, store, retriever, embedder):
        self.settings = settings
        self.store = store
        self.retriever = retriever
        self.embedder = embedder

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
        return [to_passage(s) for s in self.retriever.search(query, k=k, filters=filters)]

    def ask(self, question: str, history: list | None = None, k: int = 5, filters: dict | None = None) -> Answer:
        from .answer import compose
        from .followup import resolve

        question = _clean(question)
        resolved = resolve(question, history or [])
        scored = self.retriever.search(resolved, k=max(k, 5), filters=filters)
        return compose(question, resolved, scored[:k], self.document_text, self.retriever)

    def document_text(self, doc_id: str) -> str | None:
        return self.store.document_text(doc_id)

    def documents(self) -> list[dict]:
        return [{"doc_id": doc_id, **meta} for doc_id, meta in sorted(self.store.documents().items())]


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise QueryError("The question must be text.")
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text).strip()
    if not text:
        raise QueryError("The question is empty.")
    return text[:MAX_QUESTION_CHARS]
