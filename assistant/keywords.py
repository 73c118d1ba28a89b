"""Keyword search: BM25 over jieba-segmented Chinese and stemmed English, kept beside the vector index.

The keyword index is derived data: it is rebuilt from the store's chunks after every sync and saved under
index/keywords/ with the generation and sync time it was built from, so a process opening a newer index rebuilds
it instead of searching stale keywords. Each chunk's tokens are saved beside it, keyed by a hash of the chunk's
text, so a rebuild segments only new text: at 20,000 chunks jieba takes tens of seconds over the whole corpus, the
BM25 matrix from known tokens much less (docs/scale.md); the result is the same as a rebuild from scratch.
(llama-index's BM25Retriever ignores a custom tokenizer, which leaves unspaced Chinese as one token per sentence;
bm25s is used directly with our own tokenizer.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .textnorm import for_matching

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*")
_EN_STOP = frozenset(
    "a an the and or of to in on at by for with from as is are was were be been being it its this that these those "
    "which who whom what when where why how does do did has have had can could shall should will would may might "
    "not no than then there their them they he she his her we our you your i me my about into under over such any "
    "all each other if so also more most some".split()
)
_ZH_STOP = frozenset("的 了 是 在 和 与 及 等 将 对 为 也 就 都 而 或 被 把 从 以 之 其 中 上 下 这 那 哪 些 个 吗 呢 吧 啊 么 什么 怎么 如何 哪些 多少 是否 有 没有 我 你 他 她 它 们".split())


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer
    except ImportError:  # optional: without it English words are matched unstemmed
        return None
    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Matching tokens: Chinese words (simplified script), stemmed English words, and numbers ("1,000" -> "1000")."""
    tokens: list[str] = []
    stemmer = _stemmer()
    for run in _TOKEN.findall(for_matching(text).lower()):
        if run[0].isdigit():
            tokens.append(run.replace(",", ""))
        elif run[0].isascii():
            if run not in _EN_STOP and len(run) > 1:
                tokens.append(stemmer.stemWord(run) if stemmer else run)
        else:
            tokens.extend(w for w in _jieba().lcut_for_search(run) if w not in _ZH_STOP and w.strip())
    return tokens


def text_key(text: str) -> str:
    """A text's identity (the same for identical texts): chunk and sentence records, saved tokens and analyses."""
    return hashlib.sha1(text.encode()).hexdigest()


class KeywordIndex:
    def __init__(self, ids: list[str], bm25, df: dict[str, int], tokens: dict[str, str] | None = None):
        self.ids = ids
        self._bm25 = bm25
        self._df = df  # token -> number of chunks containing it
        self.tokens = tokens or {}  # text_key -> its tokens joined by spaces (no token holds a space)

    @classmethod
    def build(cls, ids: list[str], texts: list[str], known: dict[str, str] | None = None) -> "KeywordIndex":
        """BM25 over these chunks; ``known`` holds tokens of texts segmented before (by text_key), reused."""
        import bm25s

        if not ids:
            return cls([], None, {})
        known = known or {}
        tokens: dict[str, str] = {}
        tokenized = []
        for text in texts:
            key = text_key(text)
            if key not in tokens:
                tokens[key] = known[key] if key in known else " ".join(tokenize(text))
            tokenized.append(tokens[key].split() or ["<empty>"])
        df: dict[str, int] = {}
        for row in tokenized:
            for token in set(row):
                df[token] = df.get(token, 0) + 1
        bm25 = bm25s.BM25()
        bm25.index(tokenized, show_progress=False)
        return cls(list(ids), bm25, df, tokens)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (aligned with self.ids) for the query."""
        tokens = [t for t in tokenize(query) if t in self._df]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def known(self, token: str) -> bool:
        return token in self._df

    def document_frequency(self, token: str) -> int:
        return self._df.get(token, 0)

    def save(self, folder: Path, fingerprint: str) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))  # one per writer: no clashes
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "ids.json").write_text(json.dumps({"fingerprint": fingerprint, "ids": self.ids, "df": self._df}))
        (tmp / "tokens.json").write_text(json.dumps(self.tokens, ensure_ascii=False), encoding="utf-8")
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)  # a reader sees the old folder, the new one, or none (and then rebuilds): never a mix
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path, fingerprint: str) -> "KeywordIndex | None":
        """The saved index if it was built from this fingerprint, else None."""
        import bm25s

        try:
            meta = json.loads((folder / "ids.json").read_text())
            if meta["fingerprint"] != fingerprint:
                return None
            bm25 = bm25s.BM25.load(str(folder / "bm25")) if meta["ids"] else None
        except Exception:  # missing, truncated or from another version: derived data, rebuilt by the caller
            return None
        return cls(meta["ids"], bm25, meta["df"])


def known_tokens(folder: Path) -> dict[str, str]:
    """Tokens of the chunk texts the saved index was built from, whatever its fingerprint (tokenizing a text does
    not depend on the rest of the corpus)."""
    try:
        known = json.loads((folder / "tokens.json").read_text(encoding="utf-8"))
    except Exception:  # missing or unreadable: everything is segmented again
        return {}
    return known if isinstance(known, dict) else {}


def fingerprint(manifest: dict, chunk_count: int) -> str:
    return f"{manifest.get('generation')}:{manifest.get('sync_id')}:{chunk_count}"


def keyword_index(settings, store, chunks: tuple[list[str], list[str]] | None = None) -> KeywordIndex:
    """The keyword index matching the store's current contents: loaded if saved, else rebuilt and saved.
    ``chunks``: the store's (ids, texts) when the caller has just read them (a sync, for both derived indexes)."""
    mark = fingerprint(store.manifest, store.count_chunks())
    found = KeywordIndex.load(settings.keyword_dir, mark)
    if found is not None:
        return found
    ids, texts = chunks if chunks is not None else store.all_chunks(metadata=False)[:2]
    built = KeywordIndex.build(ids, texts, known_tokens(settings.keyword_dir))
    try:
        built.save(settings.keyword_dir, mark)
    except OSError:
        pass  # a read-only index folder: keep the rebuilt index in memory
    return built
