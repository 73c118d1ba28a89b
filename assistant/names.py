"""The names an indexed corpus mentions (places, people, organizations), for telling whether a question's name is
one the documents know, in either script.

"How much did Wisconsin's fund buy?" is answerable from a Chinese article that writes 威斯康星州; "How much does the
Texas pension hold?" is not, when no document mentions Texas in any language. A name in the question that is not
in the keyword vocabulary is looked up here: the multilingual model places a name and its transliteration close
together (Wisconsin / 威斯康星州 0.62, Morgan Stanley / 摩根士丹利 0.65 with USE), while a name the corpus lacks finds
only loosely related words (Texas / 美国 0.59, Tether / 比特 0.53). Derived data, rebuilt with the keyword index.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from .keywords import fingerprint

TRANSLATION_THRESHOLD = 0.6  # USE cosine between a name and its rendering in the other script
_EN_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}\b")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}")
_NAME_FLAGS = ("nr", "ns", "nt", "nz")  # jieba part-of-speech tags of proper nouns
MAX_NAMES = 20000


@lru_cache(maxsize=1)
def _posseg():
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


def extract_names(text: str) -> set[str]:
    """Proper nouns: Chinese ones by part of speech, Latin ones by capitalization."""
    names = {m.group(0) for m in _EN_NAME.finditer(text)}
    for run in _CJK_RUN.findall(text):
        names.update(w for w, flag in _posseg().cut(run) if flag.startswith(_NAME_FLAGS) and len(w) >= 2)
    return names


class NameIndex:
    def __init__(self, names: list[str], vectors: np.ndarray):
        self.names = names
        self.vectors = vectors

    @classmethod
    def build(cls, texts: list[str], embed, previous: "NameIndex | None" = None) -> "NameIndex":
        counts: dict[str, int] = {}
        for text in texts:
            for name in extract_names(text):
                counts[name] = counts.get(name, 0) + 1
        names = sorted(counts, key=lambda n: (-counts[n], n))[:MAX_NAMES]
        known = dict(zip(previous.names, previous.vectors)) if previous is not None else {}
        fresh = [n for n in names if n not in known]
        if fresh:
            known.update(zip(fresh, embed(fresh)))
        vectors = np.stack([known[n] for n in names]) if names else np.zeros((0, 1), dtype=np.float32)
        return cls(names, vectors)

    def closest(self, vector: np.ndarray) -> tuple[str, float]:
        if not self.names:
            return "", 0.0
        sims = self.vectors @ vector
        best = int(np.argmax(sims))
        return self.names[best], float(sims[best])

    def save(self, folder: Path, mark: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "names.tmp.npz"
        np.savez(tmp, vectors=self.vectors, meta=np.array(json.dumps({"fingerprint": mark, "names": self.names})))
        tmp.replace(folder / "names.npz")

    @classmethod
    def load(cls, folder: Path) -> tuple["NameIndex | None", str]:
        try:
            with np.load(folder / "names.npz") as data:
                meta = json.loads(str(data["meta"]))
                return cls(meta["names"], data["vectors"]), meta["fingerprint"]
        except (OSError, ValueError, KeyError):
            return None, ""


def name_vectors_of(embedder):
    """Embed names with the first model of the embedder only (USE by default: e5 scores every pair alike)."""
    _, part, _ = embedder.parts[0]

    def embed(texts: list[str]) -> np.ndarray:
        vectors = embedder.embed_passages(texts)[:, part]
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    return embed


def name_index(settings, store, embedder) -> NameIndex:
    """The name index for the store's current contents: loaded if saved, else rebuilt (reusing known vectors)."""
    mark = fingerprint(store.manifest, store.count_chunks())
    folder = settings.index_dir / "names"
    found, built_for = NameIndex.load(folder)
    if found is not None and built_for == mark:
        return found
    _, texts, _ = store.all_chunks()
    built = NameIndex.build(texts, name_vectors_of(embedder), previous=found)
    try:
        built.save(folder, mark)
    except OSError:
        pass  # a read-only index folder: keep it in memory
    return built
