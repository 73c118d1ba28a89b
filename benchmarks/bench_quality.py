"""Retrieval quality of our pipeline against two baselines built in the same run, scored by assistant.evaluation.

    python -m benchmarks.bench_quality [--qa FILE ...] [--out docs/quality.md] [-k 10]

Set-ups, all over the same Documents (assistant.documents.load, so every span points into the same text):
- ours: ``assistant.api.Assistant`` over an index built by ``assistant.indexer.sync`` into a temporary folder;
  scored on ``search`` and on ``ask`` (citations, abstention).
- llama-index default recipe: SentenceSplitter(chunk_size=1024, chunk_overlap=200) → VectorStoreIndex (in memory)
  with the same embedding model as ours → retriever top-k. Spans are the nodes' start_char_idx/end_char_idx.
- BM25 alone: bm25s over jieba-segmented Chinese and lowercased words (after NFKC and traditional→simplified),
  on our chunker's chunks (``--bm25-chunks splitter`` for the SentenceSplitter's).

Prints one table and writes it, with the command, the date and the machine, as Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import platform
import re
import shlex
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from assistant import documents  # noqa: E402
from assistant.chunking import chunk_document  # noqa: E402
from assistant.errors import AssistantError, DocumentError  # noqa: E402
from assistant.evaluation import evaluate, format_report, load_questions, locate  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.types import Document, Passage  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DEV = REPO.parent / "shared" / "eval" / "qa-dev.jsonl"
SPLITTER_SIZE, SPLITTER_OVERLAP = 1024, 200
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def default_question_files() -> list[Path]:
    dev = REPO / "eval" / "qa-dev.jsonl"
    files = [dev if dev.exists() else SHARED_DEV, REPO / "eval" / "qa-extra.jsonl"]
    return [f for f in files if f.exists()]


@dataclass
class SetUp:
    name: str
    description: str
    search: Callable | None = None
    ask: Callable | None = None
    document_text: Callable | None = None
    chunks: int = 0
    build_s: float = 0.0
    problem: str = ""  # why it was not scored
    notes: list[str] = field(default_factory=list)


# --- our pipeline ---


def build_ours(settings: Settings, docs: dict[str, Document]) -> SetUp:
    setup = SetUp("ours", "assistant.api.Assistant (hybrid search; extractive cited answers), index built by "
                  "assistant.indexer.sync")
    try:
        from assistant.api import Assistant
    except ImportError as exc:
        setup.problem = f"assistant.api is not importable yet ({exc}); only the baselines were scored"
        return setup
    from assistant.indexer import sync

    started = time.perf_counter()
    report = sync(settings, progress=False)
    assistant = Assistant.open(settings)
    setup.build_s = time.perf_counter() - started
    setup.chunks = report.chunks_total
    if report.failed:
        setup.notes.append("files the index refused: " + "; ".join(f"{f.path}: {f.error}" for f in report.failed))
    differing = [d for d, doc in docs.items() if assistant.document_text(d) != doc.text]
    if differing:
        setup.notes.append(f"Assistant.document_text differs from the loaded text for: {', '.join(differing)}")
    setup.search = lambda question, k: assistant.search(question, k=k)
    setup.ask = lambda question, k: assistant.ask(question, k=k)
    setup.document_text = assistant.document_text
    setup.description += f" ({settings.chunk_chars}-character chunks)"
    return setup


# --- llama-index default recipe ---


def build_llamaindex(settings: Settings, docs: dict[str, Document], embedder) -> SetUp:
    from llama_index.core import Settings as LISettings
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class AssistantEmbedding(BaseEmbedding):
        """Our embedder behind llama-index's interface (so both set-ups embed identically)."""

        _embedder: object = PrivateAttr()

        def __init__(self, embedder, **kwargs):
            super().__init__(model_name=embedder.name, **kwargs)
            self._embedder = embedder

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed_query(query).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed_passages([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._embedder.embed_passages(texts).tolist()

    setup = SetUp(
        "llama-index",
        f"llama-index default recipe: SentenceSplitter({SPLITTER_SIZE}, {SPLITTER_OVERLAP}) → VectorStoreIndex "
        f"(in memory) → retriever top-k; embeddings: {embedder.name}",
    )
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # llama-index prints "LLM is explicitly disabled" to stdout
        LISettings.llm = None
    embed_model = AssistantEmbedding(embedder, embed_batch_size=settings.embed_batch)
    LISettings.embed_model = embed_model
    nodes, repaired, lost = splitter_nodes(docs)
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    setup.build_s = time.perf_counter() - started
    setup.chunks = len(nodes)
    if repaired or lost:
        setup.notes.append(f"{repaired} node spans located by the harness (llama-index left start_char_idx empty), "
                           f"{lost} not locatable (never hit)")
    retrievers: dict[int, object] = {}

    def search(question: str, k: int) -> list[Passage]:
        if k not in retrievers:
            retrievers[k] = index.as_retriever(similarity_top_k=k)
        return [node_passage(hit.node, hit.score or 0.0, docs) for hit in retrievers[k].retrieve(question)]

    setup.search = search
    setup.document_text = lambda doc_id: docs[doc_id].text if doc_id in docs else None
    return setup


def splitter_nodes(docs: dict[str, Document]):
    """SentenceSplitter(1024, 200) nodes of our Documents' text, each with a span into that text."""
    from llama_index.core import Document as LIDocument
    from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(chunk_size=SPLITTER_SIZE, chunk_overlap=SPLITTER_OVERLAP)
    nodes = splitter.get_nodes_from_documents([LIDocument(text=d.text, id_=d.id) for d in docs.values()])
    repaired = lost = 0
    for node in nodes:
        if node.start_char_idx is None or node.end_char_idx is None:
            span = locate(node.get_content(), docs[node.ref_doc_id].text)
            if span:
                node.start_char_idx, node.end_char_idx = span
                repaired += 1
            else:
                lost += 1
    return nodes, repaired, lost


def node_passage(node, score: float, docs: dict[str, Document]) -> Passage:
    doc = docs[node.ref_doc_id]
    start = node.start_char_idx if node.start_char_idx is not None else -1
    end = node.end_char_idx if node.end_char_idx is not None else -1
    return Passage(doc.id, doc.path, doc.title, "", node.get_content(), start, end, float(score),
                   doc.date, doc.issuer, doc.language)


# --- BM25 alone ---


def bm25_tokens(text: str) -> list[str]:
    """jieba words for Chinese, lowercased words for everything else; after NFKC and traditional→simplified."""
    import jieba

    from assistant.textnorm import for_matching

    tokens = []
    for piece in jieba.lcut(for_matching(text).lower()):
        if _CJK.search(piece):
            tokens.append(piece.strip())
        else:
            tokens.extend(re.findall(r"\w+", piece))
    return [t for t in tokens if t]


def build_bm25(settings: Settings, docs: dict[str, Document], chunks_from: str) -> SetUp:
    import bm25s
    import jieba

    jieba.setLogLevel(logging.WARNING)
    started = time.perf_counter()
    if chunks_from == "splitter":
        nodes, _, _ = splitter_nodes(docs)
        passages = [node_passage(n, 0.0, docs) for n in nodes]
        which = f"SentenceSplitter({SPLITTER_SIZE}, {SPLITTER_OVERLAP}) chunks"
    else:
        passages = []
        for doc in docs.values():
            chunks, _ = chunk_document(doc, settings.chunk_chars, settings.chunk_overlap)
            passages += [Passage(doc.id, doc.path, doc.title, c.locator, c.text, c.start, c.end, 0.0, doc.date,
                                 doc.issuer, doc.language) for c in chunks]
        which = f"our chunker's chunks ({settings.chunk_chars} characters, overlap {settings.chunk_overlap} sentence)"
    index = bm25s.BM25()
    index.index([bm25_tokens(p.text) for p in passages], show_progress=False)
    setup = SetUp("BM25", f"BM25 alone (bm25s; jieba-segmented Chinese + lowercased words, NFKC, "
                  f"traditional→simplified; no stemming) on {which}")
    setup.build_s = time.perf_counter() - started
    setup.chunks = len(passages)

    def search(question: str, k: int) -> list[Passage]:
        tokens = bm25_tokens(question)
        if not tokens:
            return []
        found, scores = index.retrieve([tokens], k=min(k, len(passages)), show_progress=False)
        out = []
        for i, score in zip(found[0], scores[0]):
            if score > 0:  # no shared word: not a keyword match at all
                p = passages[int(i)]
                out.append(Passage(p.doc_id, p.path, p.title, p.locator, p.text, p.start, p.end, float(score),
                                   p.date, p.issuer, p.language))
        return out

    setup.search = search
    setup.document_text = lambda doc_id: docs[doc_id].text if doc_id in docs else None
    return setup


# --- report ---


def _f(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def _pct(value) -> str:
    return "—" if value is None else f"{value:.0%}"


def _cell(figures: dict) -> str:
    if not figures["targets"]:
        return "—"
    return " / ".join(_f(figures[key]) for key in ("recall_at_1", "recall_at_5", "recall_at_10", "mrr_at_10"))


def markdown(runs, question_sets, setups, meta: dict) -> str:
    lines = [
        "# Retrieval quality: our pipeline against two baselines",
        "",
        f"Generated {meta['date']} by `{meta['command']}` (from the repository root).",
        f"Machine: {meta['nproc']} CPUs (`nproc`), Python {meta['python']}, {meta['platform']}. "
        f"Embedding model: `{meta['embed_model']}` ({meta['embedder']}) for our pipeline and the llama-index recipe.",
        f"Corpus: {meta['documents']} documents in `{meta['corpus']}`. Searches ask for the top {meta['k']} passages.",
        "",
        "Scoring (`assistant/evaluation.py`, as `eval/README.md` defines it): a passage hits an evidence when it comes "
        "from the evidence's document and overlaps at least half of the evidence's span; two-document items are two "
        "targets, so recall@1 cannot reach 1.0 on a file that has them. Cells are recall@1 / recall@5 / recall@10 / "
        "MRR@10. Latency is the median of one query each, warm (after one untimed query).",
        "",
    ]
    for path, items in question_sets:
        answerable = [i for i in items if i.answerable]
        lines += [
            f"## `{_show(path)}`: {len(items)} questions ({len(answerable)} answerable, "
            f"{len(items) - len(answerable)} unanswerable)",
            "",
            "| set-up | chunks | all | English q | Chinese q | cross-lingual | median search ms |",
            "|---|---|---|---|---|---|---|",
        ]
        counts = None
        for setup in setups:
            result = runs.get((setup.name, path))
            if result is None:
                lines.append(f"| {setup.name} | — | not run: {setup.problem or 'failed'} | | | | |")
                continue
            counts = result
            lines.append(
                f"| {setup.name} | {setup.chunks} | {_cell(result['overall'])} | {_cell(result['by_lang']['en'])} | "
                f"{_cell(result['by_lang']['zh'])} | {_cell(result['cross_lingual'])} | "
                f"{result['median_latency_ms']['search']:.1f} |"
            )
        if counts:
            lines += ["", f"Targets: {counts['overall']['targets']} (English questions "
                          f"{counts['by_lang']['en']['targets']}, Chinese {counts['by_lang']['zh']['targets']}, "
                          f"cross-lingual {counts['cross_lingual']['targets']})."]
            if counts["unlocated"]:
                lines.append("Unlocated evidence (not scored): " + "; ".join(
                    f"{u['id']} in {u['doc']} ({u['reason']})" for u in counts["unlocated"]))
        lines.append("")
    ours = [(path, runs.get(("ours", path))) for path, _ in question_sets]
    if any(result for _, result in ours):
        lines += [
            "## Our pipeline's answers (`Assistant.ask`)",
            "",
            "| question file | citation hit: all / en / zh / cross-lingual | refused unanswerable | refused answerable "
            "| verified quotes | median ask ms |",
            "|---|---|---|---|---|---|",
        ]
        for path, r in ours:
            if r is None:
                continue
            cite = " / ".join(_f(x["citation_hit_rate"]) for x in
                              (r["overall"], r["by_lang"]["en"], r["by_lang"]["zh"], r["cross_lingual"]))
            a = r["abstention"]
            lines.append(
                f"| `{_show(path)}` | {cite} | {_pct(a['refused_unanswerable_rate'])} of {a['unanswerable']} | "
                f"{_pct(a['refused_answerable_rate'])} of {a['answerable']} | "
                f"{_pct(r['verified_citation_rate'])} of {r['citations']} | {_fmt_ms(r['median_latency_ms']['ask'])} |"
            )
        lines.append("")
    lines += ["## Set-ups", ""]
    for setup in setups:
        lines.append(f"- **{setup.name}**: {setup.description}."
                     + (f" Built in {setup.build_s:.1f} s." if setup.build_s else "")
                     + (f" Not run: {setup.problem}." if setup.problem else ""))
        lines += [f"  - {note}" for note in setup.notes]
    scored = [s for s in setups if s.chunks and not s.problem]
    if len({s.chunks for s in scored}) > 1:
        lines += ["", "Chunk counts differ, so recall@k is not equally hard for each set-up: the top "
                  f"{meta['k']} passages cover about "
                  + ", ".join(f"{min(1, meta['k'] / s.chunks):.0%} of {s.name}'s chunks" for s in scored) + "."]
    span_checks = []
    for (name, path), r in runs.items():
        if r["verified_passage_rate"] is not None and r["verified_passage_rate"] < 1:
            span_checks.append(f"{name} on `{_show(path)}`: {r['verified_passage_rate']:.0%}")
    lines += ["", "Passages whose text equals their document's text at their span: "
              + ("all of them, in every set-up." if not span_checks else "; ".join(span_checks) + ".")]
    return "\n".join(lines) + "\n"


def _fmt_ms(value) -> str:
    return "—" if value is None else f"{value:.1f}"


def _show(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# --- main ---


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--qa", action="append", type=Path, help="question file (repeatable); default: "
                        "eval/qa-dev.jsonl (else ../shared/eval/qa-dev.jsonl) and eval/qa-extra.jsonl")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "quality.md", help="Markdown file to write")
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus", help="corpus folder")
    parser.add_argument("-k", type=int, default=10, help="passages per search (default 10)")
    parser.add_argument("--setups", default="ours,llama-index,bm25", help="comma-separated subset to run")
    parser.add_argument("--bm25-chunks", choices=["ours", "splitter"], default="ours",
                        help="chunks BM25 runs on: our chunker's (default) or SentenceSplitter(1024, 200)'s")
    parser.add_argument("--report", action="store_true", help="also print each run's full report with its misses")
    args = parser.parse_args(argv)
    wanted = {s.strip().lower() for s in args.setups.split(",")}

    qa_files = args.qa or default_question_files()
    question_sets = [(path, load_questions(path)) for path in qa_files]
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        settings = Settings(corpus_dir=args.corpus.resolve(), index_dir=Path(tmp) / "index")
        docs: dict[str, Document] = {}
        for path in documents.discover(settings.corpus_dir):
            try:
                doc = documents.load(path, settings.corpus_dir, int(settings.max_file_mb * 1e6))
            except DocumentError as exc:
                print(f"skipped {exc}", file=sys.stderr)
                continue
            docs[doc.id] = doc
        if not docs:
            raise DocumentError(str(settings.corpus_dir), "no documents found")
        from assistant.embeddings import load_embedder

        embedder = load_embedder(settings.embed_model)
        failures = []
        builders = [
            ("ours", lambda: build_ours(settings, docs)),
            ("llama-index", lambda: build_llamaindex(settings, docs, embedder)),
            ("bm25", lambda: build_bm25(settings, docs, args.bm25_chunks)),
        ]
        setups: list[SetUp] = []
        runs: dict[tuple[str, Path], dict] = {}
        for key, build in builders:
            if key not in wanted:
                continue
            print(f"building {key}...", file=sys.stderr)
            try:
                setup = build()
            except Exception as exc:  # one broken set-up must not hide the others' figures; reported and exit 1
                failures.append(key)
                traceback.print_exc()
                setup = SetUp(key, key, problem=f"failed to build: {type(exc).__name__}: {exc}")
            setups.append(setup)
            if setup.problem:
                print(f"{key}: {setup.problem}", file=sys.stderr)
                continue
            for path, items in question_sets:
                try:
                    result = evaluate(setup.search, setup.ask, setup.document_text, items, k=args.k,
                                      doc_ids=list(docs))
                except Exception as exc:
                    failures.append(key)
                    traceback.print_exc()
                    setup.problem = f"failed on {_show(path)}: {type(exc).__name__}: {exc}"
                    break
                runs[(setup.name, path)] = result
                if args.report:
                    print(f"\n== {setup.name} on {_show(path)}\n{format_report(result)}\n")

    meta = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": "python -m benchmarks.bench_quality" + (" " + shlex.join(argv) if argv else ""),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "embed_model": settings.embed_model,
        "embedder": embedder.name,
        "documents": len(docs),
        "corpus": _show(settings.corpus_dir),
        "k": args.k,
    }
    text = markdown(runs, question_sets, setups, meta)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"written to {args.out}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
