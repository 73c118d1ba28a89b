"""The lexicon rebuilt after a change analyses only the changed chunks, embeds only new words, and equals a rebuild
from scratch."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from assistant import lexicon as lexicon_module
from assistant.lexicon import Lexicon, Totals, known_totals, word_embedder

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


def test_rebuild_from_saved_totals_equals_full_rebuild(tmp_path, monkeypatch):
    from assistant.embeddings import load_embedder

    embedder = load_embedder("use")
    embedded: list[str] = []

    def embed(words):
        embedded.extend(words)
        return word_embedder(embedder)(words)

    ids, texts = corpus_chunks()
    before = Lexicon.build(Totals().update(texts), embed, embedder.name)
    before.save(tmp_path / "lexicon", "before")
    _, new_texts, fresh = edited(ids, texts)

    analysed = []
    original = lexicon_module.analyse
    monkeypatch.setattr(lexicon_module, "analyse", lambda text: analysed.append(text) or original(text))
    embedded.clear()
    previous, _ = Lexicon.load(tmp_path / "lexicon")
    reused = Lexicon.build(known_totals(tmp_path / "lexicon")[0].update(new_texts), embed, embedder.name,
                           previous=previous)
    assert sorted(analysed) == sorted(fresh)  # only the new texts were analysed
    assert set(embedded) == set(reused.terms) - set(before.terms)  # only words new to the lexicon were embedded
    assert "威斯康星州" in reused.terms
    monkeypatch.setattr(lexicon_module, "analyse", original)

    scratch = Lexicon.build(Totals().update(new_texts), word_embedder(embedder), embedder.name)
    assert reused.terms == scratch.terms
    assert reused.langs.tolist() == scratch.langs.tolist()
    assert reused.is_name.tolist() == scratch.is_name.tolist()
    assert reused.totals.to_json() == scratch.totals.to_json()
    # Vectors of known words come from the saved lexicon (float32 through a file): the same to rounding.
    assert np.allclose(reused.vectors, scratch.vectors, atol=1e-6)


def test_unreadable_saved_totals_mean_analysing_again(tmp_path):
    folder = tmp_path / "lexicon"
    folder.mkdir()
    (folder / "words.json").write_text("[1, 2")
    assert known_totals(folder)[0].uses == {}
    (folder / "words.json").write_text('{"analyses": {}, "uses": {"abc": 1}, "counts": {}, "names": {}}')
    assert known_totals(folder)[0].uses == {}  # counts without their analyses are not trusted


def test_a_syncs_changes_give_the_totals_of_a_recount():
    """Adding and removing a sync's chunks (by text and by text key) equals counting the new corpus afresh; a
    removal the totals never counted is refused (the caller then recounts from the store)."""
    from assistant.keywords import text_key

    ids, texts = corpus_chunks()
    new_ids, new_texts, fresh = edited(ids, texts)
    old, new = dict(zip(ids, texts)), dict(zip(new_ids, new_texts))
    added = [new[i] for i in new_ids if old.get(i) != new[i]]
    removed = [text_key(old[i]) for i in ids if new.get(i) != old[i]]
    assert sorted(added) == sorted(fresh) and len(removed) > 5  # a whole document went

    changed = Totals().update(texts).changed(added, removed)
    assert changed.to_json() == Totals().update(new_texts).to_json()
    with pytest.raises(ValueError):
        Totals().update(texts).changed([], [text_key("never indexed")])


def test_translations_are_each_words_best_matches_in_the_other_language():
    from assistant.embeddings import load_embedder
    from assistant.lexicon import EXPANSION_PER_WORD, EXPANSION_THRESHOLD, content_words

    embedder = load_embedder("use")
    embed = word_embedder(embedder)
    lexicon = Lexicon.build(Totals().update(corpus_chunks()[1]), embed, embedder.name)
    words = list(dict.fromkeys(content_words("受托人 私钥 稳定币 fiduciary private key stablecoin reserves")))
    expected = []
    for (word, lang), vector in zip(words, embed([w for w, _ in words])):  # word by word, every term sorted
        sims = np.where(lexicon.langs != lang, lexicon.vectors @ vector, -1.0)
        expected += [lexicon.terms[j] for j in np.argsort(-sims, kind="stable")[:EXPANSION_PER_WORD]
                     if sims[j] >= EXPANSION_THRESHOLD]
    found = lexicon.translations(words, embed)
    assert found == expected
    assert "fiduciary" in found or "private key" in found  # the Chinese words find their English renderings
