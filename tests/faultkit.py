"""Fault injection shared by the tests and the benchmarks: the index's observable state compared with a fresh build,
SIGKILL of a sync at a random point of its CPU time, seeded random corpus edits, and a real `chroma run` server
that can be stopped and restarted on the same port.

Also a command-line entry (`python tests/faultkit.py verify ...`) run in a fresh process after each kill: Chroma's
embedded client keeps per-process state, so the index a killed process wrote is read by a process of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conftest import CORPUS, REPO, copy_corpus  # noqa: F401 (copy_corpus: part of the kit)

CHROMA = Path(sys.executable).with_name("chroma")
EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
CEA = "us_wh_cea_2025-08-12_retail_access_alternative_investments_summary.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"
SMALL = [EO, CEA, ZH, "us_dol_newsrelease_2025-05-28_rescinds_2022_crypto_guidance.md"]


# --- the index's observable state


def index_state(settings) -> dict[str, tuple]:
    """Chunk id -> (doc_id, start, end, text) as stored; the index's observable content."""
    from assistant.store import Store

    store = Store.open(settings)
    ids, texts, metas = store.all_chunks()
    return {i: (m["doc_id"], m["start"], m["end"], t) for i, t, m in zip(ids, texts, metas)}


def assert_spans_match_documents(settings) -> None:
    from assistant.store import Store

    store = Store.open(settings)
    texts = {}
    for id_, (doc_id, start, end, text) in index_state(settings).items():
        if doc_id not in texts:
            texts[doc_id] = store.document_text(doc_id)
        assert texts[doc_id][start:end] == text, id_
    # Every chunk's sentences are stored with spans inside the chunk, and those spans quote the document exactly.
    chunks = index_state(settings)
    metas, vectors = store.sentence_vectors(list(chunks))
    assert len(metas) >= len(chunks) and vectors.shape[0] == len(metas)
    for meta in metas:
        doc_id, start, end, _ = chunks[meta["chunk_id"]]
        assert start <= meta["start"] < meta["end"] <= end
        assert meta["text_hash"] == hashlib.sha1(texts[doc_id][meta["start"] : meta["end"]].encode()).hexdigest()


def full_state(settings) -> tuple:
    """Chunks and sentences (ids and spans) and document records: everything a fresh build would produce."""
    from assistant.store import Store

    store = Store.open(settings)
    chunks = index_state(settings)
    metas, _ = store.sentence_vectors(list(chunks))
    everything = store._sents.get(include=["metadatas"])  # also sentences whose chunk is gone
    sentences = sorted((i, m["start"], m["end"]) for i, m in zip(everything["ids"], everything["metadatas"]))
    docs = sorted((d, m["content_hash"]) for d, m in store.documents().items())
    return sorted(chunks.items()), sentences, docs, len(metas)


def observable(settings) -> dict:
    """Everything a fresh build determines, in comparable form: chunks (id, document, span, text, metadata) and
    their vectors, every sentence record (also those whose chunk is gone), every document record (but the time it
    was written), every stored piece of a document's text and the texts they make, and the keyword index's chunk
    ids and word counts."""
    from assistant.keywords import keyword_index
    from assistant.store import Store

    store = Store.open(settings)
    got = store._chunks.get(include=["documents", "metadatas", "embeddings"])
    chunks = {i: (t, m) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])}
    vectors = {i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])}
    sents = store._sents.get(include=["metadatas"])
    sentences = {i: m for i, m in zip(sents["ids"], sents["metadatas"])}
    docs = {d: {k: v for k, v in m.items() if k != "indexed_at"} for d, m in store.documents().items()}
    pieces = store._pieces.get(include=["documents"])  # every stored piece of a text, also those no record uses
    texts = {d: store.document_text(d) for d in docs}
    keywords = keyword_index(settings, store)
    return {"chunks": chunks, "vectors": vectors, "sentences": sentences, "documents": docs,
            "pieces": dict(zip(pieces["ids"], pieces["documents"])), "texts": texts,
            "keywords": {"ids": sorted(keywords.ids),
                         "df": {t: int(n) for t, n in zip(keywords.vocab, keywords.df) if n}}}


