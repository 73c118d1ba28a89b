"""The lexicon's word store: a sync's changes analyse only the changed chunks and embed only new words, a recount
reuses saved analyses, an interrupted update leaves the previous state, and every path equals a build from
scratch."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from assistant import lexicon as lexicon_module
from assistant.keywords import text_key
from assistant.lexicon import MAX_TERMS, WordStore, word_embedder

from conftest import CORPUS

EDITED = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
DROPPED = "us_wh_factsheet_2025-07-18_genius_act.md"


@lru_cache(maxsize=1)
def corpus_chunks() -> tuple[list[str], list[str]]:
    """Chunk ids and texts of the shipped corpus, cut as the indexer cuts them."""
    from assistant import documents
    from assistant.chunking import chunk_document

    ids, texts = [], []
    for path in documents.discover(CORPUS):
        doc = documents.load(path, CORPUS, 20_000_000)
        for i, chunk in enumerate(chunk_document(doc, 1000, 1)[0]):
            ids.append(f"{doc.id}#{i}")
            texts.append(chunk.text)
    return ids, texts


def edited(ids: list[str], texts: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The corpus after a sync: one document gone, one chunk of another edited, one new chunk; and the new texts."""
    kept = [(i, t) for i, t in zip(ids, texts) if not i.startswith(DROPPED)]
    at = next(n for n, (i, t) in enumerate(kept) if i.startswith(EDITED) and "180 days" in t)
    fresh = [kept[at][1].replace("180 days", "90 days"), "Wisconsin pension fund 威斯康星州投资委员会 bought 比特币 ETFs."]
    kept[at] = (kept[at][0], fresh[0])
    kept.append(("new.md#0", fresh[1]))
    return [i for i, _ in kept], [t for _, t in kept], fresh


@lru_cache(maxsize=1)
def _embedder():
    from assistant.embeddings import load_embedder

    return load_embedder("use")


def built(folder, texts, mark="before", embed=None) -> WordStore:
    words = WordStore(folder)
    words.recount(texts)
    words.embed_missing(embed or word_embedder(_embedder()), _embedder().name)
    words.commit(mark)
    return words


def sync_changes(ids, texts, new_ids, new_texts) -> tuple[list[str], list[str]]:
    """What a sync passes on: texts of the chunks it added, text keys of those it removed."""
    old, new = dict(zip(ids, texts)), dict(zip(new_ids, new_texts))
    added = [new[i] for i in new_ids if old.get(i) != new[i]]
    removed = [text_key(old[i]) for i in ids if new.get(i) != old[i]]
    return added, removed


def test_a_syncs_changes_analyse_and_embed_only_what_is_new_and_equal_a_build_from_scratch(tmp_path, monkeypatch):
    ids, texts = corpus_chunks()
    embedded: list[str] = []

    def embed(words):
        embedded.extend(words)
        return word_embedder(_embedder())(words)

    words = built(tmp_path / "a", texts, embed=embed)
    before = set(words.lexicon().terms)
    new_ids, new_texts, fresh = edited(ids, texts)
    added, removed = sync_changes(ids, texts, new_ids, new_texts)
    assert sorted(added) == sorted(fresh) and len(removed) > 5  # a whole document went

    analysed = []
    original = lexicon_module.analyse
    monkeypatch.setattr(lexicon_module, "analyse", lambda text: analysed.append(text) or original(text))
    embedded.clear()
    words.change(added, removed)
    words.embed_missing(embed, _embedder().name)
    words.commit("after")
    assert sorted(analysed) == sorted(fresh)  # only the new texts were analysed
    after = words.lexicon()
    assert set(embedded) == set(after.terms) - before  # only words new to the lexicon were embedded
    assert "威斯康星州" in after.terms
    monkeypatch.setattr(lexicon_module, "analyse", original)

    scratch = built(tmp_path / "b", new_texts)
    assert words.totals() == scratch.totals()
    expected = scratch.lexicon()
    assert after.terms == expected.terms
    assert after.langs.tolist() == expected.langs.tolist() and after.is_name.tolist() == expected.is_name.tolist()
    assert np.allclose(after.vectors, expected.vectors, atol=1e-6)


