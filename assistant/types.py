"""Plain result types shared by every layer. No framework objects cross module boundaries: these do."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from hashlib import sha1


@dataclass(frozen=True)
class Heading:
    """A heading or numbered section start inside a document's text."""

    start: int  # offset of the heading line in Document.text
    end: int
    level: int  # 1 = top level; numbered subsections sit deeper
    label: str  # what a citation shows: "Sec. 3", "第三条", "Purpose"


@dataclass(frozen=True)
class Document:
    id: str  # stable: the path relative to the corpus, POSIX style
    path: str
    text: str  # the text every span and quote points into (never rewritten after loading)
    content_hash: str  # sha256 of the file's bytes
    title: str
    language: str  # "zh", "en" or "mixed"
    format: str  # "markdown", "text", "html", "pdf", "docx"
    date: str = ""
    source_url: str = ""
    issuer: str = ""
    headings: tuple[Heading, ...] = ()
    pages: tuple[int, ...] = ()  # start offset of each page (PDF); empty when the format has no pages
    furniture: tuple[tuple[int, int], ...] = ()  # spans of page furniture (navigation, "related reads") not indexed

    def page_at(self, offset: int) -> int | None:
        """1-based page number holding this offset, or None for unpaged documents."""
        page = None
        for number, start in enumerate(self.pages, 1):
            if start > offset:
                break
            page = number
        return page


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: Document.text[start:end] == text, always."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    locator: str  # "Sec. 3(a)", "第三条", a heading, "p. 4", or "¶ 7"
    sentences: tuple[tuple[int, int], ...] = ()  # spans of its sentences in Document.text

    @property
    def key(self) -> str:
        """Identity of the chunk's content within its document: unchanged text keeps its id (and its vector)."""
        return sha1(f"{self.doc_id}\0{self.text}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class FailedFile:
    path: str
    error: str


@dataclass(frozen=True)
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    renamed: list[dict] = field(default_factory=list)  # {"from": old path, "to": new path}; vectors reused
    unchanged: int = 0
    chunks_embedded: int = 0  # chunks with at least one sentence embedded afresh
    sentences_embedded: int = 0
    chunks_total: int = 0
    failed: list[FailedFile] = field(default_factory=list)
    rebuilt: bool = False  # the whole index was rebuilt (--full, or settings changed)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class IndexStatus:
    documents: int
    chunks: int
    embed_model: str
    dimension: int
    corpus_dir: str
    index_dir: str
    last_sync: str
    behind: dict  # {"added": [...], "changed": [...], "removed": [...]} relative to the corpus
    settings_match: bool

    @property
    def up_to_date(self) -> bool:
        return self.settings_match and not any(self.behind.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "up_to_date": self.up_to_date}


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk: Document.text[start:end] == text."""

    doc_id: str
    path: str
    title: str
    locator: str
    text: str
    start: int
    end: int
    score: float
    date: str = ""
    issuer: str = ""
    language: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A verified quote: the source document's text[start:end] == quote, checked before the answer is returned."""

    n: int
    doc_id: str
    path: str
    title: str
    locator: str
    quote: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # sentences from the sources, each followed by its citation marker [n]; or the abstention message
    grounded: bool  # False: the indexed documents do not answer the question
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()  # the passages searched; when not grounded, the nearest ones (not answers)
    resolved_question: str = ""  # the question as searched, after resolving a follow-up against the history

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "text": self.text,
            "grounded": self.grounded,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [p.to_dict() for p in self.passages],
            "resolved_question": self.resolved_question,
        }


@dataclass(frozen=True)
class Filters:
    """What a search is restricted to: documents (ids), a language, a date range (YYYYMMDD numbers)."""

    doc_ids: tuple[str, ...] = ()
    language: str = ""
    date_from: int = 0
    date_to: int = 0

    KEYS = ("doc_id", "language", "date_from", "date_to")

    @classmethod
    def parse(cls, filters: dict | None) -> "Filters | None":
        """From the plain dict every interface takes: {"doc_id": id or [ids], "language": "zh"|"en"|"mixed",
        "date_from"/"date_to": "YYYY-MM-DD"}; a QueryError names what is wrong."""
        from .errors import QueryError

        if not filters:
            return None
        if not isinstance(filters, dict):
            raise QueryError("Filters must be an object such as {\"language\": \"zh\"}.")
        unknown = set(filters) - set(cls.KEYS)
        if unknown:
            raise QueryError(f"Unknown filter {', '.join(sorted(unknown))} (known: {', '.join(cls.KEYS)})")
        doc = filters.get("doc_id") or ()
        if not isinstance(doc, (str, list, tuple)) or not all(isinstance(d, str) for d in ([doc] if isinstance(doc, str) else doc)):
            raise QueryError("Filter doc_id must be a document id or a list of them.")
        language = filters.get("language") or ""
        if not isinstance(language, str) or (language and language not in {"zh", "en", "mixed"}):
            raise QueryError(f"Unknown language filter '{language}' (zh, en or mixed)")
        dates = {}
        for key in ("date_from", "date_to"):
            value = filters.get(key)
            if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                raise QueryError(f"Filter {key} must be a date as YYYY-MM-DD, not '{value}'")
            dates[key] = int(str(value).replace("-", "")) if value else 0
        parsed = cls((doc,) if isinstance(doc, str) else tuple(doc), language, **dates)
        return parsed if parsed != cls() else None

    def matches(self, meta: dict) -> bool:
        """The same restriction applied in Python (keyword hits: BM25 knows nothing of metadata)."""
        date = meta.get("date_int", 0)
        return ((not self.doc_ids or meta.get("doc_id") in self.doc_ids)
                and (not self.language or meta.get("language") == self.language)
                and (not self.date_from or date >= self.date_from)
                and (not self.date_to or date <= self.date_to))
