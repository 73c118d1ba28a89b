"""Scale: indexing throughput, incremental sync, ask latency, quality, memory and cold start at 1k-20k chunks.

    python -m benchmarks.bench_scale [--plan "use:1000,5000,20000;use+e5:1000,5000"] [--out docs/scale]

For each model and size, on a slice of the scale corpus (benchmarks/scale_corpus.py: the shipped policy corpus plus
Python documentation and Chinese man pages, built offline and cached under .cache/), with the model loaded once:

1. ceiling: the model's raw throughput (``embed_passages`` in the indexer's batch size) on a random sample of the
   texts a full build embeds (unique chunk sentences + titles), scaled to all of them;
2. full build: ``indexer.sync(full=True)`` into a fresh index; chunks/s and its ratio to the ceiling;
3. incremental sync: one sentence of the executive order edited (and edited back), ``indexer.sync``; its time
   divided by the time to embed that document's texts alone (its unique sentences + title), measured just before;
   where the time goes, as in bench_index.py;
4. quality and ``ask`` latency embedded: the development set (eval/qa-dev.jsonl) scored in-process, every ``ask`` of
   it and of eval/qa-extra.jsonl timed;
5. against the server: ``assistant serve`` started as a subprocess on the same index, the same questions over
   ``POST /api/ask``; its peak resident memory (VmHWM) after answering them;
6. cold start: ``assistant ask QUESTION --json`` as a fresh process, wall time until it exits.

Prints the table and writes it to OUT.md (between markers, keeping the prose around them), OUT.json and OUT.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant import documents  # noqa: E402
from assistant.chunking import chunk_document  # noqa: E402
from assistant.errors import AssistantError  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from benchmarks.bench_index import (  # noqa: E402
    EDITED_DOC, EDITS, ROWS, THREAD_ENV, WARMUP_ZH, _code_version, corpus_texts, timed_sync,
)
from benchmarks.scale_corpus import CACHE, ScaleCorpusError, make_slice  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "eval" / "qa-dev.jsonl"
EXTRA = REPO / "eval" / "qa-extra.jsonl"
DEFAULT_PLAN = "use:1000,5000,20000;use+e5:1000,5000"
CEILING_SAMPLE = {"use": 6000}  # texts timed for the ceiling, a random sample (default 1500: e5 embeds ~40 texts/s)
TARGETS = {"build_ratio": 0.8, "edit_ratio": 1.5, "p95_ms_20k": 500, "serve_mb_20k": 2048, "recall_drop": 0.05}
MARK_START, MARK_END = "<!-- figures:start (written by benchmarks/bench_scale.py) -->", "<!-- figures:end -->"
COLD_QUESTION = "How long does the executive order give the Secretary of Labor to reexamine guidance?"


def parse_plan(plan: str) -> list[tuple[str, int]]:
    runs = []
    for part in plan.split(";"):
        spec, _, sizes = part.strip().partition(":")
        runs += [(spec.strip(), int(s)) for s in sizes.split(",") if s.strip()]
    return runs


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a p95 of 75 values is an observed value)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def document_texts(settings: Settings, rel: str) -> list[str]:
    """What a build embeds for one document: its chunks' unique sentences and its title."""
    doc = documents.load(settings.corpus_dir / rel, settings.corpus_dir, int(settings.max_file_mb * 1e6))
    unique: dict[str, str] = {}
    for chunk in chunk_document(doc, settings.chunk_chars, settings.chunk_overlap)[0]:
        for start, end in chunk.sentences:
            text = doc.text[start:end]
            unique.setdefault(hashlib.sha1(text.encode()).hexdigest(), text)
    return list(unique.values()) + [doc.title]