def differences(got: dict, want: dict) -> dict[str, str]:
    """What differs between two `observable` states, per part ({} when they are the same)."""
    out = {}
    for part in ("chunks", "sentences", "documents", "pieces", "texts"):
        a, b = got[part], want[part]
        missing, extra = sorted(set(b) - set(a)), sorted(set(a) - set(b))
        changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        if missing or extra or changed:
            out[part] = f"{len(missing)} missing {missing[:3]}, {len(extra)} extra {extra[:3]}, " \
                        f"{len(changed)} different {changed[:3]}"
    off = [i for i in set(got["vectors"]) & set(want["vectors"])
           if not np.allclose(got["vectors"][i], want["vectors"][i], atol=1e-4)]
    if off:
        out["vectors"] = f"{len(off)} chunk vectors differ, e.g. {off[:3]}"
    if got["keywords"] != want["keywords"]:
        out["keywords"] = "the keyword index differs"
    return out


# --- corpus edits


def variants(corpus: Path, n: int, first: int = 0) -> None:
    """n more documents derived from the corpus text, so a sync runs long enough to be killed part-way."""
    base = (CORPUS / EO).read_text()
    for i in range(first, first + n):
        # Every paragraph differs, so nothing is shared with other variants and every chunk is embedded.
        text = base.replace("\n\n", f"\n\nVariant {i}: ")
        (corpus / f"variant_{i:03d}.md").write_text(text)


def mutate(corpus: Path, rng: random.Random, round_: int) -> list[str]:
    """One round of seeded edits needing every kind of store write: a sentence inserted into a random paragraph of
    a random document (later chunks move), a new document (new chunks), and every other round a derived document
    deleted or renamed. Returns what was done, for the log."""
    done = []
    files = sorted(p for p in corpus.iterdir() if p.is_file())
    target = rng.choice(files)
    paragraphs = target.read_text().split("\n\n")
    at = rng.randrange(len(paragraphs))
    paragraphs[at] = f"Round {round_} adds note {rng.randrange(10**6)} on zebraquux. " + paragraphs[at]
    target.write_text("\n\n".join(paragraphs))
    done.append(f"edit {target.name}#{at}")
    base = rng.choice([p for p in sorted(CORPUS.iterdir()) if p.name != "README.md" and p.stat().st_size < 4000])
    added = corpus / f"derived_{round_:03d}_{base.name}"
    added.write_text(base.read_text().replace("\n\n", f"\n\nDerived {round_}: "))
    done.append(f"add {added.name}")
    derived = sorted(p for p in corpus.iterdir() if p.name.startswith("derived_") and p != added)
    if round_ % 2 and derived:
        victim = rng.choice(derived)
        if rng.random() < 0.5:
            victim.unlink()
            done.append(f"delete {victim.name}")
        else:
            victim.rename(corpus / f"renamed_{round_:03d}_{victim.name}")
            done.append(f"rename {victim.name}")
    return done


# --- killing a process at a random point of its run


def run_cpu(cmd, env, index_dir: Path, copy_from: Path | None) -> float:
    """CPU seconds an uninterrupted run of `cmd` takes on a copy of the index (or from scratch). Kills are timed in
    the victim's own CPU time, which other load on the machine does not stretch the way it stretches wall time."""
    if copy_from is not None:
        shutil.copytree(copy_from, index_dir)
    return timed_run(cmd, {**env, "ASSISTANT_INDEX_DIR": str(index_dir)})


