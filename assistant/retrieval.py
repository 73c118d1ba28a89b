"""Hybrid search: the passages that answer a question, in either language, ranked.

Candidates come from three searches (the chunks' best sentences by vector, the chunks by vector, BM25 keywords);
each candidate is then scored on every signal and the signals are fused after standardizing them per query
(weighted z-scores, which measured better than reciprocal-rank fusion here, see docs/retrieval.md). Scoring a chunk
by its best sentence finds a fact inside a long passage; keywords catch names and numbers, including Latin names and
figures inside Chinese text that match English documents.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from .chunking import Structure
from .keywords import KeywordIndex, keyword_index, tokenize
from .store import Store
from .textnorm import script_language
from .types import Filters, Passage

@dataclass(frozen=True)
class Weights:
    """Fusion weights, chosen on the development and extra question sets (docs/retrieval.md)."""

    models: tuple[float, ...] = (0.5, 2.5)  # per embedding model in the index (USE, e5), on calibrated sentence scores
    # ... for sentences in the other language than the question's: USE, trained on translation pairs, aligns the
    # two languages better than multilingual-e5-small does (used when the index has exactly these models)
    cross_models: tuple[float, ...] = (3.0, 1.0)
    sentence: float = 1.0  # the chunk's best sentence
    title: float = 0.6  # the document title's similarity to the question
    title_words: float = 0.5  # the question's rare words found in the title, issuer, date or file name
    keywords: float = 0.4  # BM25 on the chunk, with the question's words also rendered in the other language
    candidates: int = 40  # per search, before fusion
    reranker: float = 3.0  # a configured cross-encoder's standardized score, added to the passages it rescored: it
    # reads question and sentence together, so it outweighs the other signals combined (weights above sum to 2.5)


@dataclass(frozen=True)
class Scored:
    id: str
    score: float
    meta: dict
    text: str
    best_sentence: float  # the best sentence's calibrated similarity (first model, in deviations), for abstention
    sentences: tuple[tuple[int, int, float], ...]  # (start, end, fused score) of each sentence, in order


MIN_SENTENCE_CHARS = 12  # "Sec. 2." or a lone heading word carries no evidence of its own


class Retriever:
    def __init__(self, store: Store, keywords: KeywordIndex, embedder, weights: Weights = Weights(), lexicon=None,
                 reranker=None, rerank_candidates: int = 20):
        self.store = store
        self.keywords = keywords
        self._keyword_rows = {id_: row for row, id_ in enumerate(keywords.ids)}  # chunk id -> its BM25 score's index
        self.lexicon = lexicon  # the corpus's words in both languages (cross-language keywords, names)
        self.embedder = embedder
        self.weights = weights
        self.reranker = reranker  # rerank.Reranker or None
        self.rerank_candidates = rerank_candidates
        documents = store.documents()
        # Only chunks of completely indexed documents (a sync may be writing others right now).
        ids, texts, metas = store.all_chunks()
        self._metas = {i: m for i, m in zip(ids, metas) if m["doc_id"] in documents}
        self._texts = dict(zip(ids, texts))
        self._calibration = store.manifest.get("calibration", {})
        self._structures = {d: meta.get("structure") for d, meta in documents.items()}
        self._doc_ids = sorted(documents)
        vectors = store.title_vectors()
        self._titles = np.stack([vectors[d] for d in self._doc_ids]) if self._doc_ids else np.zeros((0, embedder.dim))
        self._doc_words = [set(tokenize(_describe(d, documents[d]))) for d in self._doc_ids]
        self._doc_pos = {d: i for i, d in enumerate(self._doc_ids)}
        self._doc_df: dict[str, int] = {}
        for words in self._doc_words:
            for word in words:
                self._doc_df[word] = self._doc_df.get(word, 0) + 1

    @classmethod
    def open(cls, settings, store: Store, embedder, weights: Weights = Weights()) -> "Retriever":
        from .lexicon import lexicon
        from .rerank import load_reranker

        return cls(store, keyword_index(settings, store), embedder, weights, lexicon(settings, store, embedder),
                   load_reranker(settings.reranker), settings.rerank_candidates)

    def search(self, query: str, k: int = 10, filters: dict | None = None) -> list[Scored]:
        where = Filters.parse(filters)
        if not self._metas:
            return []
        vector = self.embedder.embed_query(query)
        keyword_scores = self.keywords.scores(self.keyword_query(query))
        ids = self._candidates(vector, keyword_scores, where)
        if not ids:
            return []
        w = self.weights
        sent_metas, sent_vecs = self.store.sentence_vectors(ids, {i: self._metas[i] for i in ids})
        sentence_scores, similarity = self._sentence_scores(query, vector, sent_metas, sent_vecs)
        best: dict[str, float] = {}
        best_raw: dict[str, float] = {}
        spans: dict[str, list[tuple[int, int, float]]] = {i: [] for i in ids}
        for meta, score, cosine in zip(sent_metas, sentence_scores, similarity):
            chunk = meta["chunk_id"]
            if chunk not in spans:
                continue
            spans[chunk].append((meta["start"], meta["end"], float(score)))
            if score > best.get(chunk, -np.inf):
                best[chunk], best_raw[chunk] = float(score), float(cosine)
        floor = min(best.values(), default=0.0)
        title_sim, title_words = self._title_signals(query, vector)
        row = self._keyword_rows
        features = np.array([
            [best.get(i, floor), title_sim[self._doc_pos[self._metas[i]["doc_id"]]],
             title_words[self._doc_pos[self._metas[i]["doc_id"]]], keyword_scores[row[i]] if i in row else 0.0]
            for i in ids
        ])
        fused = fuse(features, [w.sentence, w.title, w.title_words, w.keywords])
        order = np.argsort(-fused)
        if self.reranker is not None:
            order = self._rerank(query, ids, fused, order, spans)
        order = order[:k]
        return [Scored(ids[j], float(fused[j]), self._metas[ids[j]], self._texts[ids[j]],
                       best_raw.get(ids[j], 0.0), tuple(sorted(spans[ids[j]])))
                for j in order]

    def _rerank(self, query: str, ids: list[str], fused: np.ndarray, order: np.ndarray, spans: dict) -> np.ndarray:
        """The cross-encoder rescores the sentences of the best-ranked passages; each of those passages gains its
        best sentence's standardized score (and each sentence its own, for choosing the answer's sentences)."""
        top = [int(j) for j in order[: max(self.rerank_candidates, 1)]]
        pairs = []  # (chunk, index into spans[chunk], text)
        for j in top:
            meta = self._metas[ids[j]]
            for n, (start, end, _) in enumerate(spans[ids[j]]):
                if end - start >= MIN_SENTENCE_CHARS:
                    pairs.append((ids[j], n, self._texts[ids[j]][start - meta["start"] : end - meta["start"]]))
        if not pairs:
            return order
        z = _zscore(self.reranker.scores(query, [text for _, _, text in pairs])[:, None])[:, 0]
        # A sentence's own score is the models' weighted deviations (weights summing to sum(models)): on that
        # scale too, the cross-encoder outweighs them.
        sentence_weight = self.weights.reranker * sum(self.weights.models)
        best: dict[str, float] = {}
        for (chunk, n, _), score in zip(pairs, z):
            start, end, sentence = spans[chunk][n]
            spans[chunk][n] = (start, end, sentence + sentence_weight * float(score))
            best[chunk] = max(best.get(chunk, -np.inf), float(score))
        floor = min(best.values())
        gain = _zscore(np.array([[best.get(ids[j], floor)] for j in top]))[:, 0]
        for j, g in zip(top, gain):
            fused[j] += self.weights.reranker * g
        reranked = sorted(top, key=lambda j: -fused[j])
        return np.array(reranked + [int(j) for j in order[len(top):]])

    def locate(self, doc_id: str, offset: int, fallback: str = "") -> str:
        """The locator ("Sec. 3(b)", a heading, "p. 4", "¶ 7") of an offset in a document."""
        structure = self._structures.get(doc_id)
        if isinstance(structure, str):
            structure = self._structures[doc_id] = Structure.from_json(json.loads(structure))
        return (structure.locate(offset) if structure is not None else "") or fallback

    def keyword_query(self, query: str) -> str:
        """The question plus its words' closest corpus words in the other language."""
        if self.lexicon is None:
            return query
        from .lexicon import content_words, word_embedder

        words = list(dict.fromkeys(content_words(query)))
        return " ".join([query, *self.lexicon.translations(words, word_embedder(self.embedder))])

    def _candidates(self, vector: np.ndarray, bm25: np.ndarray, where: Filters | None) -> list[str]:
        """Chunks found by their sentences' vectors, by their own vectors, and by keywords."""
        n = self.weights.candidates
        found: set[str] = {hit.meta["chunk_id"] for hit in self.store.query_sentences(vector, n * 3, where)}
        found.update(hit.id for hit in self.store.query(vector, n, where))
        added = 0
        top = np.argpartition(-bm25, n * 3)[: n * 3] if len(bm25) > n * 3 else np.arange(len(bm25))
        for i in top[np.argsort(-bm25[top], kind="stable")]:
            if bm25[i] <= 0 or added >= n:
                break
            id_ = self.keywords.ids[i]
            if id_ in self._metas and (where is None or where.matches(self._metas[id_])):
                found.add(id_)
                added += 1
        # A sync running in another process may have added chunks after this retriever's snapshot: skip them.
        return sorted(i for i in found if i in self._metas and i in self._texts)

    def _sentence_scores(self, query: str, vector: np.ndarray, metas: list[dict], vectors: np.ndarray):
        """Each sentence's score, and its calibrated similarity under the first model (comparable across
        questions, for abstention); too-short sentences score lowest."""
        if not metas:
            return np.zeros(0), np.zeros(0)
        langs = np.array([m.get("lang", "en") for m in metas])
        total, first = self._calibrated(query, vector, vectors, langs)
        short = np.array([m["end"] - m["start"] < MIN_SENTENCE_CHARS for m in metas])
        return np.where(short, total.min(), total), np.where(short, first.min(), first)

    def _calibrated(self, query: str, vector: np.ndarray, vectors: np.ndarray, langs: np.ndarray):
        """Per model, each cosine standardized for its (question language, text language) pair, which removes
        the models' preference for the question's own language; then z-scored over these texts and weighted.
        Returns the fused scores and the first model's calibrated cosines."""
        qlang = script_language(query)
        total = np.zeros(len(vectors))
        calibrated = []
        parts = self.embedder.parts
        cross = self.weights.cross_models if len(self.weights.cross_models) == len(parts) else self.weights.models
        for (name, part, weight), same, other in zip(parts, self.weights.models, cross):
            cosine = (vectors[:, part] @ vector[part]) / weight
            stats = self._calibration.get(name, {})
            for slang in ("en", "zh"):
                mean, std = stats.get(f"{qlang}>{slang}", (0.0, 1.0))
                mask = langs == slang
                cosine[mask] = (cosine[mask] - mean) / std
            calibrated.append(cosine)
            total += np.where(langs == qlang, same, other) * _zscore(cosine[:, None])[:, 0]
        return total, calibrated[0]

    def _title_signals(self, query: str, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per document: its title's cosine with the question, and the rarity-weighted share of the question's
        words found in its title, issuer, date or file name ("the 2022-01 release", "the executive order")."""
        sims = self._titles @ vector if len(self._titles) else np.zeros(0)
        words = set(tokenize(query))
        n = len(self._doc_ids)
        weights = {t: math.log(1 + n / (1 + self._doc_df.get(t, 0))) for t in words}
        total = sum(weights.values()) or 1.0
        share = np.array([sum(v for t, v in weights.items() if t in doc) / total for doc in self._doc_words])
        return sims, share


def _describe(doc_id: str, meta: dict) -> str:
    name = doc_id.rsplit("/", 1)[-1].rsplit(".", 1)[0].replace("_", " ")
    return f"{meta.get('title', '')} {meta.get('issuer', '')} {meta.get('date', '')} {name}"


def fuse(features: np.ndarray, weights) -> np.ndarray:
    """Weighted sum of the signals after standardizing each over the candidates (rows: candidates, columns:
    signals): a signal's scale never decides on its own, its spread among this question's candidates does."""
    return _zscore(np.asarray(features, dtype=float)) @ np.asarray(weights, dtype=float)


def _zscore(features: np.ndarray) -> np.ndarray:
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    return (features - mean) / np.where(std < 1e-9, 1.0, std)


def to_passage(scored: Scored) -> Passage:
    m = scored.meta
    return Passage(
        doc_id=m["doc_id"], path=m["path"], title=m["title"], locator=m["locator"], text=scored.text,
        start=m["start"], end=m["end"], score=round(scored.score, 4), date=m.get("date", ""),
        issuer=m.get("issuer", ""), language=m.get("language", ""),
    )


__all__ = ["Filters", "Retriever", "Weights", "fuse", "to_passage"]
