"""Answers end to end on the shipped corpus with the real default models, and the answer pieces in isolation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from assistant import answer as answering
from assistant.api import Assistant
from assistant.cli import main
from assistant.errors import IndexMissingError, QueryError
from assistant.followup import is_follow_up, resolve
from assistant.indexer import sync
from assistant.retrieval import Scored, fuse
from assistant.settings import Settings, default_embed_model
from assistant.types import Filters

from conftest import CORPUS, copy_corpus

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped corpus indexed once with the default (multilingual) model."""
    root = tmp_path_factory.mktemp("shipped")
    settings = Settings(corpus_dir=copy_corpus(root / "corpus"), index_dir=root / "index",
                        embed_model=default_embed_model())
    sync(settings, progress=False)
    return Assistant.open(settings)


def assert_verified(assistant: Assistant, answer):
    for citation in answer.citations:
        assert assistant.document_text(citation.doc_id)[citation.start : citation.end] == citation.quote
        assert f"[{citation.n}]" in answer.text


def test_english_question_answered_from_the_chinese_article(shipped):
    answer = shipped.ask("According to the marsbit article, how much did the Wisconsin investment board "
                         "disclose buying in bitcoin spot ETFs in May 2024?")
    assert answer.grounded
    assert answer.citations[0].doc_id == ZH
    assert "1.6 亿美元" in " ".join(c.quote for c in answer.citations)
    assert_verified(shipped, answer)


def test_chinese_question_answered_from_the_english_order(shipped):
    answer = shipped.ask("行政命令给劳工部长多少天时间重新审查有关受托人义务的指引？")
    assert answer.grounded
    cited = [c for c in answer.citations if c.doc_id == EO]
    assert cited and any("180 days" in c.quote for c in cited)
    assert any(c.locator.startswith("Sec. 3") for c in cited)
    assert_verified(shipped, answer)


def test_traditional_script_question_matches_simplified_text(shipped):
    answer = shipped.ask("據marsbit報導，威斯康星州投資委員會在2024年5月購買了多少比特幣ETF？")
    assert answer.grounded and any(c.doc_id == ZH and "1.6 亿美元" in c.quote for c in answer.citations)


@pytest.mark.parametrize("question", [
    "What is the boiling point of water at the summit of Mount Everest?",
    "How much bitcoin exposure does the Texas state pension system hold?",
    "What is the maximum civil penalty under the GENIUS Act for a stablecoin issuer that falsely claims its coins "
    "are federally insured?",
    "根据《天才法案》,违规发行支付稳定币的个人最高可被判处几年监禁?",
])
def test_unanswerable_questions_are_refused_with_the_nearest_passages(shipped, question):
    answer = shipped.ask(question)
    assert not answer.grounded
    assert answer.citations == ()
    assert answer.passages, "an abstention still lists the nearest passages"
    assert ("do not answer" in answer.text) or ("没有回答" in answer.text)


def test_follow_up_is_resolved_against_the_previous_question(shipped):
    history = [{"role": "user", "content": "Which state pension funds bought bitcoin ETFs, according to marsbit?"},
               {"role": "assistant", "content": "…"}]
    answer = shipped.ask("And what about North Carolina?", history=history)
    assert "pension" in answer.resolved_question and "North Carolina" in answer.resolved_question
    assert answer.grounded
    assert any("北卡罗来纳" in c.quote or "North Carolina" in c.quote for c in answer.citations)


def test_search_filters_by_language_and_date(shipped):
    zh_only = shipped.search("401(k) crypto", k=5, filters={"language": "zh"})
    assert zh_only and all(p.doc_id == ZH for p in zh_only)
    old = shipped.search("cryptocurrency guidance", k=5, filters={"date_to": "2022-12-31"})
    assert old and all(p.date <= "2022-12-31" for p in old)
    with pytest.raises(QueryError, match="Unknown filter"):
        shipped.search("x", filters={"author": "me"})


def test_empty_question_is_a_clear_error(shipped):
    with pytest.raises(QueryError, match="empty"):
        shipped.ask("  \x00 ")


