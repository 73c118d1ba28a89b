"""Reading sentences back: vectors only (the chunk lists its sentences' spans), by id (the chunk records their
number) and by metadata filter (indexes built before either) give the same sentences and vectors."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.indexer import sync
from assistant.store import Store

from conftest import copy_corpus


def _by_span(metas, vectors):
    return {(m["chunk_id"], m["start"], m["end"], m["lang"]): v for m, v in zip(metas, vectors)}


def test_sentences_read_by_id_equal_those_read_by_filter(settings):
    copy_corpus(settings.corpus_dir, ["us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md",
                                      "marsbit_2025-08-07_crypto_401k_zh.txt"])
    sync(settings, progress=False)
    store = Store.open(settings)
    ids, _, metas = store.all_chunks()
    listed = dict(zip(ids, metas))
    assert all("sentence_spans" in m for m in metas)
    counted = {i: {k: v for k, v in m.items() if k != "sentence_spans"} for i, m in listed.items()}
    assert sum(m["sentences"] for m in metas) == store.count_sentences()
    by_filter = _by_span(*store.sentence_vectors(ids))
    by_id = _by_span(*store.sentence_vectors(ids, counted))
    by_spans = _by_span(*store.sentence_vectors(ids, listed))
    half = {**dict(list(listed.items())[: len(ids) // 3]), **dict(list(counted.items())[len(ids) // 3:][: len(ids) // 3])}
    mixed = _by_span(*store.sentence_vectors(ids, half))  # a third each way
    assert len(by_filter) == store.count_sentences() and {k[3] for k in by_filter} == {"en", "zh"}
    for got in (by_id, by_spans, mixed):
        assert got.keys() == by_filter.keys()
        assert all(np.allclose(got[k], by_filter[k]) for k in got)
    some = ids[:3]
    assert {k[0] for k in _by_span(*store.sentence_vectors(some, listed))} == set(some)


def test_a_chunk_gone_since_the_snapshot_is_read_as_it_is_now(settings):
    """A retriever's snapshot lists a chunk that a sync (in another process) has deleted meanwhile: its sentences
    are not invented from the snapshot's spans."""
    copy_corpus(settings.corpus_dir, ["us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"])
    sync(settings, progress=False)
    store = Store.open(settings)
    ids, _, metas = store.all_chunks()
    listed = dict(zip(ids, metas))
    store.delete_chunks([ids[0]])
    got = _by_span(*store.sentence_vectors(ids, listed))
    assert {k[0] for k in got} == set(ids[1:])
    assert len(got) == sum(m["sentences"] for m in metas[1:])


def test_a_documents_text_is_replaced_only_when_its_record_is(settings, monkeypatch):
    """Texts are stored in pieces named by their version: a write that fails between the new pieces and the record
    leaves the old record reading the old text; the next sweep removes the unused pieces; a rewrite replaces them."""
    from assistant import store as store_module

    name = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
    copy_corpus(settings.corpus_dir, [name])
    sync(settings, progress=False)
    store = Store.open(settings)
    old_text = store.document_text(name)
    assert len(old_text) > 3 * store_module._TEXT_PIECE  # several pieces
    meta = store.documents()[name]
    vector = store.title_vectors()[name]
    new_text = "A new first line.\n" + old_text
    new_meta = {**meta, "content_hash": "f" * 64}

    class Refused(Exception):
        pass

    def refuse(**kwargs):
        raise Refused()

    monkeypatch.setattr(store._docs, "upsert", refuse)
    with pytest.raises(Refused):
        store.put_documents([(name, new_text, new_meta, vector)])
    monkeypatch.undo()
    assert store.document_text(name) == old_text
    before_sweep = set(store._pieces.get(include=[])["ids"])
    store.delete_orphans()
    kept = set(store._pieces.get(include=[])["ids"])
    assert kept < before_sweep and all(meta["content_hash"][:16] in i for i in kept)

    store.put_documents([(name, new_text, new_meta, vector)])
    assert store.document_text(name) == new_text
    assert all("f" * 16 in i for i in store._pieces.get(include=[])["ids"])  # the old version's pieces are gone
    store.delete_document(name)
    assert store.document_text(name) is None and store._pieces.count() == 0
