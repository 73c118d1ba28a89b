"""Reading sentences back: by id (the chunk records its number of sentences) and by metadata filter (indexes
built before that) give the same sentences and vectors."""

from __future__ import annotations

import numpy as np

from assistant.indexer import sync
from assistant.store import Store

from conftest import copy_corpus


def _by_span(metas, vectors):
    return {(m["chunk_id"], m["start"], m["end"]): v for m, v in zip(metas, vectors)}


def test_sentences_read_by_id_equal_those_read_by_filter(settings):
    copy_corpus(settings.corpus_dir, ["us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md",
                                      "marsbit_2025-08-07_crypto_401k_zh.txt"])
    sync(settings, progress=False)
    store = Store.open(settings)
    ids, _, metas = store.all_chunks()
    counts = {i: m["sentences"] for i, m in zip(ids, metas)}
    assert sum(counts.values()) == store.count_sentences()
    by_filter = _by_span(*store.sentence_vectors(ids))
    by_id = _by_span(*store.sentence_vectors(ids, counts))
    half = dict(list(counts.items())[: len(counts) // 2])  # some chunks by id, the others by filter
    mixed = _by_span(*store.sentence_vectors(ids, half))
    assert len(by_filter) == sum(counts.values())
    for got in (by_id, mixed):
        assert got.keys() == by_filter.keys()
        assert all(np.allclose(got[k], by_filter[k]) for k in got)
    some = ids[:3]
    assert {k[0] for k in _by_span(*store.sentence_vectors(some, counts))} == set(some)