def test_cli_ask_json_and_errors(tmp_path):
    settings = Settings(corpus_dir=copy_corpus(tmp_path / "corpus", [EO]), index_dir=tmp_path / "index", embed_model="use")
    runner = CliRunner()
    missing = runner.invoke(main, ["--index", str(settings.index_dir), "--embed-model", "use", "ask", "anything"])
    assert missing.exit_code == 2 and "assistant index" in missing.output
    sync(settings, progress=False)
    base = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--embed-model", "use"]
    result = runner.invoke(main, [*base, "ask", "How many days does the Secretary of Labor have to reexamine the guidance?", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"question", "text", "grounded", "citations", "passages"}
    assert data["grounded"] and data["citations"]
    assert set(data["citations"][0]) >= {"n", "doc_id", "path", "title", "locator", "quote", "start", "end", "score"}
    empty = runner.invoke(main, [*base, "ask", "   "])
    assert empty.exit_code == 2 and "empty" in empty.output
    search = runner.invoke(main, [*base, "search", "alternative assets", "-k", "2", "--json"])
    assert search.exit_code == 0 and len(json.loads(search.stdout)) == 2


# --- pieces in isolation ---


def test_fusion_prefers_agreement_between_signals():
    # Candidate 0 is best on one signal only; candidate 2 is second-best on both: weighted z-scores favour 2.
    features = np.array([[0.9, 0.1], [0.2, 0.2], [0.7, 0.8], [0.1, 0.3]])
    scores = fuse(features, [1.0, 1.0])
    assert int(np.argmax(scores)) == 2
    # The scale of a signal does not matter, only its spread: multiplying a column changes nothing.
    assert np.allclose(fuse(features * [100, 1], [1.0, 1.0]), scores)
    # A zero weight removes the signal.
    assert int(np.argmax(fuse(features, [1.0, 0.0]))) == 0


def test_filters_are_checked_and_applied_alike_everywhere():
    from assistant.store import _chroma_where, _llama_filters

    assert Filters.parse(None) is None and Filters.parse({}) is None
    parsed = Filters.parse({"doc_id": EO, "date_from": "2025-01-01"})
    assert parsed == Filters(doc_ids=(EO,), date_from=20250101)
    assert _chroma_where(parsed) == {"$and": [{"doc_id": {"$in": [EO]}}, {"date_int": {"$gte": 20250101}}]}
    assert [(f.key, f.operator.value, f.value) for f in _llama_filters(parsed).filters] == [
        ("doc_id", "in", [EO]), ("date_int", ">=", 20250101)]
    assert parsed.matches({"doc_id": EO, "date_int": 20250807})
    assert not parsed.matches({"doc_id": EO, "date_int": 20220310})
    assert not parsed.matches({"doc_id": ZH, "date_int": 20250807})
    for bad in ({"date_from": "January"}, {"language": "fr"}, {"author": "me"}):
        with pytest.raises(QueryError):
            Filters.parse(bad)


class _Retriever:
    """The parts of a retriever that sentence selection reads: document frequencies of the index's keywords."""

    class keywords:
        ids = list(range(50))

        @staticmethod
        def document_frequency(token):
            return {"secretari": 30, "labor": 40}.get(token, 1)

        @staticmethod
        def known(token):
            return True

    lexicon = None

    @staticmethod
    def keyword_query(query):  # no other language to render the words in
        return query

    @staticmethod
    def locate(doc_id, offset, fallback=""):
        return fallback


def _passage(text: str, scores: list[float], doc_id="doc.md", start=0) -> Scored:
    """A retrieved passage over `text`, one sentence per line, with these sentence scores."""
    spans, pos = [], start
    for line, score in zip(text.split("\n"), scores):
        spans.append((pos, pos + len(line), score))
        pos += len(line) + 1
    meta = {"doc_id": doc_id, "path": doc_id, "title": "T", "locator": "¶ 1", "start": start, "end": start + len(text)}
    return Scored(doc_id, 1.0, meta, text, 5.0, tuple(spans))


def test_sentence_selection_prefers_the_sentence_with_the_asked_fact():
    text = ("The Secretary of Labor shall review guidance on fiduciary duties.\n"
            "The weather in Washington was pleasant that week.\n"
            "Within 180 days of the date of this order, the Secretary shall reexamine the guidance.")
    chosen = answering.select_sentences("How many days does the Secretary have to reexamine the guidance?",
                                        [_passage(text, [1.0, -3.0, 0.9])], _Retriever)
    assert chosen[0].text.startswith("Within 180 days")  # the duration, and the rare word "reexamine"
    assert all("weather" not in c.text for c in chosen)


def test_neighbouring_sentences_merge_into_one_quote_and_duplicates_drop():
    text = "Stablecoins need full reserves.\nReserves are audited monthly.\nOther topic entirely here."
    twin = _passage("Stablecoins need full reserves.", [1.9], doc_id="other.md")
    chosen = answering.select_sentences("stablecoin reserves audited",
                                        [_passage(text, [2.0, 1.8, -3.0]), twin], _Retriever)
    assert len(chosen) == 1  # the two neighbours merged; the other document's identical sentence dropped
    assert chosen[0].start == 0 and chosen[0].end == len("Stablecoins need full reserves.\nReserves are audited monthly.")


def test_citations_are_verified_against_the_stored_text():
    text = "Alpha sentence here.\nBeta sentence here."
    chosen = answering.select_sentences("alpha beta", [_passage(text, [1.0, 1.0])], _Retriever)
    good = answering.verified_citations(chosen, lambda doc_id: text)
    assert [c.quote for c in good] == [text] and good[0].start == 0 and good[0].end == len(text)
    changed = text.replace("Beta", "Gamma")  # the document changed under the index: nothing is cited
    assert answering.verified_citations(chosen, lambda doc_id: changed) == []
    assert answering.verified_citations(chosen, lambda doc_id: None) == []


@pytest.mark.parametrize("question, slot", [
    ("How much did the fund invest?", "amount"),
    ("What share of the market does it hold?", "percentage"),
    ("When was the order signed?", "date"),
    ("How long does the Secretary have?", "duration"),
    ("How many votes did the bill receive when the House took it up?", "vote tally"),
    ("What was the final vote in the Senate?", "vote tally"),
    ("参议院的表决结果是多少票?", "vote tally"),
    ("该基金投资了多少美元?", "amount"),
    ("法案在哪一天通过?", "date"),
    ("Which assets are alternative assets?", None),
])
def test_asked_slot(question, slot):
    found = answering.asked_slot(question)
    assert (found[0] if found else None) == slot


def test_count_slot_needs_the_counted_thing():
    _, pattern = answering.asked_slot("How many Americans participate in the plans?")
    assert pattern.search("more than 90 million Americans participate in employer-sponsored plans")
    assert not pattern.search("In 2025, the plans covered most workers.")
    _, tally = answering.asked_slot("How many votes did S. 1582 receive?")
    assert tally.search("The bill passed the Senate 68-30.") and tally.search("It received 308 votes.")
    assert not tally.search("S. 1582 was introduced on May 1, 2025.")


def test_abstention_needs_the_asked_fact_and_known_names(shipped):
    retriever = shipped.retriever
    assert answering.unknown_names("How much bitcoin does the Texas pension hold?", retriever) == ["Texas"]
    # Wisconsin appears only as 威斯康星州 in the Chinese article: known across scripts.
    assert answering.unknown_names("How much did the Wisconsin board buy?", retriever) == []


@pytest.mark.parametrize("question, follow_up", [
    ("And what about North Carolina?", True),
    ("那北卡罗来纳州呢？", True),
    ("What does it say about fees?", True),
    ("Which assets does the executive order define as alternative assets?", False),
    ("行政命令如何定义另类资产？", False),
])
def test_follow_up_detection(question, follow_up):
    assert is_follow_up(question) is follow_up


def test_resolve_uses_the_last_user_question_only_for_follow_ups():
    history = [{"role": "user", "content": "Which states invest pension money in bitcoin?"},
               {"role": "assistant", "content": "Wisconsin [1]"}]
    assert resolve("and Michigan?", history) == "Which states invest pension money in bitcoin? and Michigan?"
    assert resolve("What is the GENIUS Act?", history) == "What is the GENIUS Act?"
    assert resolve("and Michigan?", []) == "and Michigan?"


def test_open_without_index_says_how_to_build_it(tmp_path):
    with pytest.raises(IndexMissingError, match="assistant index"):
        Assistant.open(Settings(corpus_dir=CORPUS, index_dir=tmp_path / "none", embed_model="use"))
