"""The keyword index rebuilt after a change reuses the tokens of unchanged chunks and equals a rebuild from scratch."""

from __future__ import annotations

import numpy as np

from assistant import keywords
from assistant.keywords import KeywordIndex, known_tokens

from test_lexicon import corpus_chunks, edited

QUERIES = ["fiduciary duties alternative assets", "加密资产 指导意见", "180 days Secretary of Labor", "稳定币 储备"]


def test_rebuild_from_saved_tokens_equals_full_rebuild(tmp_path, monkeypatch):
    ids, texts = corpus_chunks()
    KeywordIndex.build(ids, texts).save(tmp_path / "keywords", "before")
    new_ids, new_texts, fresh = edited(ids, texts)

    calls = []
    original = keywords.tokenize
    monkeypatch.setattr(keywords, "tokenize", lambda text: calls.append(text) or original(text))
    reused = KeywordIndex.build(new_ids, new_texts, known_tokens(tmp_path / "keywords"))
    assert sorted(calls) == sorted(fresh)  # only the new texts were segmented
    monkeypatch.setattr(keywords, "tokenize", original)

    scratch = KeywordIndex.build(new_ids, new_texts)
    assert reused.ids == scratch.ids
    assert reused.tokens == scratch.tokens
    assert [reused.document_frequency(t) for t in scratch._df] == list(scratch._df.values())
    for query in QUERIES:
        assert np.array_equal(reused.scores(query), scratch.scores(query))
        assert reused.scores(query).max() > 0  # the queries do hit something


def test_unreadable_saved_tokens_mean_segmenting_again(tmp_path):
    folder = tmp_path / "keywords"
    folder.mkdir()
    (folder / "tokens.json").write_text("{not json")
    assert known_tokens(folder) == {}
    assert known_tokens(tmp_path / "missing") == {}
