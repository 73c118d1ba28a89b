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
Derived data, kept in one SQLite file (index/lexicon/words.sqlite): every chunk text's words and names (jieba's
part-of-speech tagging of a whole corpus takes minutes at 20,000 chunks, so a text is analysed once), the corpus's
word counts, and the vectors of the words ranked into the lexicon. A sync adds and subtracts the texts it changed
and embeds only words new to the lexicon, in one transaction with the fingerprint of the store contents it
describes: an edit writes a few rows, not the 100 MB a rewritten lexicon takes at 20,000 chunks, and a sync killed
half-way leaves the previous state (docs/scale.md). Every path gives the lexicon a rebuild from scratch gives
(tests/test_lexicon.py).
"""

from __future__ import annotations

import logging
import re
import sqlite3
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


class WordStore:
    """The lexicon's persistent state in SQLite: per chunk text (by text_key) its number of chunks and its analysis;
    per word its occurrences; per name the chunks mentioning it; the vectors of words ranked into the lexicon (for
    one embedding model). Changes go in one transaction per sync, committed with the fingerprint they bring the
    state to (``commit``)."""

    def __init__(self, folder: Path, in_memory: bool = False):
        """The store saved in the folder; ``in_memory``: a copy of it in memory (a read-only index folder), whose
        changes last as long as the process."""
        path = folder / "words.sqlite"
        try:
            if in_memory:
                raise OSError("asked for a copy in memory")
            folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error):
            self._db = sqlite3.connect(":memory:")
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as disk:
                    disk.backup(self._db)
            except sqlite3.Error:
                pass  # none saved, or unreadable: counted again from the store's chunks
            self._db.executescript(_SCHEMA)
        self._db.create_function("name_lang", 1, _name_lang, deterministic=True)

    def close(self) -> None:
        self._db.close()

    def meta(self, key: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else ""

    def uses(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT key, uses FROM texts"))

    def recount(self, texts: list[str]) -> None:
        """The counts of exactly these chunk texts (each text's old number of chunks replaced by its new one)."""
        now, text_of = _by_key(texts)
        uses = self.uses()
        self._apply({key: now.get(key, 0) - uses.get(key, 0) for key in set(now) | set(uses)}, text_of)

    def change(self, added: list[str], removed_keys: list[str]) -> None:
        """One chunk more of each added text, one fewer of each removed text key (a sync's own changes). Raises
        ValueError when a removed text was never counted (the caller then recounts)."""
        delta, text_of = _by_key(added)
        for key in removed_keys:
            delta[key] = delta.get(key, 0) - 1
        self._apply(delta, text_of)

    def _apply(self, delta: dict[str, int], text_of: dict[str, str]) -> None:
        delta = {key: n for key, n in delta.items() if n}
        known: dict[str, tuple[int, str]] = {}
        keys = list(delta)
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            known.update((k, (u, a)) for k, u, a in self._db.execute(
                f"SELECT key, uses, analysis FROM texts WHERE key IN ({','.join('?' * len(part))})", part))
        words: dict[tuple[str, str], int] = {}
        names: dict[str, int] = {}
        texts = []
        for key, n in delta.items():
            uses, analysis = known.get(key, (0, None))
            if analysis is None:
                if key not in text_of:
                    self._db.rollback()
                    raise ValueError("removing a text the lexicon never counted")
                analysis = analyse(text_of[key])
            found, mentioned = _parse(analysis)
            for word, lang, count in found:
                words[(word, lang)] = words.get((word, lang), 0) + count * n
            for name in mentioned:
                names[name] = names.get(name, 0) + n
            texts.append((key, uses + n, analysis))
        db = self._db
        db.executemany("INSERT INTO texts VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET uses = excluded.uses",
                       texts)
        db.execute("DELETE FROM texts WHERE uses <= 0")
        db.executemany("INSERT INTO words VALUES (?, ?, ?) ON CONFLICT(word, lang) DO UPDATE SET n = n + excluded.n",
                       [(w, lang, n) for (w, lang), n in words.items() if n])
        db.execute("DELETE FROM words WHERE n <= 0")
        db.executemany("INSERT INTO names VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET n = n + excluded.n",
                       [(name, n) for name, n in names.items() if n])
        db.execute("DELETE FROM names WHERE n <= 0")

    def ranked(self) -> list[tuple[str, str, bool]]:
        """The lexicon's terms (word, language, is a name): names, then the most frequent words; a word seen once
        is mostly noise for translation (and half the cost), so it needs two occurrences unless it is a name."""
        names = self._db.execute(_RANKED_NAMES).fetchall()[:MAX_TERMS]
        words = self._db.execute(_RANKED_WORDS, (MAX_TERMS - len(names),)).fetchall()
        return [(w, lang, True) for w, lang in names] + [(w, lang, False) for w, lang in words]

    def embed_missing(self, embed, model: str) -> None:
        """Vectors for the ranked terms that have none yet (all of them when the model changed)."""
        if self.meta("model") != model:
            self._db.execute("DELETE FROM vectors")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?)", (model,))
        have = set(self._db.execute("SELECT word, lang FROM vectors"))
        missing = [(w, lang) for w, lang, _ in self.ranked() if (w, lang) not in have]
        if missing:
            vectors = np.asarray(embed([w for w, _ in missing]), dtype=np.float32)
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                                 [(w, lang, v.tobytes()) for (w, lang), v in zip(missing, vectors)])

    def commit(self, mark: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (mark,))
        self._db.commit()

    def lexicon(self) -> "Lexicon":
        ranked = self.ranked()
        vectors = dict(((w, lang), v) for w, lang, v in self._db.execute("SELECT word, lang, vector FROM vectors"))
        rows = [(w, lang, name) for w, lang, name in ranked if (w, lang) in vectors]
        if not rows:
            return Lexicon([], [], [], np.zeros((0, 1), dtype=np.float32), self.meta("model"))
        matrix = np.frombuffer(b"".join(vectors[w, lang] for w, lang, _ in rows), dtype=np.float32)
        return Lexicon([w for w, _, _ in rows], [lang for _, lang, _ in rows], [name for _, _, name in rows],
                       matrix.reshape(len(rows), -1), self.meta("model"))

    def totals(self) -> dict:
        """Everything counted, comparable between two stores."""
        db = self._db
        return {"texts": sorted(db.execute("SELECT key, uses, analysis FROM texts")),
                "words": sorted(db.execute("SELECT word, lang, n FROM words")),
                "names": sorted(db.execute("SELECT name, n FROM names"))}


