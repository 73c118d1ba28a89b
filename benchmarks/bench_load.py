"""Load: concurrent HTTP clients asking mixed Chinese and English questions of a real `assistant serve` while syncs of
edited documents run, every answer checked.

    python -m benchmarks.bench_load [--clients 20] [--seconds 60] [--quiet 15] [--embed-model use+e5]
                                    [--out docs/robustness.md]

On a temporary copy of the shipped corpus, `assistant serve` runs as a subprocess on a free loopback port (it builds
the index first). Each client (a thread with its own HTTP connection) asks the questions of eval/qa-dev.jsonl and
eval/qa-extra.jsonl in its own seeded order, back to back. First a quiet phase (no sync) gives the baseline
latency; then, for --seconds, syncs run one after another through POST /api/index, each after editing documents in
the corpus copy: a paragraph inserted near the top of two documents (every later span moves) and a new bulletin
(new sentences to embed) replacing the previous one.

Every response is checked: HTTP 200; every citation's quote equals the cited document's text at [start:end] in a
version of that document the server has served (fetched through GET /api/documents/{id}/text at the start and
after every sync, and again on a mismatch); a question whose answer cited its expected document when asked alone,
before the load, still cites it (unless, asked alone again after the load, it no longer does either: then the edits
changed its answer, not the load; such answers are counted apart). Reported: requests, throughput, p50/p95/max latency in each phase, the longest any
request took while a sync ran against the longest sync, and whether any request was held for a whole sync.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
QUESTION_FILES = [REPO / "eval" / "qa-dev.jsonl", REPO / "eval" / "qa-extra.jsonl"]
TOKEN = "load-test-admin-token"
EDITED = ["us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md", "marsbit_2025-08-07_crypto_401k_zh.txt",
          "us_wh_factsheet_2025-07-18_genius_act.md", "us_fhfa_order_2025-06-25_crypto_mortgage_excerpt.md"]
MARK_BEGIN, MARK_END = "<!-- bench_load:begin -->", "<!-- bench_load:end -->"


def questions() -> list[dict]:
    items = []
    for path in QUESTION_FILES:
        items += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return items


@dataclass
class Outcome:
    started: float
    ended: float
    status: int
    lang: str
    problems: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)  # answers the corpus edits changed (not the load)

    @property
    def latency(self) -> float:
        return self.ended - self.started


class Texts:
    """Every version of every document's text the server has served: a citation is verified against the one it
    was made from, whichever sync that was."""

    def __init__(self, http: httpx.Client):
        self._http = http
        self._versions: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def fetch(self, doc_id: str) -> None:
        response = self._http.get(f"/api/documents/{doc_id}/text")
        if response.status_code == 200:
            with self._lock:
                self._versions.setdefault(doc_id, set()).add(response.json()["text"])

    def fetch_all(self) -> None:
        for doc in self._http.get("/api/documents").json():
            self.fetch(doc["doc_id"])

    def quotes(self, doc_id: str, start: int, end: int, quote: str) -> bool:
        for attempt in range(2):
            with self._lock:
                if any(text[start:end] == quote for text in self._versions.get(doc_id, ())):
                    return True
            if attempt == 0:
                self.fetch(doc_id)
        return False


def check(answer: dict, item: dict, texts: Texts, must_cite: bool) -> list[str]:
    problems = []
    if answer["grounded"] and not answer["citations"]:
        problems.append("grounded answer without citations")
    for c in answer["citations"]:
        if not texts.quotes(c["doc_id"], c["start"], c["end"], c["quote"]):
            problems.append(f"unverified citation {c['doc_id']}[{c['start']}:{c['end']}]")
    if must_cite and not any(c["doc_id"] == item["doc"] for c in answer["citations"] if answer["grounded"]):
        problems.append(f"{item['id']}: no longer cites {item['doc']}")
    return problems


class LoadRun:
    def __init__(self, root: Path, embed_model: str, seed: int = 7, documents: list[str] | None = None):
        self.root = root
        self.embed_model = embed_model
        self.rng = random.Random(seed)
        self.corpus = root / "corpus"
        self.documents = documents  # a part of the corpus (None: all of it), and the questions about it
        self.items = [q for q in questions() if documents is None or q.get("doc") in documents or not q.get("doc")]
        self.expected: set[str] = set()  # ids of questions that cite their document when asked alone
        self.proc: subprocess.Popen | None = None
        self.syncs: list[tuple[float, float, dict]] = []
        self.edits = 0

    # --- the server

    def start(self, timeout: float = 900) -> "LoadRun":
        shutil.copytree(REPO / "corpus", self.corpus, ignore=lambda folder, names: [
            n for n in names if n == "README.md" or (self.documents is not None and n not in self.documents)])
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(self.corpus), "ASSISTANT_INDEX_DIR": str(self.root / "index"),
               "ASSISTANT_EMBED_MODEL": self.embed_model, "ASSISTANT_ADMIN_TOKEN": TOKEN, "ASSISTANT_CHROMA_URL": ""}
        self.log = open(self.root / "serve.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`assistant serve` did not come up: {(self.root / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.5)
        self.http = httpx.Client(base_url=self.url, timeout=120)
        self.texts = Texts(self.http)
        self.texts.fetch_all()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    # --- before the load: which questions cite their document when asked alone

    def baseline(self, items: list[dict] | None = None) -> None:
        for item in items or self.items:
            if not item.get("answerable") or not item.get("doc"):
                continue
            answer = self.http.post("/api/ask", json={"question": item["question"]}).json()
            if answer.get("grounded") and any(c["doc_id"] == item["doc"] for c in answer["citations"]):
                self.expected.add(item["id"])

    # --- the load

    def edit(self) -> None:
        """Edits for the next sync: a paragraph inserted near the top of two documents, and a new bulletin."""
        self.edits += 1
        n = self.edits
        for name in self.rng.sample(EDITED, 2):
            path = self.corpus / name
            parts = path.read_text().split("\n\n")
            note = f"* * * {n} * * *"  # moves every later span, says nothing a question could match
            path.write_text("\n\n".join(parts[:2] + [note] + parts[2:]))
        for old in self.corpus.glob("bulletin_*.md"):
            old.unlink()
        words = ["ledger", "harbor", "quartz", "meadow", "cobalt", "tundra", "saffron", "lantern", "orchid", "ember"]
        sentences = [f"Bulletin {n} item {i}: the {self.rng.choice(words)} committee reviewed "
                     f"{self.rng.randrange(10, 999)} {self.rng.choice(words)} filings on day {i}." for i in range(40)]
        (self.corpus / f"bulletin_{n:03d}.md").write_text(f"# Load bulletin {n}\n\n" + "\n\n".join(
            " ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)) + "\n")

    def _syncer(self, stop_at: float, gap: float) -> None:
        admin = httpx.Client(base_url=self.url, timeout=600, headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            while time.monotonic() < stop_at:
                self.edit()
                started = time.monotonic()
                response = admin.post("/api/index", json={})
                ended = time.monotonic()
                report = response.json() if response.status_code == 200 else {"error": response.text[:300]}
                self.syncs.append((started, ended, report))
                self.texts.fetch_all()  # the versions this sync made, for checking later answers
                time.sleep(gap)
        finally:
            admin.close()

    def _client(self, index: int, stop_at: float, out: list[Outcome]) -> None:
        order = list(self.items)
        random.Random(index).shuffle(order)
        http = httpx.Client(base_url=self.url, timeout=120)
        try:
            i = 0
            while time.monotonic() < stop_at:
                item = order[i % len(order)]
                i += 1
                started = time.monotonic()
                try:
                    response = http.post("/api/ask", json={"question": item["question"]})
                except httpx.HTTPError as exc:
                    out.append(Outcome(started, time.monotonic(), 0, item["lang"], [f"{type(exc).__name__}"]))
                    continue
                ended = time.monotonic()
                outcome = Outcome(started, ended, response.status_code, item["lang"])
                if response.status_code != 200:
                    outcome.problems.append(f"HTTP {response.status_code}: {response.text[:200]}")
                else:
                    outcome.problems += check(response.json(), item, self.texts, item["id"] in self.expected)
                out.append(outcome)
        finally:
            http.close()

    def run(self, clients: int, seconds: float, syncing: bool, gap: float = 1.0) -> tuple[list[Outcome], float]:
        """`clients` clients for `seconds` (with syncs back to back when `syncing`); their outcomes and the phase's
        start."""
        outcomes: list[Outcome] = []
        start = time.monotonic()
        stop_at = start + seconds
        threads = [threading.Thread(target=self._client, args=(i, stop_at, outcomes)) for i in range(clients)]
        if syncing:
            threads.append(threading.Thread(target=self._syncer, args=(stop_at, gap)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.recheck(outcomes)
        return outcomes, start

    def recheck(self, outcomes: list[Outcome]) -> None:
        """A question that stopped citing its document during the load is asked again alone, once the load is over:
        if it does not cite it then either, the edits changed its answer, not the load."""
        alone: dict[str, bool] = {}
        by_id = {item["id"]: item for item in self.items}
        for outcome in outcomes:
            for problem in list(outcome.problems):
                qid, _, rest = problem.partition(": ")
                if not rest.startswith("no longer cites") or qid not in by_id:
                    continue
                if qid not in alone:
                    item = by_id[qid]
                    answer = self.http.post("/api/ask", json={"question": item["question"]}).json()
                    alone[qid] = answer["grounded"] and any(c["doc_id"] == item["doc"] for c in answer["citations"])
                if not alone[qid]:
                    outcome.problems.remove(problem)
                    outcome.edited.append(problem)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarize(outcomes: list[Outcome], syncs: list[tuple[float, float, dict]], seconds: float) -> dict:
    during = [o for o in outcomes if any(o.started < end and o.ended > start for start, end, _ in syncs)]
    spanning = [o for o in outcomes if any(o.started <= start and o.ended >= end for start, end, _ in syncs)]
    latencies = [o.latency for o in outcomes]
    return {
        "requests": len(outcomes),
        "zh": sum(o.lang == "zh" for o in outcomes),
        "en": sum(o.lang != "zh" for o in outcomes),
        "throughput_per_s": len(outcomes) / seconds,
        "p50_s": percentile(latencies, 0.5),
        "p95_s": percentile(latencies, 0.95),
        "max_s": max(latencies, default=float("nan")),
        "errors": sum(o.status != 200 for o in outcomes),
        "problems": [p for o in outcomes for p in o.problems],
        "changed_by_edits": sorted({p for o in outcomes for p in o.edited}),
        "syncs": len(syncs),
        "sync_errors": sum("error" in report for _, _, report in syncs),
        "longest_sync_s": max((end - start for start, end, _ in syncs), default=0.0),
        "during_sync": len(during),
        "longest_during_sync_s": max((o.latency for o in during), default=0.0),
        "p95_during_sync_s": percentile([o.latency for o in during], 0.95),
        "held_for_a_whole_sync": len(spanning),
    }


def markdown(quiet: dict, load: dict, clients: int, args, command: str) -> str:
    def row(name, s, seconds):
        return (f"| {name} | {clients} | {seconds:.0f} s | {s['requests']} ({s['zh']} zh, {s['en']} en) | "
                f"{s['throughput_per_s']:.1f}/s | {s['p50_s']:.2f} s | {s['p95_s']:.2f} s | {s['max_s']:.2f} s | "
                f"{s['errors']} | {len(s['problems'])} |")

    lines = [
        MARK_BEGIN,
        f"Measured {dt.date.today()} on {platform.machine()}, {os.cpu_count()} cores (shared), model "
        f"`{args.embed_model}`, with `{command}`.",
        "",
        "| phase | clients | length | answers checked | throughput | p50 | p95 | max | errors | wrong or unverified |",
        "|---|---|---|---|---|---|---|---|---|---|",
        row("quiet (no sync)", quiet, args.quiet),
        row("syncs back to back", load, args.seconds),
        "",
        f"During the second phase {load['syncs']} syncs ran ({load['sync_errors']} failed), each after two "
        f"documents gained a paragraph near the top (every later span moved) and a new 40-sentence bulletin replaced "
        f"the last; the longest took {load['longest_sync_s']:.1f} s. {load['during_sync']} requests overlapped a "
        f"sync: p95 {load['p95_during_sync_s']:.2f} s, longest {load['longest_during_sync_s']:.2f} s; "
        f"{load['held_for_a_whole_sync']} were held for a whole sync. Answers the edits themselves changed (the "
        f"question, asked alone after the load, no longer cites its document either): "
        f"{len(load['changed_by_edits'])}.",
        MARK_END,
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Put a section (its first and last lines are its begin and end marks) in place of its previous version in a
    Markdown file, or at the end."""
    begin, end = section.split("\n", 1)[0], section.rsplit("\n", 1)[-1]
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60, help="length of the phase with syncs")
    parser.add_argument("--quiet", type=float, default=15, help="length of the phase without syncs")
    parser.add_argument("--embed-model", default=os.environ.get("ASSISTANT_EMBED_MODEL") or None)
    parser.add_argument("--out", type=Path, help="write the table into this Markdown file (its load section)")
    args = parser.parse_args(argv)
    if args.embed_model is None:
        from assistant.settings import default_embed_model

        args.embed_model = default_embed_model()
    command = "python -m benchmarks.bench_load " + shlex.join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        run = LoadRun(Path(tmp), args.embed_model)
        print(f"starting `assistant serve` ({args.embed_model}) and building the index ...", flush=True)
        run.start()
        try:
            run.baseline()
            print(f"{len(run.expected)} questions cite their document when asked alone", flush=True)
            quiet_out, _ = run.run(args.clients, args.quiet, syncing=False)
            quiet = summarize(quiet_out, [], args.quiet)
            load_out, _ = run.run(args.clients, args.seconds, syncing=True)
            load = summarize(load_out, run.syncs, args.seconds)
        finally:
            run.stop()
    section = markdown(quiet, load, args.clients, args, command)
    print(section)
    for problem in sorted(set(quiet["problems"] + load["problems"]))[:20]:
        print("problem:", problem)
    if args.out:
        write_section(args.out, section)
    ok = not (quiet["problems"] or load["problems"] or quiet["errors"] or load["errors"] or load["sync_errors"]
              or load["held_for_a_whole_sync"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
