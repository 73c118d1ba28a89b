"""The keyword index: BM25 as bm25s computes it, updated by a sync's changes or rebuilt from saved rows, and always
equal to a build from scratch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant import keywords
from assistant.keywords import KeywordIndex, text_key, tokenize

from test_lexicon import corpus_chunks, edited

QUERIES = ["fiduciary duties alternative assets", "加密资产 指导意见", "180 days Secretary of Labor", "稳定币 储备",
           "Labor Labor fiduciary"]


def by_id(index: KeywordIndex, query: str) -> dict[str, float]:
    return dict(zip(index.ids, index.scores(query).tolist()))


def test_scores_are_bm25s_lucene_scores():
    """The reference: bm25s (Lucene variant, k1 1.5, b 0.75) over the same tokens, a repeated query word counted
    twice as it counts it."""
    import bm25s

    ids, texts = corpus_chunks()
    ours = KeywordIndex.build(ids, texts)
    reference = bm25s.BM25()
    reference.index([tokenize(t) or ["<empty>"] for t in texts], show_progress=False)
    for query in QUERIES:
        tokens = [t for t in tokenize(query) if ours.known(t)]
        want = reference.get_scores(tokens)
        got = ours.scores(query)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), query
        assert got.max() > 0


def test_an_update_by_a_syncs_changes_equals_a_build_from_scratch(monkeypatch):
    ids, texts = corpus_chunks()
    before = KeywordIndex.build(ids, texts)
    new_ids, new_texts, fresh = edited(ids, texts)
    old, new = dict(zip(ids, texts)), dict(zip(new_ids, new_texts))
    # As a sync sees it: the edited chunk and the new one are added (an edited chunk gets a new id), the edited
    # one's old version and the dropped document's chunks removed.
    added = [(i + "'", new[i]) if i in old else (i, new[i]) for i in new_ids if old.get(i) != new[i]]
    removed = [i for i in ids if new.get(i) != old[i]]

    segmented = []
    original = keywords.tokenize
    monkeypatch.setattr(keywords, "tokenize", lambda text: segmented.append(text) or original(text))
    updated = before.updated(removed, added)
    assert sorted(segmented) == sorted(fresh)  # only the new texts
    monkeypatch.setattr(keywords, "tokenize", original)

    scratch_ids = [i + "'" if i in old and old[i] != new[i] else i for i in new_ids]
    scratch = KeywordIndex.build(scratch_ids, new_texts)
    assert sorted(updated.ids) == sorted(scratch.ids)
    assert {t: updated.document_frequency(t) for t in scratch.vocab} == \
        {t: scratch.document_frequency(t) for t in scratch.vocab}
    assert not [t for t in updated.vocab if updated.known(t) and not scratch.known(t)]  # gone words are unknown
    for query in QUERIES:
        got, want = by_id(updated, query), by_id(scratch, query)
        assert got.keys() == want.keys()
        assert all(abs(got[i] - want[i]) <= 1e-5 * max(1.0, abs(want[i])) for i in want), query
    dropped = next(i for i in removed if i not in new)
    assert dropped not in updated.ids and "new.md#0" in updated.ids


def test_a_rebuild_reuses_the_saved_rows_of_known_texts(tmp_path, monkeypatch):
    ids, texts = corpus_chunks()
    KeywordIndex.build(ids, texts).save(tmp_path / "keywords", "before")
    saved, built_for = KeywordIndex.load(tmp_path / "keywords")
    assert built_for == "before" and saved.ids == ids and saved.keys == [text_key(t) for t in texts]
    new_ids, new_texts, fresh = edited(ids, texts)

    segmented = []
    original = keywords.tokenize
    monkeypatch.setattr(keywords, "tokenize", lambda text: segmented.append(text) or original(text))
    reused = KeywordIndex.build(new_ids, new_texts, known=saved)
    assert sorted(segmented) == sorted(fresh)
    monkeypatch.setattr(keywords, "tokenize", original)

    scratch = KeywordIndex.build(new_ids, new_texts)
    assert reused.ids == scratch.ids
    for query in QUERIES:
        assert np.allclose(reused.scores(query), scratch.scores(query), rtol=1e-6)


@pytest.mark.parametrize("damage", ["missing", "not json", "old format", "truncated rows", "rows of another index"])
def test_a_damaged_saved_index_is_not_used(tmp_path, damage):
    ids, texts = corpus_chunks()
    folder = tmp_path / "keywords"
    KeywordIndex.build(ids, texts).save(folder, "mark")
    other = tmp_path / "other"
    KeywordIndex.build(ids[:5], texts[:5]).save(other, "mark")
    meta = json.loads((folder / "meta.json").read_text())
    if damage == "missing":
        (folder / "rows.npz").unlink()
    elif damage == "not json":
        (folder / "meta.json").write_text("{not json")
    elif damage == "old format":
        (folder / "meta.json").write_text(json.dumps({**meta, "version": 1}))
    elif damage == "truncated rows":
        data = (folder / "rows.npz").read_bytes()
        (folder / "rows.npz").write_bytes(data[: len(data) // 2])
    else:
        (folder / "rows.npz").write_bytes((other / "rows.npz").read_bytes())
    assert KeywordIndex.load(folder) == (None, "")
