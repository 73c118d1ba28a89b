"""The corpus's own words in both languages, with their vectors: a bilingual lexicon learned from nothing but the
documents and the multilingual model.

Two uses:
- Cross-language keywords. A Chinese question about an English order shares no keyword with it; its words' nearest
  English corpus words (私钥 → "private key", 受托人 → "fiduciary") are added to the keyword query, and the other way
  round. Measured on the development and extra sets: cross-lingual recall@5 0.79 → 0.86 (docs/retrieval.md).
- Names for abstention. "How much did Wisconsin's fund buy?" is answerable from a Chinese article that writes
  威斯康星州; "How much does the Texas pension hold?" is not when no document mentions Texas in any script. USE places
  a name and its rendering close together (Wisconsin / 威斯康星州 0.62, Morgan Stanley / 摩根士丹利 0.65), while a name
  the corpus lacks finds only loosely related words (Texas / 美国 0.59, Tether / 比特 0.53).
Derived data: rebuilt after each sync, with vectors of known words reused, and the corpus's word counts updated by
the chunk texts that changed only (each chunk's words and names are saved by a hash of its text; jieba's
part-of-speech tagging of a whole corpus takes minutes at 20,000 chunks). The result is the same as a rebuild from
scratch (tests/test_lexicon.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .keywords import _EN_STOP, _ZH_STOP, ChunkChanges, fingerprint, text_key

TRANSLATION_THRESHOLD = 0.6  # a name and its rendering in the other script (names)
EXPANSION_THRESHOLD = 0.55  # a question word and a corpus word in the other language (keywords)
EXPANSION_PER_WORD = 3
MAX_TERMS = 40000  # the most frequent words and word pairs; names are always kept
_EN_WORD = re.compile(r"[A-Za-z][A-Za-z-]{2,}")
_EN_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}\b")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{2,}")
_NAME_FLAGS = ("nr", "ns", "nt", "nz")  # jieba part-of-speech tags of proper nouns


@lru_cache(maxsize=1)
def _posseg():
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg


def extract_names(text: str) -> set[str]:
    """Proper nouns: Latin ones by capitalization, Chinese ones by part of speech."""
    names = {m.group(0) for m in _EN_NAME.finditer(text)}
    for run in _CJK_RUN.findall(text):
        names.update(w for w, flag in _posseg().cut(run) if flag.startswith(_NAME_FLAGS) and len(w) >= 2)
    return names


def content_words(text: str) -> list[tuple[str, str]]:
    """(word, language) of the words worth translating: English words and adjacent pairs, Chinese words."""
    from .keywords import _jieba

    words = []
    english = [w.lower() for w in _EN_WORD.findall(text)]
    for i, word in enumerate(english):
        if word not in _EN_STOP:
            words.append((word, "en"))
            if i + 1 < len(english) and english[i + 1] not in _EN_STOP:
                words.append((f"{word} {english[i + 1]}", "en"))
    for run in _CJK_RUN.findall(text):
        words.extend((w, "zh") for w in _jieba().lcut(run) if len(w) >= 2 and w not in _ZH_STOP)
    return words


def analyse(text: str) -> str:
    """What the lexicon takes from one chunk, compact (it is saved for every chunk): one line per distinct word,
    "language TAB occurrences TAB word", then a line holding only RS and one line per name. Words and names never
    hold a tab or a line break."""
    counts: dict[tuple[str, str], int] = {}
    for word in content_words(text):
        counts[word] = counts.get(word, 0) + 1
    lines = [f"{lang}\t{n}\t{w}" for (w, lang), n in counts.items()]
    return "\n".join(lines + ["\x1e"] + sorted(extract_names(text)))


def _parse(analysis: str) -> tuple[list[tuple[str, str, int]], list[str]]:
    words, _, names = analysis.partition("\x1e")
    parsed = []
    for line in words.split("\n"):
        if line:
            lang, n, word = line.split("\t", 2)
            parsed.append((word, lang, int(n)))
    return parsed, [n for n in names.split("\n") if n]


class Totals:
    """The corpus's word counts and name mentions, kept per chunk text so a rebuild only adds and subtracts the
    texts that changed (an edit at 20,000 chunks touches a few of them, not 20,000)."""

    def __init__(self, analyses=None, uses=None, counts=None, names=None):
        self.analyses: dict[str, str] = analyses or {}  # text_key -> analyse(text)
        self.uses: dict[str, int] = uses or {}  # text_key -> chunks with that text
        self.counts: dict[tuple[str, str], int] = counts or {}  # (word, language) -> occurrences
        self.names: dict[str, int] = names or {}  # name -> chunks mentioning it

    def update(self, texts: list[str]) -> "Totals":
        """The totals of these texts, from these ones: only texts whose number of chunks changed are applied."""
        now: dict[str, int] = {}
        text_of: dict[str, str] = {}
        for text in texts:
            key = text_key(text)
            now[key] = now.get(key, 0) + 1
            text_of.setdefault(key, text)
        return self._apply({key: now.get(key, 0) - self.uses.get(key, 0) for key in set(now) | set(self.uses)},
                           text_of)

    def changed(self, added: list[str], removed_keys: list[str]) -> "Totals":
        """These totals with one chunk more of each added text and one fewer of each removed text key (a sync's
        own changes: nothing else is read)."""
        delta: dict[str, int] = {}
        text_of: dict[str, str] = {}
        for text in added:
            key = text_key(text)
            delta[key] = delta.get(key, 0) + 1
            text_of.setdefault(key, text)
        for key in removed_keys:
            delta[key] = delta.get(key, 0) - 1
        return self._apply(delta, text_of)

    def _apply(self, delta: dict[str, int], text_of: dict[str, str]) -> "Totals":
        out = Totals(dict(self.analyses), dict(self.uses), dict(self.counts), dict(self.names))
        for key, n in delta.items():
            if not n:
                continue
            analysis = out.analyses.get(key)
            if analysis is None:
                if key not in text_of:
                    raise ValueError("removing a text these totals never counted")
                analysis = out.analyses[key] = analyse(text_of[key])
            words, names = _parse(analysis)
            for word, lang, count in words:
                _add(out.counts, (word, lang), count * n)
            for name in names:
                _add(out.names, name, n)
            _add(out.uses, key, n)
            if key not in out.uses:
                del out.analyses[key]
        return out

    def to_json(self) -> dict:
        return {"analyses": self.analyses, "uses": self.uses, "names": self.names,
                "counts": {f"{lang}\t{word}": n for (word, lang), n in self.counts.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "Totals":
        counts = {}
        for key, n in data["counts"].items():
            lang, word = key.split("\t", 1)
            counts[(word, lang)] = n
        if not set(data["uses"]) <= set(data["analyses"]):
            raise ValueError("totals without the analyses they count")
        return cls(data["analyses"], data["uses"], counts, data["names"])


def _add(table: dict, key, n: int) -> None:
    total = table.get(key, 0) + n
    if total:
        table[key] = total
    else:
        table.pop(key, None)


class Lexicon:
    def __init__(self, terms: list[str], langs: list[str], names: list[bool], vectors: np.ndarray, model: str = ""):
        self.model = model  # the embedding model of the vectors: never reused for another
        self.totals = Totals()  # of the texts it was built from
        self._recent: dict[tuple, tuple[str, ...]] = {}  # the last questions' words -> their translations
        # Terms grouped by language, so a question word is compared with the other language's block only (a view:
        # at 20,000 chunks the lexicon is 40,000 x 512 floats, read once per question).
        order = np.argsort(np.array(langs), kind="stable")
        self.terms = [terms[i] for i in order]
        self.langs = np.array(langs)[order]
        self.is_name = np.array(names, dtype=bool)[order]
        self.vectors = vectors[order] if len(terms) and (order != np.arange(len(order))).any() else vectors
        found, starts = np.unique(self.langs, return_index=True)
        ends = list(starts[1:]) + [len(self.terms)]
        self._blocks = {str(lang): (int(a), int(b)) for lang, a, b in zip(found, starts, ends)}

    @classmethod
    def build(cls, totals: Totals, embed, model: str, previous: "Lexicon | None" = None) -> "Lexicon":
        """The lexicon of the texts these totals count. ``previous``: a lexicon whose word vectors are reused (same
        model only)."""
        names = set(totals.names)
        counts = dict(totals.counts)
        for name in names:
            counts.setdefault((name, "zh" if _CJK_RUN.search(name) else "en"), 1)
        # Words seen once are mostly noise for translation (and half the cost); names are always kept.
        kept = [w for w in counts if counts[w] >= 2 or w[0] in names]
        ranked = sorted(kept, key=lambda w: (w[0] not in names, -counts[w], w))[:MAX_TERMS]
        reuse = previous is not None and previous.model == model
        known = dict(zip(previous.terms, previous.vectors)) if reuse else {}
        fresh = [w for w, _ in ranked if w not in known]
        if fresh:
            known.update(zip(fresh, embed(fresh)))
        terms = [w for w, _ in ranked]
        vectors = np.stack([known[t] for t in terms]) if terms else np.zeros((0, 1), dtype=np.float32)
        built = cls(terms, [lang for _, lang in ranked], [w in names for w, _ in ranked], vectors, model)
        built.totals = totals
        return built

    def translations(self, words: list[tuple[str, str]], embed) -> list[str]:
        """Corpus words of the other language closest to these question words."""
        if not words or not self.terms:
            return []
        key = tuple(words)
        if key in self._recent:  # retrieval and the answer both expand the same question
            return list(self._recent[key])
        vectors = np.asarray(embed([w for w, _ in words]), dtype=self.vectors.dtype)
        # One product per language block for all the words of the other language (a product per word read the
        # whole lexicon again each time: hundreds of milliseconds per question at 20,000 chunks); only the best
        # few sorted.
        best_of: dict[int, list[int]] = {}
        sims_of: dict[int, np.ndarray] = {}
        for block, (start, end) in self._blocks.items():
            rows = [i for i, (_, lang) in enumerate(words) if lang != block]
            if not rows:
                continue
            sims = self.vectors[start:end] @ vectors[rows].T
            for i, column in zip(rows, sims.T):
                top = min(EXPANSION_PER_WORD, len(column))
                best = np.argpartition(-column, top - 1)[:top]
                best_of.setdefault(i, []).extend(start + best)
                sims_of[i] = np.concatenate([sims_of.get(i, np.zeros(0)), column[best]])
        out = []
        for i in range(len(words)):
            if i not in best_of:
                continue
            best, sims = np.array(best_of[i]), sims_of[i]
            for n in np.lexsort((best, -sims))[:EXPANSION_PER_WORD]:
                if sims[n] >= EXPANSION_THRESHOLD:
                    out.append(self.terms[best[n]])
        if len(self._recent) >= 64:
            self._recent.clear()  # (one call, safe with the server's threads)
        self._recent[key] = tuple(out)
        return out

    def closest_name(self, vector: np.ndarray) -> tuple[str, float]:
        if not self.is_name.any():
            return "", 0.0
        sims = np.where(self.is_name, self.vectors @ vector, -1.0)
        best = int(np.argmax(sims))
        return self.terms[best], float(sims[best])

    def save(self, folder: Path, mark: str) -> None:
        """The lexicon, then its totals; each file is replaced whole, and each names the fingerprint it was built
        for (a reader that finds them differ does not trust the totals)."""
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"fingerprint": mark, "model": self.model, "terms": self.terms, "langs": self.langs.tolist(),
                "names": self.is_name.tolist()}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".lexicon-", suffix=".npz")  # one per writer: no clashes
        with os.fdopen(fd, "wb") as out:
            np.savez(out, vectors=self.vectors, meta=np.array(json.dumps(meta, ensure_ascii=False)))
        os.replace(tmp, folder / "lexicon.npz")
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".words-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"fingerprint": mark, **self.totals.to_json()}, out, ensure_ascii=False)
        os.replace(tmp, folder / "words.json")

    @classmethod
    def load(cls, folder: Path) -> tuple["Lexicon | None", str]:
        try:
            with np.load(folder / "lexicon.npz") as data:
                meta = json.loads(str(data["meta"]))
                lexicon = cls(meta["terms"], meta["langs"], meta["names"], data["vectors"], meta.get("model", ""))
                return lexicon, meta["fingerprint"]
        except Exception:  # missing, truncated or from another version: derived data, rebuilt by the caller
            return None, ""


def known_totals(folder: Path) -> tuple[Totals, str]:
    """The totals saved with the last lexicon and the fingerprint they were counted for, whatever it is (to be
    updated, not trusted as current); empty totals when there are none readable."""
    try:
        data = json.loads((folder / "words.json").read_text(encoding="utf-8"))
        return Totals.from_json(data), data.get("fingerprint", "")
    except Exception:  # missing or unreadable: everything is analysed again
        return Totals(), ""


def word_embedder(embedder):
    """Embed words with the first model of the embedder only (USE by default; e5 scores every word pair alike)."""
    model = embedder.first
    return lambda texts: model.embed_passages(texts, batch_size=256)


def lexicon(settings, store, embedder, changes: ChunkChanges | None = None) -> Lexicon:
    """The lexicon of the store's current contents: loaded if saved; else rebuilt from the saved totals, updated
    by a sync's ``changes`` when they apply to them, or else by every chunk (``changes`` from an empty index, or
    the store's), reusing known words' vectors and chunk analyses."""
    folder = settings.index_dir / "lexicon"
    mark = fingerprint(store.manifest, store.count_chunks())
    found, built_for = Lexicon.load(folder)
    if found is not None and built_for == mark:
        return found
    totals, counted_for = known_totals(folder)
    if changes is not None and not changes.before:  # every chunk
        totals = totals.update([text for _, text in changes.added])
    else:
        try:
            if changes is None or counted_for != changes.before:
                raise ValueError("the saved totals are not the ones these changes apply to")
            totals = totals.changed([text for _, text in changes.added], [key for _, key in changes.removed])
        except ValueError:
            totals = totals.update(store.all_chunks(metadata=False)[1])
    built = Lexicon.build(totals, word_embedder(embedder), embedder.first.name, previous=found)
    try:
        built.save(folder, mark)
    except OSError:
        pass  # a read-only index folder: keep it in memory
    return built
