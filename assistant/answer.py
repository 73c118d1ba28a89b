"""Ranked passages → an extractive answer: the sentences that answer, each with a verified citation, or an honest
"the documents do not say".

Sentences of the top passages are scored against the question (their fused score from retrieval, plus the share of
the question's words they contain, weighted by rarity, plus a bonus when they hold the kind of fact asked for); the
best few are kept in order of relevance, near-duplicates dropped and neighbours in one document merged into one
quote. Every quote is checked against the stored document
text before it is returned. The answer abstains when the evidence does not hold what was asked (see abstain()).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .keywords import tokenize
from .retrieval import MIN_SENTENCE_CHARS, Scored, to_passage
from .types import Answer, Citation

# Sentence selection, tuned on the development and extra question sets (docs/retrieval.md, "Answers").
MAX_SENTENCES = 3
MARGIN = 3.0  # keep sentences scoring within this of the best one (scores are standardized per question)
COVERAGE_WEIGHT = 2.0  # share of the question's rare words in the sentence
SLOT_WEIGHT = 1.0  # the sentence holds the kind of fact asked for (an amount, a date...)
RANK_PENALTY = 0.5  # per rank of the passage the sentence comes from
SUPPORT_SHARE = 0.5  # a further quote holds at least this share of the best quote's question words
MIN_SIMILARITY = 2.0  # best sentence's calibrated similarity (deviations above a generic question's) below this:
# nothing in the documents is about the question


@dataclass(frozen=True)
class _Candidate:
    doc_id: str
    start: int
    end: int
    score: float
    similarity: float
    passage: Scored  # the best-ranked passage it came from (title, locator)
    parts: tuple[tuple[int, int, str], ...]  # the sentences, as retrieval returned them, that make up the quote

    @property
    def text(self) -> str:
        return " ".join(part[2] for part in self.parts)


def compose(question: str, resolved: str, passages: list[Scored], document_text, retriever) -> Answer:
    """The answer to `question` (searched as `resolved`) from ranked passages."""
    shown = tuple(to_passage(p) for p in passages)
    chosen = select_sentences(resolved, passages, retriever, focus=question if resolved != question else "")
    citations = verified_citations(chosen, document_text, retriever.locate)
    reason = abstain(resolved, citations, chosen, retriever) if citations else "no passage matches the question"
    if reason:
        return Answer(question, not_found_message(question), False, (), shown, resolved)
    text = " ".join(f"{_inline(c.quote)} [{c.n}]" for c in citations)
    return Answer(question, text, True, tuple(citations), shown, resolved)


def select_sentences(query: str, passages: list[Scored], retriever, focus: str = "") -> list[_Candidate]:
    """The best sentences of the passages for the query. With a `focus` (a follow-up's own words: "and what about
    North Carolina?"), sentences that mention it are preferred whenever there are any."""
    weights = _keyword_weights(query, retriever)
    focus_weights = _keyword_weights(focus, retriever)
    slot = asked_slot(query)
    candidates = []
    for rank, passage in enumerate(passages):
        for start, end, fused in passage.sentences:
            sentence = passage.text[start - passage.meta["start"] : end - passage.meta["start"]]
            if end - start < MIN_SENTENCE_CHARS:
                continue
            words = _coverage(weights, sentence) + _coverage(focus_weights, sentence)
            score = (fused + COVERAGE_WEIGHT * words - RANK_PENALTY * rank
                     + (SLOT_WEIGHT if slot and slot[1].search(sentence) else 0.0))
            candidates.append(_Candidate(passage.meta["doc_id"], start, end, score, passage.best_sentence, passage,
                                         ((start, end, sentence),)))
    if focus_weights:
        on_focus = [c for c in candidates if _coverage(focus_weights, c.text) > 0]
        candidates = on_focus or candidates
    if not candidates:
        return []
    candidates.sort(key=lambda c: -c.score)
    best = candidates[0].score
    support = focus_weights or weights
    chosen: list[_Candidate] = []
    seen_tokens: list[set] = []
    for c in candidates:
        if len(chosen) == MAX_SENTENCES or c.score < best - MARGIN:
            break
        if chosen and _coverage(support, c.text) < SUPPORT_SHARE * _coverage(support, chosen[0].text):
            continue  # a further quote must share the question's words about as well as the best one does
        if any(c.doc_id == o.doc_id and c.start < o.end and o.start < c.end for o in chosen):
            continue  # the same sentence reached through an overlapping chunk
        tokens = set(tokenize(c.text))
        if any(_jaccard(tokens, other) > 0.8 for other in seen_tokens):
            continue  # near-duplicate wording from another document
        chosen.append(c)
        seen_tokens.append(tokens)
    return _merge_neighbours([_with_list(c) for c in chosen])


_LIST_ITEM = re.compile(r"\s*(?:\((?:[a-z]{1,4}|\d{1,2}|[A-Z])\)|[-*•·]|\d{1,2}[.)]|[一二三四五六七八九十]+、)\s")
MAX_LIST_CHARS = 900


def _with_list(c: _Candidate) -> _Candidate:
    """A lead-in ending in a colon ("the term 'alternative assets' means:") says nothing without the list that
    follows it: the quote takes the list items after it, as far as they go (within MAX_LIST_CHARS)."""
    if not c.text.rstrip().endswith((":", "：")):
        return c
    base = c.passage.meta["start"]
    parts = list(c.parts)
    for start, end, _ in c.passage.sentences:
        if start < c.end or end - c.start > MAX_LIST_CHARS:
            continue
        text = c.passage.text[start - base : end - base]
        if start != _next_start(c.passage.text, base, parts[-1][1]) or not _LIST_ITEM.match(text):
            break
        parts.append((start, end, text))
    if len(parts) == len(c.parts):
        return c
    return _Candidate(c.doc_id, c.start, parts[-1][1], c.score, c.similarity, c.passage, tuple(parts))


def _next_start(text: str, base: int, offset: int) -> int:
    """The offset of the first non-space character at or after `offset`."""
    i = offset - base
    while i < len(text) and text[i].isspace():
        i += 1
    return base + i


def _merge_neighbours(chosen: list[_Candidate]) -> list[_Candidate]:
    """Sentences next to each other (or overlapping) in one document become one quote, kept at the better one's
    rank."""
    merged: list[_Candidate] = []
    for c in chosen:
        for i, m in enumerate(merged):
            if m.doc_id == c.doc_id and c.start <= m.end + 2 and m.start <= c.end + 2:  # adjacent or overlapping
                merged[i] = _Candidate(m.doc_id, min(m.start, c.start), max(m.end, c.end), m.score, m.similarity,
                                       m.passage, tuple(sorted(set(m.parts + c.parts))))
                break
        else:
            merged.append(c)
    return merged


def verified_citations(chosen: list[_Candidate], document_text, locate=None) -> list[Citation]:
    """Citations whose every sentence, as retrieved, is exactly the source document's text at its span; a quote
    that cannot be checked is dropped, never shown."""
    citations: list[Citation] = []
    texts: dict[str, str | None] = {}
    for c in chosen:
        if c.doc_id not in texts:
            texts[c.doc_id] = document_text(c.doc_id)
        source = texts[c.doc_id]
        if source is None or any(source[start:end] != text for start, end, text in c.parts):
            continue
        quote = source[c.start : c.end]
        if not quote.strip() or not _only_space_between(source, c.parts):
            continue
        meta = c.passage.meta
        locator = locate(c.doc_id, c.start, meta["locator"]) if locate else meta["locator"]
        citations.append(Citation(len(citations) + 1, c.doc_id, meta["path"], meta["title"], locator, quote,
                                  c.start, c.end, round(c.score, 4)))
    return citations


def _only_space_between(source: str, parts) -> bool:
    return all(not source[a[1] : b[0]].strip() for a, b in zip(parts, parts[1:]))


# --- abstention ---

# What a question asks for, and what an answer to it must contain. Checked on the chosen sentences.
_SLOTS = [
    ("vote tally",
     r"\bvotes?\b|\bvoted\b|\btally\b|投票|票数|表决",
     r"(?<![\d-])\d{1,3}\s*(?:-|–|to)\s*\d{1,3}(?![\d-])|\b\d+\s+(?:votes?|yeas?|nays?|ayes?|in favou?r|against)\b"
     r"|\d+\s*票"),
    ("percentage",
     r"\b(percent(age)?|what share|which share|proportion|how large a share)\b|比例|占比|百分之|百分比|份额|比重|佔比|比重",
     r"\d\s*(%|％|percent|per cent)|百分之"),
    ("amount",
     r"\bhow much\b|\bhow many dollars\b|\b(fee|fees|cost|price|penalty|fine|amount)\b|多少(钱|美元|资金|费用|亿|万)|"
     r"金额|费用|罚款|收取多少|多少.{0,6}(收益|费用|资产)",
     r"[$€£¥]\s?\d|\d[\d,.]*\s*(dollars|billion|million|trillion|美元|亿|万亿|万)|\d+(\.\d+)?\s*(%|percent)"),
    ("date",
     r"\bwhen\b|\bwhat date\b|\bwhich day\b|\bwhat day\b|\bin what year\b|\bwhich year\b|哪一天|哪天|何时|什么时候|日期|哪一年|哪年",
     r"\b(19|20)\d\d\b|\b(January|February|March|April|May|June|July|August|September|October|November|December|"
     r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?\s+\d|\d+\s*月\s*\d+\s*日|\d{4}\s*年"),
    ("duration",
     r"\bhow long\b|\bhow many (days|weeks|months|years)\b|\bwithin how\b|多少天|多久|几年|几个月|多长时间|期限|多少个月|多少年",
     r"\d+\s*(days?|weeks?|months?|years?|天|周|个月|年)|\b(one|two|three|four|five|six|seven|eight|nine|ten|"
     r"thirty|sixty|ninety)\s+(days?|weeks?|months?|years?)"),
    ("count",
     r"\bhow many\b|多少(个|位|名|家|次|票|人)|几(个|位|名|家|次)|多少",
     r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|hundred|thousand|million|billion)\b|"
     r"[一二三四五六七八九十百千万亿两]"),
]
_SLOTS = [(name, re.compile(q, re.I), re.compile(a, re.I)) for name, q, a in _SLOTS]


def asked_slot(question: str) -> tuple[str, re.Pattern] | None:
    """The kind of fact a question asks for (amount, date, ...), if it asks for a typed one. When several kinds
    are mentioned ("how many votes ... when the House took it up"), the one asked first wins."""
    found = [(m.start(), name, answer) for name, asks, answer in _SLOTS if (m := asks.search(question))]
    if not found:
        return None
    # A vote is asked for as "how many votes": the specific kind wins over the plain count.
    _, name, answer = min(found, key=lambda f: (f[1] != "vote tally", f[0]))
    if name == "count" and (noun := _counted_noun(question)):
        # "how many votes": a number of votes, not just any number (same-language evidence only can show it)
        answer = re.compile(rf"(\d[\d,.]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten)\b)\s+(?:\w+\s+){{0,2}}{noun}", re.I)
    return name, answer


_COUNT_NOUN = re.compile(r"\bhow many\s+(?:more\s+)?([a-z]+)", re.I)


def _counted_noun(question: str) -> str | None:
    m = _COUNT_NOUN.search(question)
    if not m:
        return None
    word = m.group(1).lower()
    return re.escape(word[:-1] if word.endswith("s") and len(word) > 3 else word)


def abstain(query: str, citations: list[Citation], chosen: list[_Candidate], retriever) -> str:
    """Why the chosen evidence does not answer the question, or "" when it does.

    Topical similarity alone cannot tell (unanswerable questions here are near misses on covered topics), so the
    evidence must (1) be about the question at all, (2) contain a fact of the kind asked for (an amount, a date,
    a count...), and (3) the question's names must be ones the indexed documents mention, in either script.
    """
    best_similarity = max(c.similarity for c in chosen)
    if best_similarity < MIN_SIMILARITY:
        return "the closest passages are not about the question"
    slot = asked_slot(query)
    if slot and not any(slot[1].search(c.quote) for c in citations):
        return f"no {slot[0]} in the passages that match the question"
    unknown = unknown_names(query, retriever)
    if unknown:
        return f"the documents never mention {', '.join(unknown)}"
    return ""


_COMMON_CAPS = frozenset(
    "what which who whom whose when where why how is are was were does do did can could should would will "
    "according under per in on at by for of the a an and or to from as if is it its this that these those "
    "please tell list name give describe explain chinese english american".split()
)


def unknown_names(query: str, retriever) -> list[str]:
    """Names in the question (capitalized words after the first; Chinese proper nouns) that no indexed document
    mentions, neither as written nor, via the multilingual model, rendered in the other script."""
    from .lexicon import TRANSLATION_THRESHOLD, extract_names, word_embedder

    names = []
    # Latin names only: Chinese part-of-speech tags call too many common words names (白宫, 顾问) to judge by them.
    for name in sorted(n for n in extract_names(query) if n.isascii()):
        first_word = query.lstrip().startswith(name)
        words = [w for w in re.split(r"[ -]", name) if w.lower() not in _COMMON_CAPS]
        if first_word or not words:
            continue
        tokens = [t for w in words for t in tokenize(w)]
        if not tokens or all(retriever.keywords.known(t) for t in tokens):
            continue
        if retriever.lexicon is not None:
            vector = word_embedder(retriever.embedder)([name])[0]
            if retriever.lexicon.closest_name(vector)[1] >= TRANSLATION_THRESHOLD:
                continue
        names.append(name)
    return names


# --- helpers ---


def _keyword_weights(query: str, retriever) -> dict[str, float]:
    """Question tokens, with their renderings in the other language, weighted by rarity in the index (rarer words
    say more about what is asked)."""
    if not query:
        return {}
    tokens = set(tokenize(retriever.keyword_query(query)))
    n = max(len(retriever.keywords.ids), 1)
    return {t: math.log(1 + n / (1 + retriever.keywords.document_frequency(t))) for t in tokens}


def _coverage(weights: dict[str, float], sentence: str) -> float:
    if not weights:
        return 0.0
    present = set(tokenize(sentence))
    return sum(w for t, w in weights.items() if t in present) / sum(weights.values())


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _inline(quote: str) -> str:
    return re.sub(r"\s*\n\s*", " ", quote.strip())


def not_found_message(question: str) -> str:
    if re.search(r"[\u4e00-\u9fff]", question):
        return "已索引的文档没有回答这个问题。下面列出的是最接近的段落，仅供参考，它们并不回答该问题。"
    return ("The indexed documents do not answer this question. The nearest passages are listed below for "
            "reference; they do not answer it.")
