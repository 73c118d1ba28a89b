"""Score retrieval, citations and abstention on a question file, the way ../shared/eval/README.md defines it.

Independent of how search works: ``evaluate`` takes plain callables, so the assistant and any baseline (a llama-index
recipe, BM25 alone) are scored by the same code.

- A *target* is one (document, evidence) pair of an answerable item; two-document items give two targets.
- Evidence is located in the document's own text: exactly, else after normalizing both sides (NFKC, runs of whitespace
  collapsed to one space) with the match mapped back to the document's offsets. Evidence that cannot be located (or
  whose document is unknown) is reported under ``unlocated`` and never counted as a hit or a miss.
- A passage (or citation) *hits* a target when it comes from the target's document and its [start, end) span overlaps
  at least half of the evidence span.
- recall@k: share of targets hit within the top k; MRR@10: mean of 1/rank of the first hit within 10 (else 0);
  citation hit rate: share of targets hit by a citation of the answer. Abstention is per item: the share of
  unanswerable items answered with ``grounded=False``, and of answerable ones.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import QueryError

CUTOFFS = (1, 5, 10)
MRR_CUTOFF = 10
LANGS = ("en", "zh")  # always reported, even when a file has no question in one of them


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    lang: str
    answerable: bool
    cross_lingual: bool = False
    type: str = ""
    answer: str = ""
    doc: str | None = None
    evidence: str | None = None
    doc2: str | None = None
    evidence2: str | None = None
    line: int = 0  # line number in the question file

    @property
    def evidences(self) -> tuple[tuple[str, str], ...]:
        """(document name, evidence) pairs to find; empty for unanswerable items."""
        if not self.answerable:
            return ()
        pairs = [(self.doc, self.evidence)]
        if self.doc2:
            pairs.append((self.doc2, self.evidence2))
        return tuple(pairs)


# --- loading question files ---


def load_questions(path) -> list[QAItem]:
    """Read a question file (one JSON object a line; blank lines skipped). Raises QueryError naming the file and
    line for anything malformed."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise QueryError(f"Question file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryError(f"Cannot read question file {path}: {exc}") from None
    items, seen = [], {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        item = _parse_item(line, f"{path}:{number}", number)
        if item.id in seen:
            raise QueryError(f"{path}:{number}: duplicate id '{item.id}' (first on line {seen[item.id]})")
        seen[item.id] = number
        items.append(item)
    if not items:
        raise QueryError(f"Question file {path} has no questions")
    return items


def _parse_item(line: str, where: str, number: int) -> QAItem:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise QueryError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise QueryError(f"{where}: expected a JSON object, got {type(obj).__name__}")

    def text(key: str, required: bool) -> str | None:
        value = obj.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise QueryError(f"{where}: '{key}' must be a non-empty string")
        return value

    def flag(key: str, default: bool) -> bool:
        value = obj.get(key, default)
        if not isinstance(value, bool):
            raise QueryError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value

    item_id = obj.get("id")
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not isinstance(item_id, str) or not item_id.strip():
        raise QueryError(f"{where}: 'id' must be a non-empty string")
    question, lang = text("question", True), text("lang", True).strip().lower()
    doc, evidence = text("doc", False), text("evidence", False)
    doc2, evidence2 = text("doc2", False), text("evidence2", False)
    answerable = flag("answerable", doc is not None)
    if answerable and (doc is None or evidence is None):
        raise QueryError(f"{where}: an answerable item needs 'doc' and 'evidence' (or set \"answerable\": false)")
    if (doc2 is None) != (evidence2 is None):
        raise QueryError(f"{where}: 'doc2' and 'evidence2' go together")
    return QAItem(
        id=item_id,
        question=question,
        lang=lang,
        answerable=answerable,
        cross_lingual=flag("cross_lingual", False),
        type=obj.get("type") or "",
        answer=obj.get("answer") or "",
        doc=doc,
        evidence=evidence,
        doc2=doc2,
        evidence2=evidence2,
        line=number,
    )


# --- locating evidence ---


def normalize_with_map(text: str) -> tuple[str, list[tuple[int, int]]]:
    """NFKC, runs of whitespace collapsed to one space; with, for each output character, the [start, end) span of
    the input characters it came from. A base character and its combining marks are normalized together."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        for ch in unicodedata.normalize("NFKC", text[i:j]):
            if ch.isspace():
                if out and out[-1] == " ":
                    spans[-1] = (spans[-1][0], j)
                    continue
                ch = " "
            out.append(ch)
            spans.append((i, j))
        i = j
    return "".join(out), spans


def locate(evidence: str, text: str) -> tuple[int, int] | None:
    """The evidence's [start, end) in text: exact first, else through normalization mapped back to text's offsets."""
    at = text.find(evidence)
    if at >= 0:
        return at, at + len(evidence)
    norm_evidence = normalize_with_map(evidence)[0].strip()
    if not norm_evidence:
        return None
    norm_text, spans = normalize_with_map(text)
    at = norm_text.find(norm_evidence)
    if at < 0:
        return None
    return spans[at][0], spans[at + len(norm_evidence) - 1][1]


@dataclass(frozen=True)
class Target:
    item: QAItem
    doc_id: str
    start: int
    end: int


def overlap(a_start: int, a_end: int, b_start: int, b_end: int) -> int:
    return max(0, min(a_end, b_end) - max(a_start, b_start))


def hits(span, target: Target) -> bool:
    """A passage or citation (anything with doc_id, start, end) hits a target when it is from the target's document
    and overlaps at least half of the evidence span."""
    if span.doc_id != target.doc_id:
        return False
    return 2 * overlap(span.start, span.end, target.start, target.end) >= target.end - target.start


def first_hit_rank(passages, target: Target, limit: int = MRR_CUTOFF) -> int | None:
    """1-based rank of the first passage within the limit that hits the target, else None."""
    for rank, passage in enumerate(passages[:limit], 1):
        if hits(passage, target):
            return rank
    return None


def _resolve_doc(name: str, document_text, doc_ids: list[str] | None) -> tuple[str | None, str]:
    """The doc_id a question file's document name refers to: the same id, or the one id ending with "/" + name."""
    if document_text(name) is not None:
        return name, ""
    candidates = [d for d in (doc_ids or ()) if d.endswith("/" + name)]
    if len(candidates) == 1:
        return candidates[0], ""
    if len(candidates) > 1:
        return None, f"document name matches several documents: {', '.join(sorted(candidates))}"
    return None, "document not in the index"


def locate_targets(items: Iterable[QAItem], document_text, doc_ids: list[str] | None = None):
    """(targets, unlocated): every evidence of the answerable items, located; or reported with the reason."""
    targets, unlocated = [], []
    for item in items:
        for doc, evidence in item.evidences:
            doc_id, reason = _resolve_doc(doc, document_text, doc_ids)
            span = None
            if doc_id is not None:
                span = locate(evidence, document_text(doc_id))
                reason = "" if span else "evidence not found in the document's text, even after normalizing"
            if span is None:
                unlocated.append({"id": item.id, "doc": doc, "evidence": evidence, "reason": reason})
            else:
                targets.append(Target(item, doc_id, *span))
    return targets, unlocated


# --- scoring ---


def evaluate(
    search: Callable,
    ask: Callable | None,
    document_text: Callable[[str], str | None],
    items: list[QAItem],
    k: int = 10,
    *,
    ask_k: int = 5,
    doc_ids: Iterable[str] | None = None,
    warmup: bool = True,
) -> dict:
    """Score ``search(question, k) -> list[Passage]`` and, when given, ``ask(question, ask_k) -> Answer`` on items.

    ``document_text(doc_id)`` returns a document's text (None when unknown); ``doc_ids`` (optional) lets a question
    file's bare file name match a doc_id in a subfolder. Without ``ask``, citation and abstention figures are None.
    Latencies are per call, after one untimed warm-up call of each function when ``warmup`` is set.
    """
    texts: dict[str, str | None] = {}

    def text_of(doc_id: str) -> str | None:
        if doc_id not in texts:
            texts[doc_id] = document_text(doc_id)
        return texts[doc_id]

    targets, unlocated = locate_targets(items, text_of, list(doc_ids) if doc_ids is not None else None)
    if warmup and items:
        search(items[0].question, k)
        if ask is not None:
            ask(items[0].question, ask_k)

    results: dict[str, dict] = {}
    search_ms, ask_ms = [], []
    passages_checked = passages_verified = 0
    for item in items:
        started = time.perf_counter()
        passages = list(search(item.question, k))
        search_ms.append((time.perf_counter() - started) * 1000)
        for p in passages[:MRR_CUTOFF]:
            source = text_of(p.doc_id)
            passages_checked += 1
            passages_verified += source is not None and source[p.start : p.end] == p.text
        answer = None
        if ask is not None:
            started = time.perf_counter()
            answer = ask(item.question, ask_k)
            ask_ms.append((time.perf_counter() - started) * 1000)
        results[item.id] = {"passages": passages, "answer": answer}

    ranks = {id(t): first_hit_rank(results[t.item.id]["passages"], t) for t in targets}
    cited = {}
    if ask is not None:
        for t in targets:
            cited[id(t)] = any(hits(c, t) for c in results[t.item.id]["answer"].citations)

    def figures(selected: list[QAItem]) -> dict:
        ids = {item.id for item in selected}
        chosen = [t for t in targets if t.item.id in ids]
        out = {"items": len(selected), "targets": len(chosen)}
        for cutoff in CUTOFFS:
            out[f"recall_at_{cutoff}"] = _share(
                [ranks[id(t)] is not None and ranks[id(t)] <= cutoff for t in chosen]
            )
        out[f"mrr_at_{MRR_CUTOFF}"] = _mean([1 / ranks[id(t)] if ranks[id(t)] else 0.0 for t in chosen])
        out["citation_hit_rate"] = _share([cited[id(t)] for t in chosen]) if ask is not None else None
        return out

    langs = sorted(set(LANGS) | {item.lang for item in items})
    abstention = {"refused_unanswerable_rate": None, "refused_answerable_rate": None,
                  "unanswerable": sum(not i.answerable for i in items), "answerable": sum(i.answerable for i in items)}
    citations_total = citations_verified = 0
    unverified = []
    if ask is not None:
        refused = {item.id: not results[item.id]["answer"].grounded for item in items}
        abstention["refused_unanswerable_rate"] = _share([refused[i.id] for i in items if not i.answerable])
        abstention["refused_answerable_rate"] = _share([refused[i.id] for i in items if i.answerable])
        for item in items:
            for c in results[item.id]["answer"].citations:
                citations_total += 1
                source = text_of(c.doc_id)
                if source is not None and source[c.start : c.end] == c.quote:
                    citations_verified += 1
                else:
                    unverified.append({"id": item.id, "doc_id": c.doc_id, "start": c.start, "end": c.end,
                                       "quote": c.quote[:200]})

    return {
        "n": len(items),
        "k": k,
        "overall": figures(items),
        "by_lang": {lang: figures([i for i in items if i.lang == lang]) for lang in langs},
        "cross_lingual": figures([i for i in items if i.cross_lingual]),
        "abstention": abstention,
        "verified_citation_rate": citations_verified / citations_total if citations_total else None,
        "citations": citations_total,
        "unverified_citations": unverified,
        "verified_passage_rate": passages_verified / passages_checked if passages_checked else None,
        "median_latency_ms": {
            "search": statistics.median(search_ms) if search_ms else None,
            "ask": statistics.median(ask_ms) if ask_ms else None,
        },
        "misses": _misses(items, targets, ranks, cited, results, ask is not None),
        "unlocated": unlocated,
    }


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _misses(items, targets, ranks, cited, results, asked: bool) -> list[dict]:
    by_item: dict[str, list[Target]] = {}
    for t in targets:
        by_item.setdefault(t.item.id, []).append(t)
    misses = []
    for item in items:
        passages, answer = results[item.id]["passages"], results[item.id]["answer"]
        missed, detail = [], []
        two = len(by_item.get(item.id, ())) > 1
        for t in by_item.get(item.id, ()):
            rank = ranks[id(t)]
            suffix = f" ({t.doc_id})" if two else ""
            missed += [f"r@{c}{suffix}" for c in CUTOFFS if rank is None or rank > c]
            if asked and not cited[id(t)]:
                missed.append(f"citation{suffix}")
            detail.append({"doc": t.doc_id, "evidence_span": [t.start, t.end], "rank": rank,
                           "cited": cited.get(id(t))})
        if asked and item.answerable and not answer.grounded:
            missed.append("refused an answerable question")
        if asked and not item.answerable and answer.grounded:
            missed.append("answered an unanswerable question")
        if not missed:
            continue
        top = passages[0] if passages else None
        misses.append({
            "id": item.id,
            "question": item.question,
            "lang": item.lang,
            "cross_lingual": item.cross_lingual,
            "missed": missed,
            "targets": detail,
            "top": None if top is None else {
                "doc_id": top.doc_id, "locator": top.locator, "start": top.start, "end": top.end,
                "text": _snippet(top.text),
            },
            "grounded": None if answer is None else answer.grounded,
        })
    return misses


def _snippet(text: str, limit: int = 90) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- report ---


def _fmt(value, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:.0%}" if percent else f"{value:.2f}"


def format_report(result: dict) -> str:
    """A readable table of the figures, abstention, citation checks, latency, then the misses and unlocated
    evidence."""
    rows = [("overall", result["overall"])]
    rows += [(lang, figures) for lang, figures in result["by_lang"].items()]
    rows.append(("cross-lingual", result["cross_lingual"]))
    header = f"{'':<14}{'targets':>8}{'r@1':>7}{'r@5':>7}{'r@10':>7}{'MRR@10':>8}{'cite-hit':>10}"
    lines = [f"{result['n']} questions, top {result['k']} passages searched", "", header]
    for name, f in rows:
        lines.append(
            f"{name:<14}{f['targets']:>8}{_fmt(f['recall_at_1']):>7}{_fmt(f['recall_at_5']):>7}"
            f"{_fmt(f['recall_at_10']):>7}{_fmt(f['mrr_at_10']):>8}{_fmt(f['citation_hit_rate']):>10}"
        )
    a = result["abstention"]
    lines += [
        "",
        f"abstention: refused {_fmt(a['refused_unanswerable_rate'], True)} of {a['unanswerable']} unanswerable, "
        f"{_fmt(a['refused_answerable_rate'], True)} of {a['answerable']} answerable",
        f"verified citations: {_fmt(result['verified_citation_rate'], True)} of {result['citations']}; "
        f"passages whose text matches their span: {_fmt(result['verified_passage_rate'], True)}",
        "median latency: search " + _ms(result["median_latency_ms"]["search"])
        + ", ask " + _ms(result["median_latency_ms"]["ask"]),
    ]
    for c in result["unverified_citations"]:
        lines.append(f"  UNVERIFIED citation in {c['id']}: {c['doc_id']} [{c['start']}:{c['end']}] {c['quote'][:60]!r}")
    if result["unlocated"]:
        lines += ["", f"unlocated evidence ({len(result['unlocated'])}, not scored):"]
        for u in result["unlocated"]:
            lines.append(f"  {u['id']}  {u['doc']}: {u['reason']}: {_snippet(u['evidence'], 70)!r}")
    if result["misses"]:
        lines += ["", f"misses ({len(result['misses'])} questions):"]
        for m in result["misses"]:
            lines.append(f"  {m['id']} [{m['lang']}{', cross-lingual' if m['cross_lingual'] else ''}] "
                         f"{_snippet(m['question'], 80)}")
            lines.append(f"      missed: {', '.join(m['missed'])}")
            for t in m["targets"]:
                lines.append(f"      target {t['doc']} [{t['evidence_span'][0]}:{t['evidence_span'][1]}]: "
                             f"rank {t['rank'] or '>10'}")
            if m["top"]:
                top = m["top"]
                lines.append(f"      ranked first: {top['doc_id']} {top['locator']} [{top['start']}:{top['end']}] "
                             f"{top['text']!r}")
    return "\n".join(lines)


def _ms(value) -> str:
    return "—" if value is None else f"{value:.1f} ms"
