"""Keyword search: BM25 over jieba-segmented Chinese and stemmed English, kept beside the vector index.

The keyword index is derived data, saved under index/keywords/ with the fingerprint (generation, sync id, chunk
count) of the store contents it describes; a process that finds another fingerprint rebuilds it from the store.
A sync does not rebuild it: it applies its own changes (chunks added and removed) to the index saved before it,
so an edit at 20,000 chunks segments a few texts instead of reading back and re-indexing every chunk
(docs/scale.md). Each chunk's row holds its token counts and the hash of its text, so a rebuild from the store
reuses the rows of texts seen before, and the result equals a rebuild from scratch (tests/test_keywords.py).

BM25 is computed here (numpy, the Lucene variant with bm25s's defaults, k1 = 1.5 and b = 0.75): an index that is
updated in place needs its raw term counts, which bm25s folds into precomputed scores. llama-index's
BM25Retriever ignores a custom tokenizer (unspaced Chinese would be one token per sentence), so it is not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
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


K1, B = 1.5, 0.75


@dataclass
class ChunkChanges:
    """What a sync changed in the store's chunks, for the derived indexes to follow without reading every chunk:
    ``before`` is the fingerprint of the contents the changes apply to."""

    before: str  # "" for changes from an empty index: ``added`` is then every chunk
    added: list[tuple[str, str]] = field(default_factory=list)  # (chunk id, text)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (chunk id, text_key)

    @classmethod
    def everything(cls, ids: list[str], texts: list[str]) -> "ChunkChanges":
        return cls("", list(zip(ids, texts)))


class KeywordIndex:
    """One row per chunk (aligned with ``ids``): its text's key and token counts, as a compressed sparse row
    matrix over ``vocab``. Scoring reads the transpose (each token's chunks), made when first needed."""

    def __init__(self, ids: list[str], keys: list[str], vocab: list[str], indptr, indices, counts):
        self.ids = ids
        self.keys = keys  # text_key of each chunk's text
        self.vocab = vocab
        self._column = {token: i for i, token in enumerate(vocab)}
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.counts = np.asarray(counts, dtype=np.float32)
        self._row_of = np.repeat(np.arange(len(ids)), np.diff(self.indptr))  # the row of each stored count
        self.lengths = np.bincount(self._row_of, weights=self.counts, minlength=len(ids))  # tokens per chunk
        self.df = np.bincount(self.indices, minlength=len(vocab))  # chunks containing each token
        self._postings = None

    @classmethod
    def build(cls, ids: list[str], texts: list[str], known: "KeywordIndex | None" = None) -> "KeywordIndex":
        """BM25 over these chunks; the rows of texts ``known`` has seen are reused, the others segmented."""
        return cls([], [], [], [0], [], []).updated([], list(zip(ids, texts)), known=known)

    def updated(self, removed_ids, added: list[tuple[str, str]], known: "KeywordIndex | None" = None
                ) -> "KeywordIndex":
        """This index without the ``removed_ids`` chunks and with the ``added`` (id, text) ones appended. Texts this
        index (or ``known``) has a row for are not segmented again."""
        removed = set(removed_ids)
        keep = np.array([i not in removed for i in self.ids], dtype=bool)
        vocab, column = list(self.vocab), dict(self._column)
        keys = [text_key(text) for _, text in added]
        wanted = set(keys)
        rows = {}
        for source in (known, self):
            if source is not None:
                rows.update((key, (source, r)) for r, key in enumerate(source.keys) if key in wanted)
        new_indices, new_counts, sizes = [], [], []
        for (_, text), key in zip(added, keys):
            if key in rows:
                source, r = rows[key]
                tokens = [source.vocab[t] for t in source.indices[source.indptr[r]:source.indptr[r + 1]]]
                counts = list(source.counts[source.indptr[r]:source.indptr[r + 1]])
            else:
                bag: dict[str, int] = {}
                for token in tokenize(text) or ["<empty>"]:
                    bag[token] = bag.get(token, 0) + 1
                tokens, counts = list(bag), list(bag.values())
            for token in tokens:
                if token not in column:
                    column[token] = len(vocab)
                    vocab.append(token)
            new_indices.append([column[t] for t in tokens])
            new_counts.append(counts)
            sizes.append(len(tokens))
        per_row = np.diff(self.indptr)
        entry_kept = np.repeat(keep, per_row)
        indptr = np.concatenate([[0], np.cumsum(np.concatenate([per_row[keep], np.array(sizes, dtype=np.int64)]))])
        indices = np.concatenate([self.indices[entry_kept]] + [np.array(i, dtype=np.int32) for i in new_indices])
        counts = np.concatenate([self.counts[entry_kept]] + [np.array(c, dtype=np.float32) for c in new_counts])
        ids = [i for i, k in zip(self.ids, keep) if k] + [i for i, _ in added]
        keys = [k for k, kept in zip(self.keys, keep) if kept] + keys
        return KeywordIndex(ids, keys, vocab, indptr, indices, counts)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (aligned with self.ids) for the query (a token repeated counts again)."""
        columns = [self._column[t] for t in tokenize(query) if self.known(t)]
        out = np.zeros(len(self.ids), dtype=np.float32)
        if not columns:
            return out
        if self._postings is None:  # each token's rows and counts, in token order (one sort, kept)
            order = np.argsort(self.indices, kind="stable")
            starts = np.searchsorted(self.indices[order], np.arange(len(self.vocab) + 1))
            norm = K1 * (1 - B + B * self.lengths / max(float(self.lengths.mean()), 1e-9))
            self._postings = (self._row_of[order], self.counts[order], starts, norm)
        rows, counts, starts, norm = self._postings
        n = len(self.ids)
        for c in columns:
            df = self.df[c]
            idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
            r, tf = rows[starts[c]:starts[c + 1]], counts[starts[c]:starts[c + 1]]
            out[r] += (idf * tf / (norm[r] + tf)).astype(np.float32)
        return out

    def known(self, token: str) -> bool:
        return self.document_frequency(token) > 0

    def document_frequency(self, token: str) -> int:
        column = self._column.get(token)
        return int(self.df[column]) if column is not None else 0

    def save(self, folder: Path, fingerprint: str) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))  # one per writer: no clashes
        with open(tmp / "rows.npz", "wb") as out:
            np.savez(out, indptr=self.indptr, indices=self.indices, counts=self.counts)
        meta = {"version": _VERSION, "fingerprint": fingerprint, "ids": self.ids, "keys": self.keys,
                "vocab": self.vocab}
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)  # a reader sees the old folder, the new one, or none (and then rebuilds): never a mix
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> tuple["KeywordIndex | None", str]:
        """The saved index and the fingerprint it was built for; (None, "") when there is none readable."""
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta.get("version") != _VERSION:
                return None, ""
            with np.load(folder / "rows.npz") as rows:
                index = cls(meta["ids"], meta["keys"], meta["vocab"], rows["indptr"], rows["indices"], rows["counts"])
            if not (len(index.ids) == len(index.keys) == len(index.indptr) - 1):
                return None, ""
        except Exception:  # missing, truncated or from another version: derived data, rebuilt by the caller
            return None, ""
        return index, meta["fingerprint"]


_VERSION = 2  # the saved format (1: bm25s's matrix and a tokens file)


def fingerprint(manifest: dict, chunk_count: int) -> str:
    return f"{manifest.get('generation')}:{manifest.get('sync_id')}:{chunk_count}"


def keyword_index(settings, store, changes: ChunkChanges | None = None) -> KeywordIndex:
    """The keyword index matching the store's current contents: loaded if saved; else the saved one updated by a
    sync's ``changes`` when it is the index they apply to; else rebuilt from every chunk (``changes`` from an empty
    index, or the store's), reusing the saved rows of known texts. Saved when it changed."""
    mark = fingerprint(store.manifest, store.count_chunks())
    found, built_for = KeywordIndex.load(settings.keyword_dir)
    if found is not None and built_for == mark:
        return found
    if changes is not None and not changes.before:
        index = KeywordIndex.build([i for i, _ in changes.added], [t for _, t in changes.added], known=found)
    elif found is not None and changes is not None and built_for == changes.before:
        index = found.updated([i for i, _ in changes.removed], changes.added)
    else:
        ids, texts = store.all_chunks(metadata=False)[:2]
        index = KeywordIndex.build(ids, texts, known=found)
    try:
        index.save(settings.keyword_dir, mark)
    except OSError:
        pass  # a read-only index folder: keep the rebuilt index in memory
    return index
