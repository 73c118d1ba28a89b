"""The evaluation harness's scoring, on hand-built passages over the real corpus documents."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from assistant import documents
from assistant.errors import AssistantError, QueryError
from assistant.evaluation import QAItem, evaluate, format_report, hits, load_questions, locate, Target
from assistant.types import Answer, Citation, Passage

from conftest import CORPUS, REPO

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"
DOL = "us_dol_newsrelease_2025-05-28_rescinds_2022_crypto_guidance.md"
DIGEST = "nc_h92_bill_digest_ncleg_excerpt.md"

EO_EVIDENCE = "more than 90 million Americans participate in employer-sponsored defined-contribution plans"
ZH_EVIDENCE = "富达投资(Fidelity),管理 5.9 万亿美元资产的行业巨头"
DOL_EVIDENCE = "The 2022 guidance directed plan fiduciaries to exercise “extreme care” before adding cryptocurrency"


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    """doc_id -> Document.text of every shipped document, loaded by the real loaders."""
    out = {}
    for path in documents.discover(CORPUS):
        doc = documents.load(path, CORPUS, 10**8)
        out[doc.id] = doc.text
    return out


def passage(texts: dict[str, str], doc_id: str, start: int, end: int, score: float = 1.0) -> Passage:
    return Passage(doc_id, doc_id, doc_id, "", texts[doc_id][start:end], start, end, score)


def span_of(texts: dict[str, str], doc_id: str, evidence: str) -> tuple[int, int]:
    start = texts[doc_id].index(evidence)
    return start, start + len(evidence)


def fillers(texts: dict[str, str], doc_id: str, avoid: tuple[int, int], n: int, size: int = 40) -> list[Passage]:
    """n passages of doc_id that do not touch the avoided span: real text, never a hit."""
    out, pos = [], 0
    while len(out) < n:
        if pos + size > len(texts[doc_id]):
            raise AssertionError("document too short for fillers")
        if pos + size <= avoid[0] or pos >= avoid[1]:
            out.append(passage(texts, doc_id, pos, pos + size, score=0.5))
        pos += size
    return out


def item(id_: str, question: str, lang: str = "en", **fields) -> QAItem:
    fields.setdefault("answerable", fields.get("doc") is not None)
    return QAItem(id=id_, question=question, lang=lang, **fields)


def write_jsonl(path, rows) -> str:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return str(path)


def run(items, ranking, texts, ask=None, **kwargs) -> dict:
    """Evaluate with a search that returns ranking[question] (content-dependent: each question gets its own list)."""
    return evaluate(
        lambda question, k: ranking.get(question, [])[:k], ask, texts.get, items, warmup=False, **kwargs
    )


# --- the hit rule ---


def test_half_overlap_boundary(corpus):
    start, end = span_of(corpus, EO, EO_EVIDENCE)
    length = end - start  # 91: odd, so "at least half" means 46 characters
    assert length % 2 == 1
    need = length // 2 + 1
    target = Target(item("t", "q", doc=EO, evidence=EO_EVIDENCE), EO, start, end)
    assert hits(passage(corpus, EO, start - 100, start + need), target)
    assert not hits(passage(corpus, EO, start - 100, start + need - 1), target)
    assert hits(passage(corpus, EO, end - need, end + 100), target)
    assert not hits(passage(corpus, EO, end - need + 1, end + 100), target)
    # Even length: exactly half the evidence is enough, one character less is not.
    zh_evidence = "虽然 9 月缩减至 1.04 亿美元"
    zs, ze = span_of(corpus, ZH, zh_evidence)
    assert (ze - zs) == 18
    zh_target = Target(item("z", "q", doc=ZH, evidence=zh_evidence), ZH, zs, ze)
    assert hits(passage(corpus, ZH, zs + 9, ze + 50), zh_target)
    assert not hits(passage(corpus, ZH, zs + 10, ze + 50), zh_target)
    assert hits(passage(corpus, ZH, zs - 50, zs + 9), zh_target)
    assert not hits(passage(corpus, ZH, zs - 50, zs + 8), zh_target)
    # The same offsets in another document are not a hit.
    other = Passage(DOL, DOL, "", "", "", start - 100, start + need, 1.0)
    assert not hits(other, target)

    q = "How many Americans are in defined-contribution plans?"
    items = [item("eo", q, doc=EO, evidence=EO_EVIDENCE)]
    just_enough = run(items, {q: [passage(corpus, EO, start + length - need, end + 30)]}, corpus)
    one_short = run(items, {q: [passage(corpus, EO, start + length - need + 1, end + 30)]}, corpus)
    assert just_enough["overall"]["recall_at_1"] == 1.0
    assert one_short["overall"]["recall_at_1"] == 0.0
    assert one_short["misses"][0]["missed"] == ["r@1", "r@5", "r@10"]


def test_mrr_and_recall_depend_on_rank(corpus):
    start, end = span_of(corpus, EO, EO_EVIDENCE)
    hit = passage(corpus, EO, start - 10, end + 10)
    noise = fillers(corpus, EO, (start, end), 11)
    q3, q7, q11 = "rank three?", "rank seven?", "rank eleven?"
    ranking = {
        q3: noise[:2] + [hit] + noise[2:9],
        q7: noise[:6] + [hit] + noise[6:9],
        q11: noise[:10] + [hit],
    }
    items = [item(str(i), q, doc=EO, evidence=EO_EVIDENCE) for i, q in enumerate([q3, q7, q11])]
    result = evaluate(lambda q, k: ranking[q], None, corpus.get, items, warmup=False)
    overall = result["overall"]
    assert overall["targets"] == 3
    assert overall["recall_at_1"] == 0
    assert overall["recall_at_5"] == pytest.approx(1 / 3)
    assert overall["recall_at_10"] == pytest.approx(2 / 3)
    assert overall["mrr_at_10"] == pytest.approx((1 / 3 + 1 / 7 + 0) / 3)
    ranks = {m["id"]: m["targets"][0]["rank"] for m in result["misses"]}
    assert ranks == {"0": 3, "1": 7, "2": None}


def test_two_document_item_counts_two_targets(corpus):
    zs, ze = span_of(corpus, ZH, ZH_EVIDENCE)
    ds, de = span_of(corpus, DOL, DOL_EVIDENCE)
    q_one, q_both = "only the Chinese one", "both"
    ranking = {
        q_one: [passage(corpus, ZH, zs, ze)] + fillers(corpus, DOL, (ds, de), 4),
        q_both: [passage(corpus, DOL, ds, de), passage(corpus, ZH, zs - 5, ze)],
    }
    fields = dict(doc=ZH, evidence=ZH_EVIDENCE, doc2=DOL, evidence2=DOL_EVIDENCE, cross_lingual=True)
    items = [item("one", q_one, **fields), item("both", q_both, **fields)]
    result = run(items, ranking, corpus)
    assert result["overall"]["targets"] == 4
    assert result["overall"]["recall_at_1"] == pytest.approx(2 / 4)  # only one passage can sit at rank 1
    assert result["overall"]["recall_at_5"] == pytest.approx(3 / 4)
    assert result["overall"]["mrr_at_10"] == pytest.approx((1 + 0 + 1 + 1 / 2) / 4)
    assert result["cross_lingual"]["recall_at_5"] == pytest.approx(3 / 4)
    by_id = {m["id"]: m for m in result["misses"]}
    assert f"r@5 ({DOL})" in by_id["one"]["missed"] and not any(ZH in m for m in by_id["one"]["missed"])
    assert by_id["both"]["missed"] == [f"r@1 ({ZH})"]


def test_language_and_cross_lingual_splits(corpus):
    es, ee = span_of(corpus, EO, EO_EVIDENCE)
    zs, ze = span_of(corpus, ZH, ZH_EVIDENCE)
    q_en, q_zh, q_x = "How many participate?", "富达管理多少资产?", "How much does Fidelity manage?"
    ranking = {
        q_en: [passage(corpus, EO, es, ee)],
        q_zh: fillers(corpus, ZH, (zs, ze), 3) + [passage(corpus, ZH, zs, ze)],  # rank 4
        q_x: fillers(corpus, ZH, (zs, ze), 10),  # missed
    }
    items = [
        item("en", q_en, "en", doc=EO, evidence=EO_EVIDENCE),
        item("zh", q_zh, "zh", doc=ZH, evidence=ZH_EVIDENCE),
        item("x", q_x, "en", doc=ZH, evidence=ZH_EVIDENCE, cross_lingual=True),
    ]
    result = run(items, ranking, corpus)
    assert result["by_lang"]["en"]["recall_at_5"] == 0.5
    assert result["by_lang"]["en"]["mrr_at_10"] == 0.5
    assert result["by_lang"]["zh"]["recall_at_1"] == 0.0
    assert result["by_lang"]["zh"]["recall_at_5"] == 1.0
    assert result["by_lang"]["zh"]["mrr_at_10"] == 0.25
    assert result["cross_lingual"]["targets"] == 1 and result["cross_lingual"]["recall_at_10"] == 0.0
    assert result["overall"]["recall_at_5"] == pytest.approx(2 / 3)


# --- answers: citations, verification, abstention ---


def citation(texts, doc_id, start, end, n=1, quote=None) -> Citation:
    return Citation(n, doc_id, doc_id, doc_id, "", texts[doc_id][start:end] if quote is None else quote, start, end, 0.9)


def test_citation_hits_verification_and_abstention(corpus):
    es, ee = span_of(corpus, EO, EO_EVIDENCE)
    zs, ze = span_of(corpus, ZH, ZH_EVIDENCE)
    q_good, q_wrong, q_refused = "How many Americans?", "富达投资管理多少资产?", "Fidelity assets?"
    q_senate, q_fee = "Final NC Senate vote on H92?", "Fidelity crypto fee?"
    answers = {
        # cites the evidence sentence
        q_good: Answer(q_good, "…", True, (citation(corpus, EO, es - 20, ee + 5),)),
        # cites the right document away from the evidence, and a quote that does not match its span
        q_wrong: Answer(q_wrong, "…", True, (
            citation(corpus, ZH, 0, 30),
            citation(corpus, ZH, 100, 140, n=2, quote="富达投资管理五点九万亿"),
        )),
        q_refused: Answer(q_refused, "not in the documents", False),  # an answerable question refused
        q_senate: Answer(q_senate, "not in the documents", False),  # rightly refused
        q_fee: Answer(q_fee, "…", True, (citation(corpus, ZH, zs, ze),)),  # answered, though unanswerable
    }
    items = [
        item("good", q_good, doc=EO, evidence=EO_EVIDENCE),
        item("wrong", q_wrong, "zh", doc=ZH, evidence=ZH_EVIDENCE),
        item("refused", q_refused, doc=ZH, evidence=ZH_EVIDENCE, cross_lingual=True),
        item("senate", q_senate),
        item("fee", q_fee),
    ]
    result = run(items, {}, corpus, ask=lambda question, k: answers[question])
    assert result["overall"]["citation_hit_rate"] == pytest.approx(1 / 3)
    assert result["by_lang"]["zh"]["citation_hit_rate"] == 0.0
    assert result["by_lang"]["en"]["citation_hit_rate"] == 0.5
    assert result["abstention"]["refused_unanswerable_rate"] == 0.5
    assert result["abstention"]["refused_answerable_rate"] == pytest.approx(1 / 3)
    assert result["citations"] == 4
    assert result["verified_citation_rate"] == 0.75
    assert [(c["id"], c["start"]) for c in result["unverified_citations"]] == [("wrong", 100)]
    missed = {m["id"]: m["missed"] for m in result["misses"]}
    assert "citation" in missed["wrong"] and "citation" not in missed.get("good", [])
    assert "refused an answerable question" in missed["refused"]
    assert missed["fee"] == ["answered an unanswerable question"]
    assert "senate" not in missed
    assert result["median_latency_ms"]["ask"] >= 0


def test_without_ask_citation_and_abstention_are_not_scored(corpus):
    es, ee = span_of(corpus, EO, EO_EVIDENCE)
    items = [item("a", "q?", doc=EO, evidence=EO_EVIDENCE), item("u", "unanswerable?")]
    result = run(items, {"q?": [passage(corpus, EO, es, ee)]}, corpus)
    assert result["overall"]["citation_hit_rate"] is None
    assert result["abstention"]["refused_unanswerable_rate"] is None
    assert result["verified_citation_rate"] is None
    assert result["median_latency_ms"]["ask"] is None
    assert result["overall"]["recall_at_1"] == 1.0 and result["n"] == 2


def test_passages_whose_text_does_not_match_their_span_are_counted(corpus):
    es, ee = span_of(corpus, EO, EO_EVIDENCE)
    good = passage(corpus, EO, es, ee)
    shifted = Passage(EO, EO, "", "", good.text, es + 3, ee + 3, 0.9)
    result = run([item("a", "q?", doc=EO, evidence=EO_EVIDENCE)], {"q?": [good, shifted]}, corpus)
    assert result["verified_passage_rate"] == 0.5


# --- locating evidence ---


def test_whitespace_and_full_width_evidence_is_mapped_back_to_exact_offsets(corpus):
    # Collapsed whitespace: the document has a blank line between title and date.
    written = "rescinds 2022 guidance on Cryptocurrency in 401(k) Plans 05/28/2025 08:00 AM EDT"
    exact = "rescinds 2022 guidance on Cryptocurrency in 401(k) Plans\n\n05/28/2025 08:00 AM EDT"
    assert written not in corpus[DOL]
    assert locate(written, corpus[DOL]) == span_of(corpus, DOL, exact)

    # Full-width punctuation and digits in the evidence, half-width in the document.
    full_width = "富达投资（Fidelity），管理 ５.９ 万亿美元资产的行业巨头"
    assert full_width not in corpus[ZH]
    assert locate(full_width, corpus[ZH]) == span_of(corpus, ZH, ZH_EVIDENCE)

    # The document side normalizes too: its one-character "…" is NFKC "...", and its blank line one space.
    typed = "not to exceed 10% o [...] [Stored excerpt ends here"
    start = corpus[DIGEST].index("not to exceed 10% o [")
    end = corpus[DIGEST].index("[Stored excerpt ends here") + len("[Stored excerpt ends here")
    assert "…" in corpus[DIGEST][start:end]
    assert locate(typed, corpus[DIGEST]) == (start, end)

    # Scored through those offsets: a passage covering the located evidence hits it.
    q = "What did the 2022 release date say?"
    s, e = span_of(corpus, DOL, exact)
    result = run([item("d", q, doc=DOL, evidence=written)], {q: [passage(corpus, DOL, s, e)]}, corpus)
    assert result["unlocated"] == [] and result["overall"]["recall_at_1"] == 1.0


def test_combining_marks_and_compatibility_forms_in_the_document(corpus):
    # A document typed with a decomposed accent (e + U+0301) and a full-width space; the evidence precomposed.
    head = corpus[EO][:200]
    text = head + "The Cafe\u0301\u3000Society memo:\n  " + corpus[EO][200:]
    start = len(head) + len("The ")
    end = text.index("memo:") + len("memo:")
    assert locate("Café Society memo:", text) == (start, end)
    assert locate("Cafe Society memo:", text) is None  # the accent is not dropped, only normalized


def test_ambiguous_file_name_is_unlocated(corpus):
    texts = {"2024/" + EO: corpus[EO], "2025/" + EO: corpus[EO]}
    items = [item("a", "q?", doc=EO, evidence=EO_EVIDENCE)]
    result = run(items, {}, texts, doc_ids=list(texts))
    assert result["overall"]["targets"] == 0
    assert "several documents" in result["unlocated"][0]["reason"]


def test_unlocated_evidence_is_reported_not_scored(corpus):
    es, ee = span_of(corpus, EO, EO_EVIDENCE)
    q = "two evidences, one of them wrong"
    items = [
        item("half", q, doc=EO, evidence=EO_EVIDENCE, doc2=DOL, evidence2="a sentence no document contains"),
        item("gone", "about a missing file", doc="not_in_corpus.md", evidence=EO_EVIDENCE),
    ]
    result = run(items, {q: [passage(corpus, EO, es, ee)]}, corpus)
    assert result["overall"]["targets"] == 1
    assert result["overall"]["recall_at_1"] == 1.0  # neither a miss nor a hit from the unlocated ones
    assert [(u["id"], u["doc"]) for u in result["unlocated"]] == [("half", DOL), ("gone", "not_in_corpus.md")]
    assert result["unlocated"][0]["evidence"] == "a sentence no document contains"
    assert "not in the index" in result["unlocated"][1]["reason"]
    assert result["misses"] == []


def test_file_names_match_doc_ids_in_subfolders(corpus):
    texts = {"policies/" + EO: corpus[EO], "news/" + ZH: corpus[ZH]}
    es, ee = span_of(corpus, EO, EO_EVIDENCE)
    q = "How many Americans?"
    hit = Passage("policies/" + EO, "policies/" + EO, "", "", corpus[EO][es:ee], es, ee, 1.0)
    items = [item("a", q, doc=EO, evidence=EO_EVIDENCE)]
    with_ids = run(items, {q: [hit]}, texts, doc_ids=list(texts))
    assert with_ids["overall"]["recall_at_1"] == 1.0 and with_ids["unlocated"] == []
    without_ids = run(items, {q: [hit]}, texts)
    assert without_ids["overall"]["targets"] == 0 and len(without_ids["unlocated"]) == 1


# --- question files ---


def test_load_questions_reads_the_dev_set_format(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [
        {"id": "a1", "question": "How many?", "lang": "en", "answer": "90 million", "doc": EO,
         "evidence": EO_EVIDENCE, "answerable": True, "cross_lingual": False, "type": "single_doc"},
        "",
        {"id": "u1", "question": "Senate vote?", "lang": "en", "answer": "n/a", "doc": None, "answerable": False,
         "cross_lingual": False, "type": "unanswerable"},
        {"id": "t1", "question": "两份文件?", "lang": "zh", "doc": ZH, "evidence": ZH_EVIDENCE, "doc2": DOL,
         "evidence2": DOL_EVIDENCE, "answerable": True, "cross_lingual": True, "type": "two_doc"},
    ])
    items = load_questions(path)
    assert [i.id for i in items] == ["a1", "u1", "t1"]
    assert [i.line for i in items] == [1, 3, 4]
    assert items[1].answerable is False and items[1].evidences == ()
    assert items[2].evidences == ((ZH, ZH_EVIDENCE), (DOL, DOL_EVIDENCE))
    with pytest.raises(Exception):
        items[0].question = "changed"  # frozen


def test_shipped_question_files_load():
    for path in [REPO / "eval" / "qa-dev.jsonl", REPO / "eval" / "qa-extra.jsonl"]:
        if path.exists():
            items = load_questions(path)
            assert items and all(i.lang in ("en", "zh") for i in items)


GOOD = {"id": "g", "question": "How many?", "lang": "en", "doc": EO, "evidence": EO_EVIDENCE, "answerable": True}


@pytest.mark.parametrize("bad, message", [
    ('{"id": "b", "question": "broken', "not valid JSON"),
    ('["a list"]', "expected a JSON object"),
    ({"id": "b", "lang": "en", "answerable": False}, "'question'"),
    ({"id": "b", "question": "q", "lang": "en", "answerable": True, "doc": EO}, "needs 'doc' and 'evidence'"),
    ({**GOOD, "id": "b", "answerable": "yes"}, "'answerable' must be true or false"),
    ({**GOOD, "id": "b", "doc2": DOL}, "'doc2' and 'evidence2' go together"),
    ({**GOOD, "id": "b", "evidence": "   "}, "'evidence' must be a non-empty string"),
    ({**GOOD}, "duplicate id 'g'"),
])
def test_malformed_line_names_its_line(tmp_path, bad, message):
    path = write_jsonl(tmp_path / "qa.jsonl", [GOOD, "", bad])
    with pytest.raises(QueryError) as info:
        load_questions(path)
    assert "qa.jsonl:3:" in str(info.value)
    assert message in str(info.value)
    assert isinstance(info.value, AssistantError)


def test_missing_or_empty_question_file(tmp_path):
    with pytest.raises(QueryError, match="not found"):
        load_questions(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(QueryError, match="no questions"):
        load_questions(tmp_path / "empty.jsonl")


# --- report and import hygiene ---


def test_report_lists_rows_and_misses(corpus):
    zs, ze = span_of(corpus, ZH, ZH_EVIDENCE)
    q = "富达投资管理多少资产?"
    items = [item("zh1", q, "zh", doc=ZH, evidence=ZH_EVIDENCE), item("u", "unanswerable?")]
    result = run(items, {q: fillers(corpus, ZH, (zs, ze), 3) + [passage(corpus, ZH, zs, ze)]}, corpus)
    report = format_report(result)
    for row in ("overall", "en", "zh", "cross-lingual", "MRR@10", "cite-hit"):
        assert row in report
    zh_row = next(line for line in report.splitlines() if line.startswith("zh "))
    assert zh_row.split()[1:6] == ["1", "0.00", "1.00", "1.00", "0.25"]
    assert "zh1" in report and "r@1" in report and "rank 4" in report


def test_evaluation_does_not_import_heavy_frameworks():
    code = (
        "import sys, assistant.evaluation; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'llama_index', 'chromadb', 'torch', "
        "'sentence_transformers'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