def _env(settings: Settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_CORPUS_DIR=str(settings.corpus_dir), ASSISTANT_INDEX_DIR=str(settings.index_dir),
               ASSISTANT_EMBED_MODEL=settings.embed_model, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False", GRADIO_ANALYTICS_ENABLED="False")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def bench_server(settings: Settings, questions: list[str]) -> dict:
    """Start ``assistant serve`` on the index, ask every question over HTTP, read its peak memory, stop it."""
    import httpx

    port = _free_port()
    log = tempfile.TemporaryFile()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
                            env=_env(settings), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssistantError("the server exited: " + log.read().decode(errors="replace")[-300:])
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - started > 600:
                raise AssistantError("the server did not answer /healthz within 10 minutes")
            time.sleep(0.2)
        ready_s = time.perf_counter() - started
        rss_ready = _kib(proc.pid, "VmRSS")
        with httpx.Client(base_url=url, timeout=120) as client:
            client.post("/api/ask", json={"question": questions[0]}).raise_for_status()  # warm-up, untimed
            times = []
            for question in questions:
                t0 = time.perf_counter()
                client.post("/api/ask", json={"question": question}).raise_for_status()
                times.append((time.perf_counter() - t0) * 1000)
        peak = _kib(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"ready_s": ready_s, "rss_ready_mb": rss_ready / 1024, "peak_mb": peak / 1024,
            "ask_ms": times, "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


def store_ceiling(folder: Path, spec: str, texts: list[str], vectors, records: int) -> dict:
    """Chroma's write path alone, as a build uses it (Store.add_chunks of sentence records, one call per indexer
    group of ~100 sentences), with the sample's own texts and vectors, into a scratch index; scaled to the records
    of a full build (its sentences and chunks). The dependency's floor: a build cannot write faster."""
    from assistant.store import Store

    store = Store.new_generation(Settings(corpus_dir=folder, index_dir=folder, embed_model=spec),
                                 {"embed_model": spec, "dimension": int(len(vectors[0]))})
    ids = [f"c{i // 6}/{i % 6}" for i in range(len(texts))]
    metas = [{"doc_id": f"d{i // 60}", "chunk_id": ids[i].split("/")[0], "start": i, "end": i + len(t),
              "text_hash": f"{i:040x}", "lang": "en", "language": "en", "date_int": 0} for i, t in enumerate(texts)]
    t0 = time.perf_counter()
    for i in range(0, len(texts), 100):
        store.add_chunks(ids[i:i + 100], vectors[i:i + 100], texts[i:i + 100], metas[i:i + 100], sentences=True)
    seconds = time.perf_counter() - t0
    del store
    gc.collect()
    shutil.rmtree(folder, ignore_errors=True)
    return {"sample": len(texts), "sample_s": seconds, "records_per_s": len(texts) / seconds,
            "records": records, "seconds": records * seconds / len(texts)}


def cold_ask(settings: Settings, runs: int = 2) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", COLD_QUESTION, "--json"],
                              env=_env(settings), capture_output=True, text=True, timeout=600)
        out.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise AssistantError("assistant ask failed: " + (done.stderr or done.stdout)[-300:])
    return out


def quality_and_latency(settings: Settings) -> dict:
    from assistant.api import Assistant
    from assistant.evaluation import evaluate, load_questions

    assistant = Assistant.open(settings)
    doc_ids = [d["doc_id"] for d in assistant.documents()]
    times: list[float] = []

    def ask(question, k):
        t0 = time.perf_counter()
        answer = assistant.ask(question, k=k)
        times.append((time.perf_counter() - t0) * 1000)
        return answer

    out = {}
    for name, path in (("dev", DEV), ("extra", EXTRA)):
        result = evaluate(lambda q, n: assistant.search(q, k=n), ask, assistant.document_text,
                          load_questions(path), k=10, doc_ids=doc_ids)
        times[:] = times[1:] if name == "dev" else times  # evaluate's untimed warm-up only precedes the first set
        out[name] = {"overall": result["overall"], "by_lang": result["by_lang"],
                     "cross_lingual": result["cross_lingual"], "abstention": result["abstention"],
                     "verified_citation_rate": result["verified_citation_rate"]}
    out["ask_ms"] = list(times)
    out["p50_ms"], out["p95_ms"] = percentile(times, 50), percentile(times, 95)
    del assistant
    gc.collect()
    return out


def bench_one(spec: str, size: int, embedder, work: Path, edits: int, cache: Path) -> dict:
    slice_dir = make_slice(size, cache)
    corpus_dir = work / "corpus"
    shutil.copytree(slice_dir, corpus_dir)  # a copy: the edits must not touch the cached slice
    settings = Settings(corpus_dir=corpus_dir, index_dir=work / "index", embed_model=spec)
    load_before = os.getloadavg()
    corpus = corpus_texts(settings)
    res: dict = {"model": spec, "size": size, "documents": corpus.documents, "chunks": corpus.chunks,
                 "sentences": corpus.sentences, "texts": len(corpus.texts), "load_before": load_before}

    print(f"[{spec} {size}] ceiling", file=sys.stderr, flush=True)
    cap = CEILING_SAMPLE.get(spec, 1500)
    sample = random.Random(size).sample(corpus.texts, min(cap, len(corpus.texts)))
    t0, c0 = time.perf_counter(), time.process_time()
    vectors = embedder.embed_passages(sample, batch_size=settings.embed_batch)
    sample_s, sample_cpu = time.perf_counter() - t0, time.process_time() - c0
    res["ceiling"] = {"sample": len(sample), "sample_s": sample_s, "texts_per_s": len(sample) / sample_s,
                      "seconds": len(corpus.texts) * sample_s / len(sample),
                      "cpu_seconds": len(corpus.texts) * sample_cpu / len(sample)}
    print(f"[{spec} {size}] store writes alone", file=sys.stderr, flush=True)
    res["store_ceiling"] = store_ceiling(work / "scratch", spec, sample, vectors, corpus.sentences + corpus.chunks)

    print(f"[{spec} {size}] full build", file=sys.stderr, flush=True)
    build = timed_sync(settings, embedder, full=True)
    res["build"] = {"seconds": build.seconds, "cpu_seconds": build.cpu, "rows": build.rows, "items": build.items,
                    "chunks_total": build.report.chunks_total}
    res["chunks"] = build.report.chunks_total
    res["ceiling"]["chunks_per_s"] = res["chunks"] / res["ceiling"]["seconds"]
    res["build"]["chunks_per_s"] = res["chunks"] / build.seconds
    res["build_ratio"] = res["ceiling"]["seconds"] / build.seconds
    res["build_ratio_cpu"] = res["ceiling"]["cpu_seconds"] / build.cpu

    print(f"[{spec} {size}] incremental syncs", file=sys.stderr, flush=True)
    edited = corpus_dir / EDITED_DOC
    doc_texts = document_texts(settings, EDITED_DOC)
    runs = []
    for i in range(edits):
        t0 = time.perf_counter()
        embedder.embed_passages(doc_texts, batch_size=settings.embed_batch)
        alone = time.perf_counter() - t0
        old, new = EDITS[i % len(EDITS)]
        edited.write_text(edited.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        run = timed_sync(settings, embedder, full=False)
        if run.report.updated != [EDITED_DOC]:
            raise AssertionError(f"the edit should update only {EDITED_DOC}: {run.report}")
        runs.append({"seconds": run.seconds, "doc_embed_s": alone, "ratio": run.seconds / alone, "rows": run.rows,
                     "items": run.items, "sentences_embedded": run.report.sentences_embedded})
    if edits % 2:  # leave the document as shipped, so the dev set's evidence is where it expects it
        edited.write_text(edited.read_text(encoding="utf-8").replace(*EDITS[1]), encoding="utf-8")
        timed_sync(settings, embedder, full=False)
    res["edit"] = {"runs": runs, "doc_texts": len(doc_texts)}

    print(f"[{spec} {size}] quality and ask latency (embedded)", file=sys.stderr, flush=True)
    res["embedded"] = quality_and_latency(settings)
    questions = [json.loads(line)["question"] for path in (DEV, EXTRA)
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"[{spec} {size}] server", file=sys.stderr, flush=True)
    res["server"] = bench_server(settings, questions)
    print(f"[{spec} {size}] cold start", file=sys.stderr, flush=True)
    res["cold_ask_s"] = cold_ask(settings)
    res["load_after"] = os.getloadavg()
    return res


# --- report ---


def edit_run(r: dict) -> dict:
    """The median one-edit sync (the lower of the two middle ones for an even count), as bench_index reports."""
    runs = sorted(r["edit"]["runs"], key=lambda x: x["seconds"])
    return runs[(len(runs) - 1) // 2]


def _f(value, digits=2):
    return "—" if value is None else f"{value:.{digits}f}"


def _mark(ok: bool) -> str:
    return " ✓" if ok else " ✗"


def table(results: list[dict]) -> list[str]:
    small = {r["model"]: r for r in sorted(results, key=lambda r: -r["size"])}  # smallest size last wins
    head = "| figure | " + " | ".join(f"`{r['model']}` {r['size'] // 1000}k" for r in results) + " |"
    rows = [head, "|---|" + "---|" * len(results)]

    def row(label, fn):
        rows.append(f"| {label} | " + " | ".join(fn(r) for r in results) + " |")

    row("documents / chunks / texts embedded", lambda r: f"{r['documents']} / {r['chunks']} / {r['texts']}")
    row("ceiling (raw model, sampled)", lambda r: f"{r['ceiling']['texts_per_s']:.0f} texts/s = "
        f"{r['ceiling']['chunks_per_s']:.1f} chunks/s")
    row("**full build**", lambda r: f"{r['build']['seconds']:.0f} s = **{r['build']['chunks_per_s']:.1f} chunks/s**")
    row("Chroma's writes alone (sampled, scaled to the build's records)",
        lambda r: f"{r['store_ceiling']['records_per_s']:.0f} records/s → {r['store_ceiling']['seconds']:.0f} s for "
                  f"{r['store_ceiling']['records']}" if "store_ceiling" in r else "—")
    row("build / (model + Chroma writes, done one after the other)",
        lambda r: f"{(r['ceiling']['seconds'] + r['store_ceiling']['seconds']) / r['build']['seconds']:.2f}"
        if "store_ceiling" in r else "—")
    row(f"**build / ceiling** (target ≥ {TARGETS['build_ratio']})",
        lambda r: f"**{r['build_ratio']:.2f}**{_mark(r['build_ratio'] >= TARGETS['build_ratio'])} "
                  f"(CPU time: {r['build_ratio_cpu']:.2f})")
    row("**one-sentence edit: sync** (median run)", lambda r: f"{edit_run(r)['seconds']:.2f} s")
    row("… embedding that document alone (just before it)",
        lambda r: f"{edit_run(r)['doc_embed_s']:.2f} s ({r['edit']['doc_texts']} texts)")
    row(f"**… ratio** (target ≤ {TARGETS['edit_ratio']})",
        lambda r: f"**{edit_run(r)['ratio']:.1f}**{_mark(edit_run(r)['ratio'] <= TARGETS['edit_ratio'])}")
    row("`ask` embedded p50 / **p95**",
        lambda r: f"{r['embedded']['p50_ms']:.0f} / **{r['embedded']['p95_ms']:.0f} ms**")
    row("`ask` via server p50 / **p95**",
        lambda r: f"{r['server']['p50_ms']:.0f} / **{r['server']['p95_ms']:.0f} ms**")
    row("dev recall@5 (Δ vs smallest size)", lambda r: f"{r['embedded']['dev']['overall']['recall_at_5']:.3f} "
        f"({r['embedded']['dev']['overall']['recall_at_5'] - small[r['model']]['embedded']['dev']['overall']['recall_at_5']:+.3f})")
    row("dev MRR@10 / citation hits", lambda r: f"{_f(r['embedded']['dev']['overall'].get('mrr_at_10'))} / "
        f"{_f(r['embedded']['dev']['overall']['citation_hit_rate'])}")
    row("extra recall@5 / refused unanswerable / refused answerable",
        lambda r: f"{_f(r['embedded']['extra']['overall']['recall_at_5'])} / "
                  f"{_f(r['embedded']['extra']['abstention']['refused_unanswerable_rate'])} / "
                  f"{_f(r['embedded']['extra']['abstention']['refused_answerable_rate'])}")
    row("**`serve` peak memory** (VmHWM)", lambda r: f"**{r['server']['peak_mb']:.0f} MB**")
    row("`serve` ready (process start → /healthz)", lambda r: f"{r['server']['ready_s']:.1f} s")
    row("cold `assistant ask` (process start → exit)",
        lambda r: " / ".join(f"{s:.1f}" for s in r["cold_ask_s"]) + " s")
    row("load average before / after", lambda r: f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}")
    return rows


def breakdown(results: list[dict], kind: str) -> list[str]:
    labels = dict(ROWS)
    rows = ["| part | " + " | ".join(f"`{r['model']}` {r['size'] // 1000}k" for r in results) + " |",
            "|---|" + "---|" * len(results)]
    pick = (lambda r: r["build"]) if kind == "build" else edit_run
    for key, label in ROWS:
        cells = []
        for r in results:
            run = pick(r)
            s = run["rows"].get(key, 0.0)
            cells.append(f"{s:.2f} ({100 * s / run['seconds']:.0f}%)")
        rows.append(f"| {labels[key]} | " + " | ".join(cells) + " |")
    rows.append("| **total** | " + " | ".join(f"**{pick(r)['seconds']:.2f}**" for r in results) + " |")
    return rows


def figures_markdown(results: list[dict], meta: dict) -> str:
    lines = [MARK_START, "",
             f"Generated {meta['date']} by `{meta['command']}` (what `make bench` runs). Machine: {meta['nproc']} "
             f"CPUs, load average {meta['load']} at the start (the machine is shared: the ratios, measured in the "
             f"same runs, matter more than the times), Python {meta['python']}. Code: {meta['code']}. "
             f"Thread settings: {meta['env']}.", ""]
    lines += table(results)
    lines += ["", "Where the time of a **full build** goes (seconds, share):", ""] + breakdown(results, "build")
    lines += ["", "Where the time of the **one-sentence edit** sync goes (the median run):", ""]
    lines += breakdown(results, "edit")
    lines += ["", "![scale figures](scale.png)", "", MARK_END]
    return "\n".join(lines)


def write_markdown(path: Path, figures: str) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if MARK_START in old and MARK_END in old:
        before, rest = old.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1]
        text = before + figures + after
    else:
        text = "# Scale: 1k to 20k chunks\n\n" + figures + "\n"
    path.write_text(text, encoding="utf-8")


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    models = list(dict.fromkeys(r["model"] for r in results))
    for model in models:
        rs = sorted((r for r in results if r["model"] == model), key=lambda r: r["chunks"])
        x = [r["chunks"] for r in rs]
        ax = axes[0][0]
        ax.plot(x, [r["build"]["chunks_per_s"] for r in rs], "o-", label=f"{model} build")
        ax.plot(x, [r["ceiling"]["chunks_per_s"] for r in rs], "o--", label=f"{model} ceiling")
        axes[0][1].plot(x, [edit_run(r)["ratio"] for r in rs], "o-", label=model)
        ax = axes[1][0]
        ax.plot(x, [r["embedded"]["p95_ms"] for r in rs], "o-", label=f"{model} embedded p95")
        ax.plot(x, [r["server"]["p95_ms"] for r in rs], "o--", label=f"{model} server p95")
        axes[1][1].plot(x, [r["server"]["peak_mb"] for r in rs], "o-", label=model)
    axes[0][1].axhline(TARGETS["edit_ratio"], color="grey", lw=0.8, ls=":", label="target")
    axes[1][0].axhline(TARGETS["p95_ms_20k"], color="grey", lw=0.8, ls=":", label="target (20k)")
    axes[1][1].axhline(TARGETS["serve_mb_20k"], color="grey", lw=0.8, ls=":", label="target (20k)")
    titles = [("indexing throughput (chunks/s)", "chunks/s"), ("one-edit sync ÷ embedding the document", "ratio"),
              ("ask latency p95 (ms)", "ms"), ("serve peak memory (MB)", "MB")]
    for ax, (title, unit) in zip(axes.flat, titles):
        ax.set_title(title)
        ax.set_xscale("log")
        ax.set_xlabel("chunks")
        ax.set_ylabel(unit)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_yscale("log")
    axes[0][1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", default=DEFAULT_PLAN, help="MODEL:SIZES[;MODEL:SIZES...] (sizes in chunks)")
    parser.add_argument("--edits", type=int, default=2, help="one-sentence edits timed at each size (median)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="scale corpus cache (git-ignored)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "scale",
                        help="writes OUT.md (figures between markers), OUT.json and OUT.png")
    parser.add_argument("--merge", action="store_true",
                        help="keep OUT.json's results for other model/size pairs (a run split across processes)")
    parser.add_argument("--report-only", action="store_true", help="rewrite OUT.md and OUT.png from OUT.json")
    args = parser.parse_args(argv)
    if args.report_only:
        saved = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
        write_all(saved["results"], saved["meta"], args.out)
        return 0
    from assistant import indexer
    from assistant.embeddings import load_embedder

    meta = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "command": "python -m benchmarks.bench_scale" + (" " + shlex.join(argv) if argv else ""),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load": "{:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg()),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "code": _code_version(),
        "env": ", ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ) or "none set",
        "plan": args.plan,
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-", ignore_cleanup_errors=True) as tmp:
        for spec in dict.fromkeys(spec for spec, _ in parse_plan(args.plan)):
            t0 = time.perf_counter()
            embedder = load_embedder(spec)
            embedder.embed_passages(["warm-up"])
            load_s = time.perf_counter() - t0
            # untimed: imports and jieba's dictionaries, so the first size does not pay them
            warm = Path(tmp) / f"warm-{spec}"
            (warm / "corpus").mkdir(parents=True)
            (warm / "corpus" / "zh.txt").write_text(WARMUP_ZH, encoding="utf-8")
            indexer.sync(Settings(corpus_dir=warm / "corpus", index_dir=warm / "index", embed_model=spec),
                         full=True, progress=False, embedder=embedder)
            for model, size in parse_plan(args.plan):
                if model != spec:
                    continue
                work = Path(tmp) / f"{spec}-{size}"
                work.mkdir()
                result = bench_one(spec, size, embedder, work, args.edits, args.cache)
                result["model_load_s"] = load_s
                results.append(result)
                shutil.rmtree(work, ignore_errors=True)
                # after each size: a long run stopped half-way keeps its figures
                write_all(results, meta, args.out, merge=args.merge)
    print(figures_markdown(results, meta))
    print(f"written to {args.out}.md, .json, .png", file=sys.stderr)
    return 0


def write_all(results: list[dict], meta: dict, out: Path, merge: bool = False) -> None:
    """Write OUT.md/.json/.png. ``merge``: keep the results OUT.json already holds for other (model, size) pairs
    (runs split across processes); the commands of all runs are listed."""
    meta = dict(meta)
    if merge and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
        mine = {(r["model"], r["size"]) for r in results}
        results = [r for r in old["results"] if (r["model"], r["size"]) not in mine] + results
        commands = old["meta"].get("commands", [old["meta"]["command"]])
        meta["commands"] = list(dict.fromkeys(commands + [meta["command"]]))
        meta["command"] = "; ".join(meta["commands"])
    order = ["use+e5", "use"]
    results = sorted(results, key=lambda r: (order.index(r["model"]) if r["model"] in order else 9, r["model"],
                                             r["size"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_markdown(out.with_suffix(".md"), figures_markdown(results, meta))
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "targets": TARGETS, "results": results},
                                                   indent=1, ensure_ascii=False, default=float), encoding="utf-8")
    plot(results, out.with_suffix(".png"))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except ScaleCorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
