"""Against a Chroma server the sync writes each group of chunks in a background thread while it embeds the next:
writes stay in order, one at a time, and a failure on either side stops every later write and is completed by the
next sync. With the embedded client (which holds the GIL while it writes) the groups are written in turn."""

from __future__ import annotations

import sys
import threading
import uuid

import pytest

from assistant import indexer
from assistant.embeddings import load_embedder
from assistant.settings import Settings
from assistant.store import Store

from conftest import copy_corpus
from faultkit import CHROMA, ChromaServer, full_state

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"

WRITES = ("add_chunks", "update_chunk_metas", "delete_chunks", "put_documents", "delete_document", "mark_dirty",
          "activate", "delete_orphans")


class Recorder:
    """Every Store write and every embedding call in the order they happen, with the writes' threads, how many
    writes ran at once, and which documents' records each put_documents carried."""

    def __init__(self, monkeypatch, fail_at: tuple[str, int] | None = None, before_failing=None):
        self.events: list[tuple[str, str]] = []  # (kind, name)
        self.threads: set[str] = set()
        self.running = self.most_at_once = 0
        self.recorded_docs: list[list[str]] = []
        self._lock = threading.Lock()
        calls: dict[str, int] = {}
        for name in WRITES:
            monkeypatch.setattr(Store, name, self._wrap(name, getattr(Store, name), calls, fail_at, before_failing))
        real = load_embedder("use")
        recorder = self

        class Embedder:  # the real model, its calls recorded
            def __getattr__(self, name):
                return getattr(real, name)

            def embed_passages(self, texts, **kwargs):
                vectors = real.embed_passages(texts, **kwargs)
                recorder.events.append(("embed", str(len(texts))))
                return vectors

        self.embedder = Embedder()

    def _wrap(self, name, original, calls, fail_at, before_failing):
        def write(store, *args, **kwargs):
            with self._lock:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
                self.events.append(("write", name))
                calls[name] = calls.get(name, 0) + 1
                nth = calls[name]
            try:
                if name in ("add_chunks", "update_chunk_metas", "delete_chunks", "put_documents"):
                    self.threads.add(threading.current_thread().name)
                if name == "put_documents":
                    self.recorded_docs.append([r[0] for r in args[0]])
                if fail_at == (name, nth):
                    if before_failing:
                        before_failing()
                    self.events.append(("failed", name))
                    raise RuntimeError("simulated crash")
                return original(store, *args, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return write

    def embeds_before_failure(self) -> int:
        failed = self.events.index(("failed", "put_documents"))
        return sum(1 for kind, _ in self.events[:failed] if kind == "embed")

    def after_failure(self) -> list[tuple[str, str]]:
        failed = self.events.index(("failed", "put_documents"))
        return self.events[failed + 1:]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    if not CHROMA.exists():
        pytest.skip(f"no `chroma` command next to {sys.executable}")
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server")).start()
    yield server.url
    server.stop()


@pytest.fixture
def on_server(settings, chroma_url) -> Settings:
    """The test's settings, its index on the shared server under a collection of its own."""
    return Settings(corpus_dir=settings.corpus_dir, index_dir=settings.index_dir, embed_model="use",
                    chroma_url=chroma_url, collection=f"t{uuid.uuid4().hex[:12]}")


def _indexed_then_grown(settings: Settings) -> set[str]:
    """An index of two documents, and the rest of the corpus added since: the next sync writes several groups."""
    first = copy_corpus(settings.corpus_dir, [EO, ZH])
    indexer.sync(settings, progress=False)
    copy_corpus(first)
    return set(Store.open(settings).documents())


def _answers(settings: Settings) -> None:
    from assistant.api import Assistant

    assert Assistant.open(settings).search("alternative assets", k=3)


def _completed_like_a_fresh_build(settings: Settings, tmp_path) -> None:
    indexer.sync(settings, progress=False)
    reference = Settings(corpus_dir=settings.corpus_dir, index_dir=tmp_path / "reference", embed_model="use")
    indexer.sync(reference, progress=False)
    assert full_state(settings) == full_state(reference)


def test_group_writes_run_one_at_a_time_in_one_writer_thread_and_in_order(on_server, monkeypatch):
    settings = on_server
    copy_corpus(settings.corpus_dir)
    rec = Recorder(monkeypatch)
    indexer.sync(settings, progress=False, embedder=rec.embedder)
    assert len(rec.recorded_docs) >= 3, "the corpus should make several write groups"
    assert rec.most_at_once == 1
    assert len(rec.threads) == 1 and threading.current_thread().name not in rec.threads
    # Within each group: sentences, chunks, then the records; the next group's writes start after those records.
    writes = [name for kind, name in rec.events if kind == "write"]
    groups = " ".join(writes).split("put_documents")[:-1]
    assert all(g.split() == ["add_chunks", "add_chunks"] for g in groups[1:]), writes
    assert groups[0].split() == ["mark_dirty", "add_chunks", "add_chunks"]
    assert indexer.status(settings).up_to_date


def test_a_failed_write_with_the_next_group_embedded_writes_nothing_later_and_is_completed(on_server, tmp_path):
    settings = on_server
    before = _indexed_then_grown(settings)
    embedded_next = threading.Event()

    def wait_for_next_group():  # the first group's records fail only once the second group is embedded
        assert embedded_next.wait(30), "the next group was not embedded while the first was being written"

    with pytest.MonkeyPatch.context() as patch:
        rec = Recorder(patch, fail_at=("put_documents", 1), before_failing=wait_for_next_group)
        embed = rec.embedder.embed_passages

        def embed_and_signal(texts, **kwargs):
            vectors = embed(texts, **kwargs)
            if sum(1 for kind, _ in rec.events if kind == "embed") == 2:
                embedded_next.set()
            return vectors

        rec.embedder.embed_passages = embed_and_signal
        with pytest.raises(RuntimeError, match="simulated crash"):
            indexer.sync(settings, progress=False, embedder=rec.embedder)
    assert rec.embeds_before_failure() == 2
    assert rec.after_failure() == [], "a write happened after the failed one"
    # The first group's records failed and the second group was never written: the index answers as before.
    assert set(Store.open(settings).documents()) == before
    _answers(settings)
    _completed_like_a_fresh_build(settings, tmp_path)


def test_an_embedding_failure_lets_the_write_in_flight_finish_and_nothing_after(on_server, tmp_path):
    settings = on_server
    before = _indexed_then_grown(settings)
    with pytest.MonkeyPatch.context() as patch:
        rec = Recorder(patch)
        embed = rec.embedder.embed_passages

        def fail_second(texts, **kwargs):
            if sum(1 for kind, _ in rec.events if kind == "embed") == 1:
                raise RuntimeError("model failed")
            return embed(texts, **kwargs)

        rec.embedder.embed_passages = fail_second
        with pytest.raises(RuntimeError, match="model failed"):
            indexer.sync(settings, progress=False, embedder=rec.embedder)
    # The group embedded was written, completely (while the next one was being embedded), and the sync did not
    # return before that write was done.
    assert len(rec.recorded_docs) == 1 and rec.running == 0
    assert set(Store.open(settings).documents()) == before | {d for docs in rec.recorded_docs for d in docs}
    _answers(settings)
    _completed_like_a_fresh_build(settings, tmp_path)


def test_with_the_embedded_client_each_group_is_written_in_turn_by_the_syncing_thread(settings, monkeypatch):
    copy_corpus(settings.corpus_dir)
    rec = Recorder(monkeypatch)
    indexer.sync(settings, progress=False, embedder=rec.embedder)
    assert rec.threads == {threading.current_thread().name}
    # Each group's records are written before the next group is embedded.
    order = [kind if kind == "embed" else name for kind, name in rec.events if kind == "embed" or name == "put_documents"]
    assert order == ["embed", "put_documents"] * len(rec.recorded_docs)