def timed_run(cmd, env) -> float:
    """Run `cmd` to completion (it must succeed); its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"{cmd[-2:]} failed ({result.returncode}): {result.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def kill_at(cmd, env, target: float, watch: Path | None = None) -> bool:
    """Start `cmd` and SIGKILL it once it has used `target` CPU seconds (counted from its first write into the
    folder `watch`, when given); True when it was still running then."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = last_write(watch) if watch else None
    start = None if watch else 0.0
    try:
        while proc.poll() is None:
            cpu = cpu_seconds(proc.pid)
            if start is None and last_write(watch) != before:
                start = cpu
            if start is not None and cpu >= start + target:
                break
            time.sleep(0.01)
    except (OSError, IndexError):  # it exited between the poll and the read
        pass
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running


def last_write(folder: Path) -> int:
    """The latest modification time (ns) of any file in the folder: a store's data changes when it is written."""
    latest = 0
    for path in folder.rglob("*"):
        try:
            latest = max(latest, path.stat().st_mtime_ns)
        except OSError:  # removed meanwhile
            pass
    return latest


def observe(cmd, env, watch: Path) -> tuple[float, float, float]:
    """Run `cmd` to completion: its CPU seconds in all, and at its first and last write into `watch`."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, first, last = last_write(watch), None, None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            cpu = cpu_seconds(proc.pid)
        except (OSError, IndexError):
            continue
        if (now := last_write(watch)) != seen:
            seen, last = now, cpu
            first = cpu if first is None else first
        time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd[-2:]} failed: {proc.stderr.read()[-2000:]}")
    whole = usage.ru_utime + usage.ru_stime
    return whole, first if first is not None else 0.0, last if last is not None else whole


def kill_at_random(cmd, env, rng, low, high) -> bool:
    """kill_at a random CPU time between low and high seconds."""
    return kill_at(cmd, env, rng.uniform(low, high))


@dataclass
class KillSeries:
    """The outcome of `kill_series`: one line per kill, and the tallies."""

    seed: int
    rounds: list[dict] = field(default_factory=list)

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.rounds if not r["ok"]]

    def tally(self) -> dict:
        return {"kills": len(self.rounds),
                "during writes": sum(r["phase"] == "during writes" for r in self.rounds),
                "before writes": sum(r["phase"] == "before writes" for r in self.rounds),
                "after the switch": sum(r["phase"] == "after the switch" for r in self.rounds),
                "after it finished": sum(r["phase"] == "after it finished" for r in self.rounds),
                "index answered after the kill": sum(r["answered"] for r in self.rounds),
                "next sync equal to a fresh build": sum(r["ok"] for r in self.rounds)}


def kill_series(corpus: Path, index_dir: Path, work: Path, kills: int, seed: int, chroma_url: str = "",
                store_folder: Path | None = None, in_writes: float = 0.75, log=print) -> KillSeries:
    """`kills` rounds of: seeded edits of the corpus, `assistant index` SIGKILLed at a random point of its CPU time,
    then (in a fresh process) a check that the interrupted index answers a question, the next sync, and a
    comparison of the index with a fresh full build of the same corpus. The index must exist already.
    store_folder: where the store's files are (a Chroma server's data folder; default the embedded store's).
    in_writes: the share of kills timed from the run's first write into the store (the others: anywhere in it)."""
    rng = random.Random(seed)
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_INDEX_DIR": str(index_dir),
           "ASSISTANT_EMBED_MODEL": os.environ.get("ASSISTANT_EMBED_MODEL", "use"), "ASSISTANT_CHROMA_URL": chroma_url}
    cmd = [sys.executable, "-m", "assistant.cli", "index", "--json"]
    mutate(corpus, rng, 0)
    watch = store_folder or index_dir / "chroma"
    # A typical round's sync, uninterrupted: CPU seconds in all, and from its first write to its last into the store.
    whole, first, last = observe(cmd, env, watch)
    writing = max(last - first, 0.05)
    series = KillSeries(seed)
    last_sync_id = None  # the index's sync id after the previous round's verification
    log(f"kill series: seed {seed}, {kills} kills, {'server ' + chroma_url if chroma_url else 'embedded store'}; "
        f"an uninterrupted sync takes {whole:.1f} CPU s, writing the store from {first:.1f} to {last:.1f} s")
    for round_ in range(1, kills + 1):
        edits = mutate(corpus, rng, round_)
        # Most kills land while the store is being written (timed from the run's first write into it); the others
        # anywhere in the run.
        if rng.random() < in_writes:
            target, still_running = rng.uniform(0, 1.2 * writing), None
            where = f"{target:.2f} CPU s after its first write"
            still_running = kill_at(cmd, env, target, watch=watch)
        else:
            target = rng.uniform(0.2, 1.0) * whole
            where = f"{target:.2f} CPU s"
            still_running = kill_at(cmd, env, target)
        reference = work / f"reference-{round_}"
        result = verify_in_subprocess(corpus, index_dir, reference, chroma_url, env)
        shutil.rmtree(reference, ignore_errors=True)
        phase = ("after it finished" if not still_running
                 else "during writes" if result.get("dirty")
                 else "after the switch" if last_sync_id and result.get("sync_id") != last_sync_id
                 else "before writes")
        last_sync_id = result.pop("synced_id", None)
        row = {"round": round_, "killed_at": where, "phase": phase, "edits": edits, **result}
        series.rounds.append(row)
        log(json.dumps(row, ensure_ascii=False))
    return series


