"""Faults with real processes: `assistant index` SIGKILLed again and again at random points (embedded store and a
Chroma server), the Chroma server stopped and restarted under a running `assistant serve`, and a sync into a full
disk or a read-only index folder. After each, the index still answers and the next sync equals a fresh build.

The kill series are seeded (FAULT_SEED, printed) so a failure can be replayed; benchmarks/torture.py runs longer
series with the same code."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from assistant import indexer
from assistant.settings import Settings

from faultkit import CHROMA, SMALL, ZH, ChromaServer, copy_corpus, free_port, kill_series, mutate, variants, \
    verify_in_subprocess

SEED = int(os.environ.get("FAULT_SEED", "20261127"))
KILLS = int(os.environ.get("FAULT_KILLS", "2"))  # each store; benchmarks/torture.py runs 50
EN_Q = "How long does the executive order give the Secretary of Labor to reexamine guidance?"
CLI = [sys.executable, "-m", "assistant.cli"]


def _env(settings: Settings, **extra) -> dict:
    return {**os.environ, "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
            "ASSISTANT_INDEX_DIR": str(settings.index_dir), "ASSISTANT_EMBED_MODEL": "use",
            "ASSISTANT_CHROMA_URL": settings.chroma_url, **extra}


def _small_corpus(folder):
    """Three short documents, one of them Chinese: a fresh build of it (after every kill) stays quick."""
    corpus = copy_corpus(folder, [SMALL[1], SMALL[3], ZH])
    zh = corpus / ZH
    zh.write_text("\n".join(zh.read_text().split("\n")[:12]))
    return corpus


def _check_series(series) -> None:
    print(json.dumps(series.tally()))
    assert not series.failures, f"seed {series.seed}: {series.failures}"
    assert series.tally()["during writes"] >= 1, f"seed {series.seed}: no kill landed while the index was written"


# --- kill -9, many times in a row


def test_repeated_kills_on_the_embedded_store(tmp_path):
    corpus = _small_corpus(tmp_path / "corpus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="use")
    indexer.sync(settings, progress=False)  # this process never opens it again: each check runs in its own
    _check_series(kill_series(corpus, settings.index_dir, tmp_path, KILLS, SEED, in_writes=1.0))


@pytest.mark.skipif(not CHROMA.exists(), reason=f"no `chroma` command next to {sys.executable}")
def test_repeated_kills_on_a_chroma_server(tmp_path):
    server = ChromaServer(tmp_path / "server").start()
    try:
        corpus = _small_corpus(tmp_path / "corpus")
        settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="use",
                            chroma_url=server.url)
        indexer.sync(settings, progress=False)
        _check_series(kill_series(corpus, settings.index_dir, tmp_path, KILLS, SEED + 1, chroma_url=server.url,
                                  store_folder=server.path, in_writes=1.0))
    finally:
        server.stop()


# --- the Chroma server goes away under a running server, and comes back


def _wait(condition, timeout: float, step: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(step)
    return None


@pytest.mark.skipif(not CHROMA.exists(), reason=f"no `chroma` command next to {sys.executable}")
def test_chroma_server_restart_under_serve_gives_503_then_recovers(tmp_path):
    chroma = ChromaServer(tmp_path / "server").start()
    corpus = copy_corpus(tmp_path / "corpus", SMALL)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="use", chroma_url=chroma.url)
    indexer.sync(settings, progress=False)
    port = free_port()
    serve = subprocess.Popen(CLI + ["serve", "--port", str(port)], env=_env(settings, PYTHONUNBUFFERED="1"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        def up():
            try:
                return serve.poll() is not None or http.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        assert _wait(up, 120) and serve.poll() is None, serve.stderr.read() if serve.poll() is not None else ""
        assert http.post("/api/ask", json={"question": EN_Q}).json()["grounded"]

        chroma.stop()
        # Every kind of request fails at once with a JSON 503 that says why, for as long as the server is away
        # (the first ones find the old connections gone, later ones the manifest check failing).
        requests = [("post", "/api/ask", {"question": EN_Q}), ("post", "/api/search", {"query": "stablecoin"}),
                    ("get", "/api/documents", None), ("get", "/api/status", None)]
        for _ in range(2):
            for method, path, body in requests:
                started = time.monotonic()
                response = http.request(method, path, json=body)
                took = time.monotonic() - started
                assert response.status_code == 503, (path, response.status_code, response.text)
                message = response.json()["error"]
                assert "Chroma server" in message and "Traceback" not in message, message
                assert str(tmp_path) not in message and "/tmp" not in message, message
                assert took < 5, f"{path} took {took:.1f} s to fail"
            time.sleep(2.1)  # past the 2 s manifest check in the second round

        chroma.start()  # same port, same data: no restart of `serve`
        def answers():
            response = http.post("/api/ask", json={"question": EN_Q})
            return response.json() if response.status_code == 200 else None

        answer = _wait(answers, 60, step=0.5)
        assert answer and answer["grounded"], "serve did not recover after the Chroma server came back"
        for c in answer["citations"]:
            text = http.get(f"/api/documents/{c['doc_id']}/text").json()["text"]
            assert text[c["start"] : c["end"]] == c["quote"]
        assert http.post("/api/search", json={"query": "stablecoin"}).status_code == 200
    finally:
        http.close()
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
        chroma.stop()


# --- a full disk or a read-only index folder during a sync


def _built(tmp_path) -> Settings:
    corpus = copy_corpus(tmp_path / "corpus", SMALL)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embed_model="use")
    indexer.sync(settings, progress=False)
    variants(corpus, 1)  # the failing sync has plenty to write
    mutate(corpus, __import__("random").Random(SEED), 1)
    return settings


def _answers_from_the_previous_index(settings: Settings) -> None:
    result = subprocess.run(CLI + ["ask", "--json", EN_Q], env=_env(settings), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["grounded"] and any("180 days" in c["quote"] for c in answer["citations"])


def _clear_error(result, settings: Settings, reason: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Cannot write to the index folder '{settings.index_dir.name}'" in result.stderr, result.stderr
    assert reason in result.stderr and str(settings.index_dir.parent) not in result.stderr, result.stderr


def test_disk_full_during_sync_is_a_clear_error_and_the_previous_index_serves(tmp_path):
    settings = _built(tmp_path)
    size = (settings.chroma_dir / "chroma.sqlite3").stat().st_size
    # Two sizes of full disk: SQLite's own write fails, or Chroma's applying its log to the metadata segment does
    # (benchmarks/torture.py tries random sizes).
    for headroom in (4_000, 300_000):
        limit = size + headroom

        def full_disk():  # files of the sync cannot grow past `limit` bytes; writes then fail with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        result = subprocess.run(CLI + ["index"], env=_env(settings), preexec_fn=full_disk, capture_output=True,
                                text=True, timeout=300)
        _clear_error(result, settings, "the disk is full")
    _answers_from_the_previous_index(settings)
    outcome = verify_in_subprocess(settings.corpus_dir, settings.index_dir, tmp_path / "reference", "", _env(settings))
    assert outcome["ok"], outcome


READ_ONLY_DRIVER = r"""
import json, subprocess, sys
from assistant.api import Assistant
from assistant.errors import StoreError
from assistant.settings import Settings