def _by_key(texts: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """How many times each text (by text_key) occurs, and the text of each key."""
    counts: dict[str, int] = {}
    text_of: dict[str, str] = {}
    for text in texts:
        key = text_key(text)
        counts[key] = counts.get(key, 0) + 1
        text_of.setdefault(key, text)
    return counts, text_of


def _name_lang(name: str) -> str:
    return "zh" if _CJK_RUN.search(name) else "en"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS texts (key TEXT PRIMARY KEY, uses INTEGER NOT NULL, analysis TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS words (word TEXT, lang TEXT, n INTEGER NOT NULL, PRIMARY KEY (word, lang)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS names (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vectors (word TEXT, lang TEXT, vector BLOB NOT NULL, PRIMARY KEY (word, lang)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS words_by_rank ON words (n DESC, word, lang);
"""
# Names first: each name with every language it is counted in as a word, and in its script's language (counting
# once if it is not); by occurrences, then alphabetically (UTF-8 byte order is code point order: as Python sorts).
_RANKED_NAMES = """
SELECT word, lang FROM (
    SELECT w.word, w.lang, w.n FROM words w JOIN names nm ON nm.name = w.word
    UNION ALL
    SELECT name, name_lang(name), 1 FROM names
) GROUP BY word, lang ORDER BY MAX(n) DESC, word, lang
"""
# Then the other words seen at least twice, read in the index's order up to the limit (no sort of every word).
_RANKED_WORDS = """
SELECT word, lang FROM words WHERE n >= 2 AND word NOT IN (SELECT name FROM names)
ORDER BY n DESC, word, lang LIMIT ?
"""


class Lexicon:
    def __init__(self, terms: list[str], langs: list[str], names: list[bool], vectors: np.ndarray, model: str = ""):
        self.model = model  # the embedding model of the vectors
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


def word_embedder(embedder):
    """Embed words with the first model of the embedder only (USE by default; e5 scores every word pair alike)."""
    model = embedder.first
    return lambda texts: model.embed_passages(texts, batch_size=256)


def update_lexicon(settings, store, embedder, changes: ChunkChanges | None = None) -> WordStore:
    """Bring the saved lexicon to the store's current contents: by a sync's ``changes`` when they start from the
    state it holds, else by every chunk (``changes`` from an empty index, or the store's chunks), reusing known
    texts' analyses and words' vectors. Returns the open word store."""
    folder = settings.index_dir / "lexicon"
    words = WordStore(folder)
    mark = fingerprint(store.manifest, store.count_chunks())
    if words.meta("fingerprint") == mark:
        return words
    try:
        _bring_up_to_date(words, store, embedder, changes)
        words.commit(mark)
    except sqlite3.OperationalError:  # a read-only index folder: the same work on a copy, for this process only
        words.close()
        words = WordStore(folder, in_memory=True)
        _bring_up_to_date(words, store, embedder, changes)
        words.commit(mark)
    for old in ("lexicon.npz", "words.json"):  # the files of the lexicon's earlier format
        try:
            (folder / old).unlink(missing_ok=True)
        except OSError:
            pass
    return words


def _bring_up_to_date(words: WordStore, store, embedder, changes: ChunkChanges | None) -> None:
    if changes is not None and not changes.before:
        words.recount([text for _, text in changes.added])
    else:
        try:
            if changes is None or words.meta("fingerprint") != changes.before:
                raise ValueError("the saved lexicon is not the one these changes start from")
            words.change([text for _, text in changes.added], [key for _, key in changes.removed])
        except ValueError:
            words.recount(store.all_chunks(metadata=False)[1])
    words.embed_missing(word_embedder(embedder), embedder.first.name)


def lexicon(settings, store, embedder, changes: ChunkChanges | None = None) -> Lexicon:
    """The lexicon of the store's current contents (brought up to date first when it is not)."""
    words = update_lexicon(settings, store, embedder, changes)
    try:
        return words.lexicon()
    finally:
        words.close()