def verify_in_subprocess(corpus: Path, index_dir: Path, reference: Path, chroma_url: str, env: dict) -> dict:
    result = subprocess.run([sys.executable, str(Path(__file__)), "verify", str(corpus), str(index_dir),
                             str(reference), chroma_url], env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        return {"ok": False, "answered": False, "error": result.stderr[-2000:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def verify(corpus: Path, index_dir: Path, reference_dir: Path, chroma_url: str = "") -> dict:
    """In this process: the interrupted index opens and answers, the next sync completes, and the index then equals
    a fresh full build of the corpus (on an embedded store, with the same model)."""
    from assistant import indexer
    from assistant.api import Assistant
    from assistant.settings import Settings
    from assistant.store import Store

    settings = Settings(corpus_dir=corpus, index_dir=index_dir, chroma_url=chroma_url)
    manifest = Store.open(settings).manifest
    assistant = Assistant.open(settings)
    answered = bool(assistant.search("alternative assets in 401(k) plans", k=3))
    report = indexer.sync(settings, progress=False, embedder=assistant.embedder)
    reference = Settings(corpus_dir=corpus, index_dir=reference_dir, chroma_url="")
    indexer.sync(reference, progress=False, embedder=assistant.embedder)
    diff = differences(observable(settings), observable(reference))
    up_to_date = indexer.status(settings).up_to_date
    return {"ok": answered and not diff and up_to_date and not report.failed, "dirty": bool(manifest.get("dirty")),
            "sync_id": manifest.get("sync_id"), "synced_id": Store.open(settings).manifest.get("sync_id"),
            "answered": answered,
            "resynced": {"added": len(report.added), "updated": len(report.updated), "removed": len(report.removed)},
            "differences": diff}


# --- a real Chroma server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    """`chroma run` on a fixed loopback port over a data folder; stop() and start() again keep port and data."""

    def __init__(self, path: Path, port: int | None = None):
        self.path = path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "ChromaServer":
        self.proc = subprocess.Popen([str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError(f"the Chroma server did not start on port {self.port}")
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop it and wait until it has exited (it can take 2 s after SIGTERM) so the port is free again."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "verify":
        sys.path.insert(0, str(REPO))
        print(json.dumps(verify(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]),
                                sys.argv[5] if len(sys.argv) > 5 else "")))
    else:
        sys.exit("usage: faultkit.py verify CORPUS INDEX REFERENCE [CHROMA_URL]")