question, cli = sys.argv[1], json.loads(sys.argv[2])
assistant = Assistant.open(Settings())  # a running server's view of the index, opened before the folder turns
index = str(Settings().index_dir)
subprocess.run(["mount", "--bind", index, index], check=True)
subprocess.run(["mount", "-o", "remount,ro,bind", index], check=True)
out = {}
result = subprocess.run(cli + ["index"], capture_output=True, text=True)
out["cli"] = [result.returncode, result.stderr]
try:
    assistant.sync()
    out["sync"] = "completed"
except StoreError as exc:
    out["sync"] = str(exc)
answer = assistant.ask(question)
out["answer"] = [answer.grounded, [c.quote for c in answer.citations]]
subprocess.run(["mount", "-o", "remount,rw,bind", index], check=True)  # writable again: run the sync again
result = subprocess.run(cli + ["index", "--json"], capture_output=True, text=True)
out["after"] = [result.returncode, result.stdout, result.stderr[-2000:]]
out["still answers"] = assistant.ask(question).grounded
print(json.dumps(out))
"""


def _can_remount() -> str | None:
    """Why a read-only bind mount cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "no unshare or mount command"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return None if probe.returncode == 0 else "unshare -m is not permitted here"


def test_read_only_index_folder_during_sync_is_a_clear_error_and_the_previous_index_serves(tmp_path):
    settings = _built(tmp_path)
    if os.geteuid() != 0:  # chmod stops anyone but root
        os.chmod(settings.chroma_dir, 0o555)
        for path in settings.chroma_dir.rglob("*"):
            os.chmod(path, 0o555 if path.is_dir() else 0o444)
        try:
            result = subprocess.run(CLI + ["index"], env=_env(settings), capture_output=True, text=True, timeout=300)
        finally:
            for path in [settings.chroma_dir, *settings.chroma_dir.rglob("*")]:
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
        _clear_error(result, settings, "read-only")
        _answers_from_the_previous_index(settings)
    else:
        if reason := _can_remount():
            pytest.skip(f"a read-only bind mount needs root and `unshare -m`: {reason}")
        # In a mount namespace of its own, a process that has the index open (as `serve` would) sees the folder
        # turn read-only: `assistant index` fails clearly, its own sync too, and it keeps answering.
        result = subprocess.run(["unshare", "-m", sys.executable, "-c", READ_ONLY_DRIVER, EN_Q, json.dumps(CLI)],
                                env=_env(settings), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
        code, stderr = out["cli"]
        _clear_error(subprocess.CompletedProcess([], code, "", stderr), settings, "read-only")
        assert out["sync"].startswith(f"Cannot write to the index folder '{settings.index_dir.name}'"), out["sync"]
        grounded, quotes = out["answer"]
        assert grounded and any("180 days" in q for q in quotes), out["answer"]
        code, report, stderr = out["after"]  # writable again: the next sync completes
        assert code == 0 and json.loads(report)["added"], stderr
        assert out["still answers"]
    outcome = verify_in_subprocess(settings.corpus_dir, settings.index_dir, tmp_path / "reference", "", _env(settings))
    assert outcome["ok"], outcome