def test_a_recount_reuses_the_saved_analyses(tmp_path, monkeypatch):
    ids, texts = corpus_chunks()
    built(tmp_path / "a", texts).close()
    _, new_texts, fresh = edited(ids, texts)
    analysed = []
    original = lexicon_module.analyse
    monkeypatch.setattr(lexicon_module, "analyse", lambda text: analysed.append(text) or original(text))
    words = WordStore(tmp_path / "a")
    assert words.meta("fingerprint") == "before"
    words.recount(new_texts)
    assert sorted(analysed) == sorted(fresh)
    monkeypatch.setattr(lexicon_module, "analyse", original)
    assert words.totals() == built(tmp_path / "b", new_texts).totals()


def test_the_ranking_is_names_then_the_most_frequent_words(tmp_path):
    """The SQL ranking against the rule written out in Python over the same counts."""
    words = built(tmp_path / "a", corpus_chunks()[1])
    totals = words.totals()
    names = {name for name, _ in totals["names"]}
    counts = {(w, lang): n for w, lang, n in totals["words"]}
    for name in names:
        counts.setdefault((name, "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in name) else "en"), 1)
    kept = [w for w in counts if counts[w] >= 2 or w[0] in names]
    expected = sorted(kept, key=lambda w: (w[0] not in names, -counts[w], w))[:MAX_TERMS]
    ranked = words.ranked()
    assert [(w, lang) for w, lang, _ in ranked] == expected
    assert [is_name for _, _, is_name in ranked] == [w in names for w, _ in expected]
    assert len(names) > 10 and len(ranked) > 1000


def test_an_update_that_does_not_finish_leaves_the_previous_state(tmp_path):
    ids, texts = corpus_chunks()
    words = built(tmp_path / "a", texts)
    saved = words.totals()
    new_ids, new_texts, _ = edited(ids, texts)
    words.change(*sync_changes(ids, texts, new_ids, new_texts))
    words.close()  # killed before commit
    again = WordStore(tmp_path / "a")
    assert again.meta("fingerprint") == "before" and again.totals() == saved
    with pytest.raises(ValueError):  # a removal it never counted: refused, nothing applied
        again.change(["some new text"], [text_key("never indexed")])
    assert again.totals() == saved


def test_a_copy_in_memory_reads_the_saved_store_and_leaves_it_alone(tmp_path):
    ids, texts = corpus_chunks()
    built(tmp_path / "a", texts).close()
    copy = WordStore(tmp_path / "a", in_memory=True)
    assert copy.meta("fingerprint") == "before" and len(copy.lexicon().terms) > 1000
    copy.recount(texts[:10])
    copy.commit("in memory")
    assert WordStore(tmp_path / "a").meta("fingerprint") == "before"
    assert WordStore(tmp_path / "missing", in_memory=True).lexicon().terms == []


def test_translations_are_each_words_best_matches_in_the_other_language(tmp_path):
    from assistant.lexicon import EXPANSION_PER_WORD, EXPANSION_THRESHOLD, content_words

    embed = word_embedder(_embedder())
    lexicon = built(tmp_path / "a", corpus_chunks()[1]).lexicon()
    words = list(dict.fromkeys(content_words("受托人 私钥 稳定币 fiduciary private key stablecoin reserves")))
    expected = []
    for (word, lang), vector in zip(words, embed([w for w, _ in words])):  # word by word, every term sorted
        sims = np.where(lexicon.langs != lang, lexicon.vectors @ vector, -1.0)
        expected += [lexicon.terms[j] for j in np.argsort(-sims, kind="stable")[:EXPANSION_PER_WORD]
                     if sims[j] >= EXPANSION_THRESHOLD]
    found = lexicon.translations(words, embed)
    assert found == expected
    assert "fiduciary" in found or "private key" in found  # the Chinese words find their English renderings
