"""Faults at length: many SIGKILLs of `assistant index` in a row (embedded store and a Chroma server) and syncs into
a full disk at random sizes, each checked against a fresh full build.

    python -m benchmarks.torture [--kills 50] [--server-kills 20] [--disk-cases 10] [--seed 1] [--out docs/robustness.md]

The same code as tests/test_faults.py (tests/faultkit.py), with more cases: every kill round edits the corpus
(seeded), kills the sync at a random point of its CPU time (three in four timed from its first write into the
store), then in a fresh process checks that the interrupted index answers a question, runs the next sync and
compares the whole index (chunk and sentence ids, spans and metadata, chunk vectors, document records, keyword
index) with a fresh build of the same corpus. Each disk case limits the files a sync may grow (RLIMIT_FSIZE, a
random headroom over the store's size): the sync either completes or fails with the one-line error, the previous
index answers, and the next sync equals a fresh build. A failure prints the seed and round to replay it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import faultkit  # noqa: E402

from benchmarks.bench_load import write_section  # noqa: E402

MARK_BEGIN, MARK_END = "<!-- torture:begin -->", "<!-- torture:end -->"
QUESTION = "How long does the executive order give the Secretary of Labor to reexamine guidance?"


def small_corpus(folder: Path) -> Path:
    corpus = faultkit.copy_corpus(folder, [faultkit.CEA, faultkit.SMALL[3], faultkit.ZH, faultkit.EO])
    zh = corpus / faultkit.ZH
    zh.write_text("\n".join(zh.read_text().split("\n")[:12]))
    return corpus


def build(corpus: Path, index: Path, chroma_url: str = "") -> None:
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_INDEX_DIR": str(index),
           "ASSISTANT_EMBED_MODEL": os.environ.get("ASSISTANT_EMBED_MODEL", "use"), "ASSISTANT_CHROMA_URL": chroma_url}
    faultkit.timed_run([sys.executable, "-m", "assistant.cli", "index"], env)


def kills(root: Path, n: int, seed: int, server: bool) -> dict:
    corpus = small_corpus(root / "corpus")
    chroma = faultkit.ChromaServer(root / "server").start() if server else None
    try:
        url = chroma.url if chroma else ""
        build(corpus, root / "index", url)
        series = faultkit.kill_series(corpus, root / "index", root, n, seed, chroma_url=url,
                                      store_folder=chroma.path if chroma else None)
    finally:
        if chroma:
            chroma.stop()
    for row in series.failures:
        print(f"FAILED: seed {seed} round {row['round']}: {json.dumps(row, ensure_ascii=False)}")
    return series.tally()


def disk_full(root: Path, cases: int, seed: int) -> dict:
    rng = random.Random(seed)
    corpus = small_corpus(root / "corpus")
    index = root / "index"
    build(corpus, index)
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_INDEX_DIR": str(index),
           "ASSISTANT_EMBED_MODEL": os.environ.get("ASSISTANT_EMBED_MODEL", "use"), "ASSISTANT_CHROMA_URL": ""}
    tally = {"cases": cases, "sync failed with the one-line error": 0, "sync completed (limit not reached)": 0,
             "unclear failure": 0, "previous index answered": 0, "next sync equal to a fresh build": 0}
    for case in range(1, cases + 1):
        faultkit.mutate(corpus, rng, case)
        for old in corpus.glob("variant_*.md"):  # one long new document per case, so the sync has much to write
            old.unlink()
        faultkit.variants(corpus, 1, first=case)
        headroom = rng.randrange(0, 2_000_000)
        limit = (index / "chroma" / "chroma.sqlite3").stat().st_size + headroom

        def full_disk():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        result = subprocess.run([sys.executable, "-m", "assistant.cli", "index"], env=env, preexec_fn=full_disk,
                                capture_output=True, text=True, timeout=600)
        if result.returncode == 0:
            tally["sync completed (limit not reached)"] += 1
        elif (result.returncode == 2 and "Traceback" not in result.stderr
              and "Cannot write to the index folder 'index'" in result.stderr and str(root) not in result.stderr):
            tally["sync failed with the one-line error"] += 1
        else:
            tally["unclear failure"] += 1
            print(f"FAILED: seed {seed} disk case {case}: {result.returncode} {result.stderr[-1500:]}")
        asked = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", "--json", QUESTION], env=env,
                               capture_output=True, text=True, timeout=600)
        answered = asked.returncode == 0 and json.loads(asked.stdout)["grounded"]
        tally["previous index answered"] += answered
        outcome = faultkit.verify_in_subprocess(corpus, index, root / f"reference-{case}", "", env)
        tally["next sync equal to a fresh build"] += outcome["ok"]
        print(json.dumps({"disk case": case, "headroom": headroom, "exit": result.returncode,
                          "error": result.stderr.strip().splitlines()[-1][:200] if result.returncode else "",
                          "answered": answered, "next sync ok": outcome["ok"],
                          "differences": outcome.get("differences")}, ensure_ascii=False), flush=True)
    return tally


def markdown(results: dict, command: str, minutes: float) -> str:
    lines = [MARK_BEGIN, f"Measured {dt.date.today()} on {platform.machine()}, {os.cpu_count()} cores (shared), "
             f"model `{os.environ.get('ASSISTANT_EMBED_MODEL', 'use')}`, {minutes:.0f} minutes, with `{command}`.", "",
             "| what was tried | cases | what held |", "|---|---|---|"]
    for name, tally in results.items():
        cases = tally.get("kills", tally.get("cases"))
        held = "; ".join(f"{k}: {v}" for k, v in tally.items() if k not in ("kills", "cases"))
        lines.append(f"| {name} | {cases} | {held} |")
    lines.append(MARK_END)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="kills against the embedded store")
    parser.add_argument("--server-kills", type=int, default=20, help="kills against a Chroma server")
    parser.add_argument("--disk-cases", type=int, default=10, help="syncs into a full disk")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the table into this Markdown file (its torture section)")
    args = parser.parse_args(argv)
    os.environ.setdefault("ASSISTANT_EMBED_MODEL", "use")
    command = "python -m benchmarks.torture " + shlex.join(argv if argv is not None else sys.argv[1:])
    started = time.monotonic()
    results = {}
    with tempfile.TemporaryDirectory(prefix="torture-") as tmp:
        root = Path(tmp)
        if args.kills:
            results["`kill -9` of a sync, embedded store"] = kills(root / "embedded", args.kills, args.seed, False)
        if args.server_kills:
            results["`kill -9` of a sync, Chroma server"] = kills(root / "server", args.server_kills,
                                                                  args.seed + 1, True)
        if args.disk_cases:
            results["sync into a full disk (RLIMIT_FSIZE, random headroom 0-2 MB)"] = disk_full(
                root / "disk", args.disk_cases, args.seed + 2)
    section = markdown(results, command, (time.monotonic() - started) / 60)
    print(section)
    if args.out:
        write_section(args.out, section)
    bad = any(t.get("next sync equal to a fresh build", 0) != t.get("kills", t.get("cases")) or t.get("unclear failure")
              for t in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
