"""Loaders on real files: the shipped corpus, and PDF / Word / HTML / legacy-encoded files generated from text.

Every file here is written by a real tool (reportlab, python-docx, codecs, zipfile) into tmp_path, then read back
through `documents.load` exactly as the indexer does.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
import re
import tracemalloc
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from filemakers import (
    CORPUS,
    corpus_body,
    corpus_paragraphs,
    encrypt_pdf,
    find_loose,
    make_big5_text,
    make_docx,
    make_entity_bomb_docx,
    make_gbk_text,
    make_html,
    make_lying_zip_bomb,
    make_pdf,
    make_utf8_bom_text,
    make_utf16_text,
    make_zip_bomb,
)

from assistant import documents
from assistant.documents import detect_language, discover, load
from assistant.errors import DocumentError
from assistant.types import Document

LIMIT = 20_000_000  # the default max_file_mb, in bytes
EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"
CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir() if p.name != "README.md")
MARKDOWN_FILES = [name for name in CORPUS_FILES if name.endswith(".md")]
FED_REG = "Federal Register / Vol. 90, No. 155 / Presidential Documents"  # a realistic running header (60 chars)

# Traditional Chinese, every character in Big5 (a Big5 file cannot hold 〇 or 爲).
TRADITIONAL = (
    "美國總統於二零二五年八月七日簽署行政命令，允許四零一(k)退休計畫的參與者投資另類資產，包括私募股權、房地產與數位資產。"
    "勞工部須於一百八十天內重新檢視受託人責任的相關指引，並考慮撤銷二零二一年十二月二十一日發布的補充聲明。"
    "市場人士認為，這項政策將為加密貨幣市場帶來新的資金來源，但也有學者警告，退休儲蓄不應承擔過高的風險。\n"
)


def corpus_doc(name: str) -> Document:
    return load(CORPUS / name, CORPUS, LIMIT)


def refused(path: Path, *words: str, max_bytes: int = LIMIT) -> DocumentError:
    """Load must raise DocumentError naming the file, with every word in its reason (case-insensitive)."""
    with pytest.raises(DocumentError) as info:
        load(path, path.parent, max_bytes)
    exc = info.value
    assert exc.path == path.name
    assert str(exc).startswith(f"{path.name}: ")
    for word in words:
        assert word.lower() in exc.reason.lower(), exc.reason
    return exc


def in_furniture(doc: Document, offset: int) -> bool:
    return any(s <= offset < e for s, e in doc.furniture)


# --- the shipped corpus ---


def test_discover_lists_the_corpus_documents_but_not_its_readme():
    found = discover(CORPUS)
    assert [p.name for p in found] == CORPUS_FILES
    assert len(found) == 15
    assert found == sorted(found)


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_corpus_file_loads(name):
    doc = corpus_doc(name)
    data = (CORPUS / name).read_bytes()
    assert doc.id == doc.path == name
    assert doc.format == ("text" if name.endswith(".txt") else "markdown")
    assert doc.content_hash == hashlib.sha256(data).hexdigest()
    assert len(doc.text.strip()) > 500
    assert doc.title and "\n" not in doc.title
    assert re.fullmatch(r"20\d\d-\d\d-\d\d", doc.date)


def _raw_header(name: str) -> dict[str, str]:
    head = (CORPUS / name).read_text(encoding="utf-8").split("\n---\n", 1)[0]
    return dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line)


@pytest.mark.parametrize("name", MARKDOWN_FILES)
def test_front_matter_is_parsed_and_the_body_starts_after_it(name):
    doc = corpus_doc(name)
    header = _raw_header(name)
    assert doc.title == header["title"]
    assert doc.issuer == header["issuing_body"]
    assert doc.source_url == header["source_url"] and doc.source_url.startswith("https://")
    assert doc.text.strip() == corpus_body(name).strip()
    for key in ("title:", "completeness:", "license:", "source_url:"):
        assert key not in doc.text


def test_executive_order_metadata():
    doc = corpus_doc(EO)
    assert doc.title == "Democratizing Access to Alternative Assets for 401(k) Investors (Executive Order)"
    assert doc.date == "2025-08-07"
    assert doc.issuer == "The White House (President Donald J. Trump)"
    assert doc.source_url == (
        "https://www.whitehouse.gov/presidential-actions/2025/08/"
        "democratizing-access-to-alternative-assets-for-401k-investors/"
    )
    assert doc.language == "en"
    assert doc.text.lstrip().startswith("By the authority vested in me as President")


@pytest.mark.parametrize(
    ("name", "date"),
    [
        ("nc_h92_bill_digest_ncleg_excerpt.md", "2025-02-10"),  # "Summaries dated Feb 10 2025 and Mar 5 2025"
        ("nc_h92_bill_text_edition3_excerpt.md", "2025-04-16"),  # "2025-04-16 (edition 3, ...)"
        ("us_dol_newsrelease_2020-06-03_private_equity_information_letter_excerpt.md", "2020-06-03"),
        ("us_genius_act_s1582_summary_introduced.md", "2025-05-01"),  # "(S. 1582 introduced May 1, 2025)"
        (ZH, "2025-08-07"),  # no header: "marsbitPublished on 2025-08-07Last updated on 2025-08-08"
    ],
)
def test_dates_written_in_prose_are_normalized(name, date):
    assert corpus_doc(name).date == date


def _answerable(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r.get("answerable")]


EXTRA_EVAL = Path(__file__).parents[1] / "eval" / "qa-extra.jsonl"  # in the repo, unlike ../shared


@pytest.mark.parametrize("row", _answerable(EXTRA_EVAL), ids=lambda r: r["id"])
def test_eval_evidence_is_found_in_the_document_text(row):
    doc = corpus_doc(row["doc"])
    offset = doc.text.find(row["evidence"])
    assert offset >= 0
    assert not in_furniture(doc, offset)


@pytest.mark.parametrize(
    ("name", "evidence"),
    [  # copied from the dev set (../shared/eval/qa-dev.jsonl), which CI may not have
        (EO, "more than 90 million Americans participate in employer-sponsored defined-contribution plans"),
        (EO, "(iii) holdings in actively managed investment vehicles that are investing in digital assets;"),
        ("us_wh_cea_2025-08-12_retail_access_alternative_investments_summary.md",
         "GDP benefit of up to $35 billion, or 0.12 percent of GDP"),
        ("us_wh_factsheet_2025-07-18_genius_act.md",
         "The GENIUS Act requires 100% reserve backing with liquid assets like U.S. dollars or short-term Treasuries"),
        ("us_congressional_record_2025-07-17_s1582_genius_act_text_excerpt.md",
         "any digital representation of value that is recorded on a cryptographically secured distributed ledger"),
        (ZH, "就意味着约 1,700 亿美元的新增资金流入"),
        (ZH, "联邦住房金融局也要求房利美(Fannie Mae)与房地美(Freddie Mac)将借款人持有的加密资产纳入住房抵押贷款评估体系"),
        (ZH, "批评《天才法案》的监管框架过于宽松"),
    ],
)
def test_dev_set_evidence_is_found_in_the_document_text(name, evidence):
    doc = corpus_doc(name)
    assert evidence in doc.text
    assert not in_furniture(doc, doc.text.index(evidence))


def test_chinese_article_related_reads_trailer_is_furniture():
    doc = corpus_doc(ZH)
    assert doc.format == "text"
    assert doc.title == "加密货币正式进入美国养老金套餐,最大增量入口开闸"
    trailer = doc.text.index("\nRelated Reads\n") + 1
    assert doc.furniture == ((trailer, len(doc.text)),)
    assert doc.text[:trailer].rstrip().endswith("更可能是加密资产真正走向主流金融舞台的关键拐点。")
    assert doc.text.index("DeepSeek") > trailer and doc.text.index("Spot\nFutures") > trailer
    # The trailer is English summaries: counted in, the page would not read as Chinese.
    assert doc.language == "zh"
    assert detect_language(doc.text) != "zh"


# --- PDF ---


def _eo_pages() -> list[str]:
    p = corpus_paragraphs(EO)
    return ["\n".join(p[0:3]), "\n".join(p[6:9]), "\n".join(p[9:14])]


@pytest.fixture(scope="module")
def eo_pdf(tmp_path_factory) -> Document:
    folder = tmp_path_factory.mktemp("pdf")
    make_pdf(folder / "eo.pdf", _eo_pages(), header=FED_REG, footer="Page {n} of 3", title="Executive Order 14330")
    return load(folder / "eo.pdf", folder, LIMIT)


def test_pdf_text_layer_is_extracted_with_page_offsets(eo_pdf):
    doc = eo_pdf
    assert doc.format == "pdf" and doc.id == "eo.pdf"
    assert doc.title == "Executive Order 14330"  # from the PDF's metadata
    assert doc.date == "2000-01-01"  # the CreationDate reportlab writes in invariant mode
    assert doc.language == "en"
    assert len(doc.pages) == 3 and doc.pages[0] == 0
    for number, start in enumerate(doc.pages, 1):
        assert doc.text.startswith(FED_REG, start), f"page {number} does not start at its offset"
    for number, page in enumerate(_eo_pages(), 1):
        end = doc.pages[number] if number < 3 else len(doc.text)
        for paragraph in page.split("\n"):
            offset = find_loose(doc.text, paragraph[:80])
            assert doc.pages[number - 1] <= offset < end, paragraph[:40]
            assert doc.page_at(offset) == number
    assert doc.page_at(0) == 1 and doc.page_at(len(doc.text) - 1) == 3
    assert find_loose(doc.text, "(iii) holdings in actively managed investment vehicles that are investing") > 0


def test_pdf_running_header_and_page_footer_are_furniture(eo_pdf):
    doc = eo_pdf
    spans = [doc.text[s:e] for s, e in doc.furniture]
    assert spans == [FED_REG, "Page 1 of 3", FED_REG, "Page 2 of 3", FED_REG, "Page 3 of 3"]
    for phrase in ("Section 1. Purpose.", "Sec. 2. Policy.", "(v) direct and indirect interests"):
        assert not in_furniture(doc, find_loose(doc.text, phrase))


def test_chinese_pdf_with_cid_font_and_bare_page_numbers(tmp_path):
    paragraphs = corpus_paragraphs(ZH)
    pages = ["\n".join(paragraphs[2:4]), "\n".join(paragraphs[5:7]), "\n".join(paragraphs[9:11])]
    make_pdf(tmp_path / "zh.pdf", pages, header="加密货币正式进入美国养老金套餐", page_numbers=True, title="加密货币与 401(k)")
    doc = load(tmp_path / "zh.pdf", tmp_path, LIMIT)
    assert doc.title == "加密货币与 401(k)"
    assert doc.language == "zh"
    assert len(doc.pages) == 3
    for number, page in enumerate(pages, 1):
        for paragraph in page.split("\n"):
            offset = find_loose(doc.text, paragraph)
            assert offset >= 0, paragraph[:20]
            assert doc.page_at(offset) == number
    spans = [doc.text[s:e] for s, e in doc.furniture]
    assert spans == [part for n in "123" for part in ("加密货币正式进入美国养老金套餐", n)]


@pytest.mark.parametrize("title", [None, "Microsoft Word - EO 14330 final.docx"], ids=["untitled", "word"])
def test_pdf_placeholder_title_is_not_used(tmp_path, title):
    make_pdf(tmp_path / "notitle.pdf", ["\n".join(corpus_paragraphs(EO)[0:2])], title=title)  # None: "untitled"
    doc = load(tmp_path / "notitle.pdf", tmp_path, LIMIT)
    assert doc.title.lower() != "untitled" and "Microsoft" not in doc.title
    assert doc.title.startswith("By the authority vested in me")  # the first line of the text


def test_pdf_title_fallback_skips_the_running_header(tmp_path):
    make_pdf(tmp_path / "fedreg.pdf", _eo_pages(), header=FED_REG, footer="Page {n} of 3")
    assert load(tmp_path / "fedreg.pdf", tmp_path, LIMIT).title.startswith("By the authority vested in me")


# --- Word ---


def test_docx_title_headings_and_table(tmp_path):
    cea = corpus_paragraphs("us_wh_cea_2025-08-12_retail_access_alternative_investments_summary.md")
    paragraphs = [cea[1], cea[2], "Fees and liquidity remain concerns for plan fiduciaries."]
    make_docx(
        tmp_path / "cea.docx",
        "Retail Access to Alternative Investments",
        paragraphs,
        {0: (1, "Executive Summary"), 1: (2, "Findings by cohort"), 2: (1, "Risks")},
        table=[
            ["Cohort", "Gain in lifetime income"],
            ["Two youngest", "about 2.5 percent"],
            ["Two oldest", "0.5 to 1 percent"],
        ],
        table_after=1,
        author="Council of Economic Advisers",
        created=datetime(2025, 8, 12, 9, 30),
    )
    doc = load(tmp_path / "cea.docx", tmp_path, LIMIT)
    assert doc.format == "docx"
    assert doc.title == "Retail Access to Alternative Investments"
    assert doc.issuer == "Council of Economic Advisers"
    assert doc.date == "2025-08-12"
    assert [(h.level, h.label) for h in doc.headings] == [
        (1, "Retail Access to Alternative Investments"),
        (1, "Executive Summary"),
        (2, "Findings by cohort"),
        (1, "Risks"),
    ]
    for h in doc.headings:
        assert doc.text[h.start : h.end] == h.label
    assert "Two youngest\tabout 2.5 percent\nTwo oldest\t0.5 to 1 percent" in doc.text
    # The table sits where it was put: after the second paragraph, before the "Risks" heading.
    assert doc.text.index(cea[2]) < doc.text.index("Two youngest") < doc.headings[3].start
    for paragraph in paragraphs:
        assert paragraph in doc.text


def test_docx_date_in_the_text_wins_over_the_template_creation_date(tmp_path):
    # Made from python-docx's blank template, which carries a 2013 creation date and the author "python-docx".
    make_docx(tmp_path / "memo.docx", "Guidance rescinded",
              ["Washington, May 28, 2025. The department rescinded its 2022 guidance on cryptocurrency."])
    doc = load(tmp_path / "memo.docx", tmp_path, LIMIT)
    assert (doc.date, doc.issuer) == ("2025-05-28", "")
    # No date in the text: the template's creation date is not one either.
    make_docx(tmp_path / "undated.docx", "Note", ["The department reaffirms its neutral stance."])
    assert load(tmp_path / "undated.docx", tmp_path, LIMIT).date == ""
    # A real creation date is used only when the text names none: the file may be made long after the order.
    make_docx(tmp_path / "copy.docx", "Order", ["Signed on August 7, 2025."], created=datetime(2025, 9, 1, 10, 0))
    assert load(tmp_path / "copy.docx", tmp_path, LIMIT).date == "2025-08-07"


def test_docx_core_title_wins_over_the_title_paragraph(tmp_path):
    make_docx(tmp_path / "t.docx", "Draft heading", ["It reaffirms its neutral stance."], core_title="Final Title")
    assert load(tmp_path / "t.docx", tmp_path, LIMIT).title == "Final Title"


# --- HTML ---

NAV = ("Home", "Markets", "Newsletters", "Subscribe now")
HEADER = "THE DAILY LEDGER"
FOOTER = "Copyright 2025 The Daily Ledger. All rights reserved."
ASIDE = "Most read: markets rally on rate-cut hopes"


def _news_page(path: Path, *, wrap_in_article: bool = True, encoding: str = "utf-8") -> Path:
    release = corpus_paragraphs("us_dol_newsrelease_2025-05-28_rescinds_2022_crypto_guidance.md")
    return make_html(
        path,
        title="Labor Department rescinds 2022 crypto guidance | The Daily Ledger",
        heading="US Department of Labor rescinds 2022 guidance on Cryptocurrency in 401(k) Plans",
        sections=[("", release[2:4]), ("What the department said", release[4:])],
        nav=NAV, header=HEADER, footer=FOOTER, aside=ASIDE,
        published="2025-05-28T08:00:00-04:00", wrap_in_article=wrap_in_article, encoding=encoding,
    )


@pytest.mark.parametrize("wrap_in_article", [True, False], ids=["article", "body"])
def test_html_navigation_around_the_article_is_dropped(tmp_path, wrap_in_article):
    doc = load(_news_page(tmp_path / "news.html", wrap_in_article=wrap_in_article), tmp_path, LIMIT)
    release = corpus_paragraphs("us_dol_newsrelease_2025-05-28_rescinds_2022_crypto_guidance.md")
    assert doc.format == "html"
    assert doc.title == "Labor Department rescinds 2022 crypto guidance | The Daily Ledger"
    assert doc.date == "2025-05-28"
    for paragraph in release[2:]:
        assert re.sub(r"\s+", " ", paragraph) in doc.text
    for noise in (*NAV, HEADER, "Daily Ledger. All rights", "Most read", "Sidebar", "SCRIPT-NOISE", "font-family"):
        assert noise not in doc.text
    assert [(h.level, h.label) for h in doc.headings] == [
        (1, "US Department of Labor rescinds 2022 guidance on Cryptocurrency in 401(k) Plans"),
        (2, "What the department said"),
    ]
    for h in doc.headings:
        assert doc.text[h.start : h.end] == h.label
    assert doc.text.startswith(doc.headings[0].label)


def test_html_aria_roles_mark_navigation_too(tmp_path):
    page = """<html><head><title>Order</title></head><body>
    <div role="navigation"><a href="/">Home</a><a href="/briefings">Briefings</a></div>
    <div id="content"><h1>Fact Sheet</h1><p>Today, President Donald J. Trump signed the GENIUS Act into law.</p></div>
    <div role="contentinfo">We use cookies to improve this site.</div></body></html>"""
    (tmp_path / "wh.htm").write_text(page, encoding="utf-8")
    doc = load(tmp_path / "wh.htm", tmp_path, LIMIT)
    assert doc.text == "Fact Sheet\n\nToday, President Donald J. Trump signed the GENIUS Act into law."
    assert doc.title == "Order"


def test_html_article_own_header_keeps_its_headline(tmp_path):
    page = """<html><head><title>Site | Story</title></head><body>
    <header><a href="/">Site</a></header>
    <main><article>
      <header><h1>Labor Department rescinds crypto guidance</h1><p>By Staff Reporter</p></header>
      <p>The department reaffirmed its neutral stance on cryptocurrency in 401(k) plans.</p>
    </article></main></body></html>"""
    (tmp_path / "story.html").write_text(page, encoding="utf-8")
    doc = load(tmp_path / "story.html", tmp_path, LIMIT)
    assert "Labor Department rescinds crypto guidance" in doc.text
    assert [h.label for h in doc.headings] == ["Labor Department rescinds crypto guidance"]


def test_html_page_in_gbk_is_decoded(tmp_path):
    paragraphs = corpus_paragraphs(ZH)[2:5]
    path = make_html(tmp_path / "zh.html", title="加密货币正式进入美国养老金套餐", heading="401(k)是什么?",
                     sections=[("", paragraphs)], nav=("首页", "快讯"), footer="版权所有", encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    doc = load(path, tmp_path, LIMIT)
    assert doc.title == "加密货币正式进入美国养老金套餐"
    assert doc.language == "zh"
    for paragraph in paragraphs:
        assert paragraph in doc.text
    assert "首页" not in doc.text and "版权所有" not in doc.text


# --- encodings ---


def test_gbk_text_is_detected_and_decoded(tmp_path):
    text = corpus_body(ZH).split("Related Reads")[0]
    path = make_gbk_text(tmp_path / "zh_gbk.txt", text)
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    doc = load(path, tmp_path, LIMIT)
    assert doc.text == text
    assert doc.title == "加密货币正式进入美国养老金套餐,最大增量入口开闸"
    assert doc.language == "zh"


def test_big5_text_is_detected_not_assumed_to_be_gbk(tmp_path):
    path = make_big5_text(tmp_path / "tw_big5.txt", TRADITIONAL)
    data = path.read_bytes()
    assert data.decode("gb18030", errors="replace") != TRADITIONAL  # a GBK guess would garble it
    doc = load(path, tmp_path, LIMIT)
    assert doc.text == TRADITIONAL
    assert doc.language == "zh"


def test_short_big5_title_is_decoded(tmp_path):
    path = make_big5_text(tmp_path / "short.txt", "勞工部撤銷加密貨幣指引")
    assert load(path, tmp_path, LIMIT).text == "勞工部撤銷加密貨幣指引"


def test_utf8_bom_markdown_keeps_its_front_matter(tmp_path):
    text = (
        "---\ntitle: GENIUS Act fact sheet\ndate: 2025-07-18\nissuing_body: The White House\n---\n\n"
        "# Overview\n\nToday the President signed the GENIUS Act into law.\n"
    )
    doc = load(make_utf8_bom_text(tmp_path / "bom.md", text), tmp_path, LIMIT)
    assert not doc.text.startswith("\ufeff")
    assert (doc.title, doc.date, doc.issuer) == ("GENIUS Act fact sheet", "2025-07-18", "The White House")
    assert doc.text == "\n# Overview\n\nToday the President signed the GENIUS Act into law.\n"


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_utf16_with_bom_is_decoded(tmp_path, big_endian):
    text = "劳工部撤销 2022 年加密货币指引。\nThe department reaffirms its neutral stance.\n"
    doc = load(make_utf16_text(tmp_path / "u16.txt", text, big_endian=big_endian), tmp_path, LIMIT)
    assert doc.text == text
    assert doc.language == "mixed"


def test_utf16_windows_markdown_front_matter_is_parsed(tmp_path):
    text = (
        "---\r\ntitle: GENIUS Act fact sheet\r\ndate: 2025-07-18\r\n---\r\n\r\n"
        "# Overview\r\n\r\nToday the President signed the GENIUS Act.\r\n"
    )
    doc = load(make_utf16_text(tmp_path / "notepad.md", text), tmp_path, LIMIT)
    assert doc.title == "GENIUS Act fact sheet"
    assert "\r" not in doc.text and "title:" not in doc.text


def test_utf16_control_codes_are_refused_as_binary(tmp_path):
    path = make_utf16_text(tmp_path / "controls.txt", "".join(map(chr, range(1, 32))) * 50)
    refused(path, "binary")


# --- refused input: a DocumentError naming the file and the reason ---


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "empty.md").write_bytes(b"")
    refused(tmp_path / "empty.md", "empty")


def test_whitespace_only_file_is_refused(tmp_path):
    (tmp_path / "blank.txt").write_bytes(b" \n\t\r\n   \n")
    refused(tmp_path / "blank.txt", "empty")
    (tmp_path / "wide.txt").write_bytes("\u3000\n\u3000\u3000\n".encode())  # ideographic spaces only
    exc = refused(tmp_path / "wide.txt")
    assert "empty" in exc.reason or "no text" in exc.reason


def test_front_matter_without_body_is_refused(tmp_path):
    (tmp_path / "header.md").write_text("---\ntitle: Only a header\ndate: 2025-01-01\n---\n\n", encoding="utf-8")
    refused(tmp_path / "header.md", "no text")


def test_binary_bytes_with_txt_extension_are_refused(tmp_path):
    rng = random.Random(7)
    (tmp_path / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(4000))
    refused(tmp_path / "photo.txt", "binary")
    no_nul = bytes(b for b in rng.randbytes(8000) if b)[:4000]  # no NUL byte to give it away
    (tmp_path / "noise.txt").write_bytes(no_nul)
    exc = refused(tmp_path / "noise.txt")
    assert "binary" in exc.reason or "encoding" in exc.reason
    (tmp_path / "controls.txt").write_bytes(bytes(range(1, 32)) * 50)  # valid UTF-8, but control codes
    refused(tmp_path / "controls.txt", "binary")


def test_truncated_pdf_is_refused(tmp_path):
    make_pdf(tmp_path / "full.pdf", _eo_pages())
    data = (tmp_path / "full.pdf").read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) * 3 // 5])
    refused(tmp_path / "cut.pdf", "corrupt or truncated PDF")


def test_pdf_that_is_not_a_pdf_is_refused(tmp_path):
    (tmp_path / "page.pdf").write_bytes(b"<html><body>Saved from a browser</body></html>\n" * 20)
    refused(tmp_path / "page.pdf", "PDF")


def test_encrypted_pdf_is_refused(tmp_path):
    make_pdf(tmp_path / "plain.pdf", _eo_pages())
    encrypt_pdf(tmp_path / "plain.pdf", tmp_path / "locked.pdf", "s3cret")
    refused(tmp_path / "locked.pdf", "encrypted", "password")


def test_pdf_without_text_layer_is_refused(tmp_path):
    make_pdf(tmp_path / "scan.pdf", ["", ""])  # pages with no text, as a scan without OCR
    refused(tmp_path / "scan.pdf", "no text layer")


def test_docx_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "memo.docx").write_text("Plain text saved with a .docx name.\n", encoding="utf-8")
    refused(tmp_path / "memo.docx", "not a zip")


def test_zip_that_is_not_a_word_file_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "archive.docx", "w") as archive:
        archive.writestr("notes.txt", "nothing Word about this " * 20)
    refused(tmp_path / "archive.docx", "not a valid Word")


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    # 300 MiB of zeros in a ~300 kB file; the content types part makes it look like a Word package.
    types = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
    return make_zip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.docx", 300, extra=[("[Content_Types].xml", types)])


def test_zip_bomb_docx_is_refused_without_inflating(zip_bomb, monkeypatch):
    assert zip_bomb.stat().st_size < 2_000_000
    opened = []
    real_open = zipfile.ZipFile.open

    def spy(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)  # observes the archive library; the loader runs unpatched
    tracemalloc.start()
    try:
        exc = refused(zip_bomb, "zip bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "word/document.xml" not in opened
    assert peak < 50_000_000  # the 300 MiB member was never held in memory
    assert "31" in exc.reason  # names the inflated size (~315 MB)


def test_high_ratio_zip_under_the_size_cap_is_refused(tmp_path):
    path = make_zip_bomb(tmp_path / "ratio.docx", 20)  # 20 MiB from ~20 kB: a ratio of ~1000
    refused(path, "zip bomb")


@pytest.mark.parametrize("name", ["notes.rtf", "sheet.xlsx", "LICENSE"])
def test_unsupported_extension_is_refused(tmp_path, name):
    (tmp_path / name).write_text("Some text that would be readable.", encoding="utf-8")
    exc = refused(tmp_path / name, "unsupported file type", ".md", ".pdf", ".docx")
    assert (Path(name).suffix or "(none)") in exc.reason


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.txt"
    path.write_bytes(b"x")
    with open(path, "r+b") as fh:
        fh.truncate(30_000_000)  # sparse: 30 MB on paper, nothing on disk
    exc = refused(path, "limit")
    assert "30" in exc.reason and "20" in exc.reason


def test_size_limit_message_tells_the_sizes_apart(tmp_path):
    path = tmp_path / "just_over.md"
    path.write_bytes(b"x")
    with open(path, "r+b") as fh:
        fh.truncate(LIMIT + 40_000)
    exc = refused(path, "limit")
    sizes = re.findall(r"\d+(?:\.\d+)? ?[kM]B", exc.reason)
    assert len(sizes) == 2 and sizes[0] != sizes[1], exc.reason


def test_missing_file_is_reported_not_raised_as_oserror(tmp_path):
    refused(tmp_path / "gone.md", "cannot read")


# --- discover ---


def test_discover_skips_hidden_files_and_the_corpus_readme(tmp_path):
    files = {
        "README.md": "# About this corpus",
        "b.md": "# B",
        "a.txt": "A",
        ".DS_Store": "junk",
        ".drafts/secret.md": "# draft",
        "sub/.hidden.md": "# hidden",
        "sub/README.md": "# A sub-folder readme is a document",
        "sub/deeper/c.html": "<p>C</p>",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    (tmp_path / "empty_folder.md").mkdir()  # a folder with a document's name is not a file
    found = [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)]
    assert found == ["a.txt", "b.md", "sub/README.md", "sub/deeper/c.html"]
    assert load(tmp_path / "sub/deeper/c.html", tmp_path, LIMIT).id == "sub/deeper/c.html"


def test_discover_skips_the_readme_whatever_its_case(tmp_path):
    (tmp_path / "Readme.txt").write_text("about", encoding="utf-8")
    (tmp_path / "doc.md").write_text("# Doc", encoding="utf-8")
    assert [p.name for p in discover(tmp_path)] == ["doc.md"]


# --- language ---


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("劳工部撤销了二〇二二年的加密货币指引。", "zh"),
        ("Blackstone 正与摩根士丹利合作开发面向 401(k)计划的私募股权投资工具,降低进入门槛以吸引中小投资者。", "zh"),
        ("Blackstone 总裁 Jon Gray 表示,另类资产领域的头部机构将率先受益", "zh"),  # ~85% Chinese
        ("The executive order, known in Chinese as 行政命令, lets 401(k) plans hold private equity and crypto.", "en"),
        ("The order directs the Secretary of Labor to reexamine guidance on alternative assets.", "en"),
        ("富达投资 Fidelity Investments 推出 crypto retirement accounts", "mixed"),
        ("Blackstone 总裁 Jon Gray 表示", "mixed"),
        ("2025 401(k) 5% $35", "en"),  # nothing to go on
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_corpus_languages():
    assert corpus_doc(ZH).language == "zh"
    assert {corpus_doc(n).language for n in MARKDOWN_FILES} == {"en"}


def test_a_lying_zip_bomb_is_cut_at_its_declared_size(tmp_path):
    real = make_docx(tmp_path / "real.docx", "Real", ["A real Word file."])
    with zipfile.ZipFile(real) as archive:
        parts = [(n, archive.read(n)) for n in archive.namelist() if n != "word/document.xml"]
    path = make_lying_zip_bomb(tmp_path / "lying.docx", 64, extra=parts)  # claims 4 kB, holds 64 MiB
    tracemalloc.start()
    try:
        refused(path, "not a valid Word")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


def test_docx_xml_over_the_parse_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    rng = random.Random(3)
    words = " ".join(rng.choice(["fund", "plan", "asset", "notice", "fee", "养老", "基金"]) for _ in range(120_000))
    path = make_docx(tmp_path / "long.docx", "Long report", [words])  # ~600 kB of XML, compressing ~4:1
    monkeypatch.setattr(documents, "MAX_DOCX_XML_BYTES", 300_000)  # the limit, scaled down with the file
    refused(path, "XML inflates to", "read up to")
    monkeypatch.setattr(documents, "MAX_DOCX_XML_BYTES", 3_000_000)
    assert load(path, tmp_path, LIMIT).text.startswith("Long report")


def test_text_longer_than_the_size_limit_allows_is_refused(tmp_path):
    """A compressed file can hold more text than its size: refused beyond as many characters as the limit has
    bytes (the PDF's extraction stops once past it)."""
    pdf = make_pdf(tmp_path / "pages.pdf", ["Policy text on every page. " * 90] * 30)
    docx = make_docx(tmp_path / "long.docx", "Long", ["Policy text in every paragraph. " * 50] * 60)
    for path in (pdf, docx):
        limit = path.stat().st_size + 1_000
        refused(path, f"text is over {limit:,} characters", max_bytes=limit)
        assert len(load(path, tmp_path, LIMIT).text) > limit  # within the default limit it loads


def test_entity_bomb_docx_is_refused(tmp_path):
    refused(make_entity_bomb_docx(tmp_path / "laughs.docx"), "not a valid Word")


@pytest.mark.parametrize("line", [
    b"# a" + b" " * 40_000 + b"b",
    b"# a" + b" \t#" * 14_000 + b"b",
    b"## " + b"#" * 40_000,
])
def test_huge_heading_lines_load_in_linear_time(tmp_path, line):
    """The heading pattern once backtracked quadratically (a 60 kB line of spaces took 15 s): the same line 4 times
    longer must not take anywhere near 16 times the CPU time."""

    (tmp_path / "short.md").write_bytes(line[: len(line) // 4] + b"\n\nBody text.\n")
    (tmp_path / "long.md").write_bytes(line + b"\n\nBody text.\n")
    took = []
    for name in ("short.md", "long.md"):
        start = time.process_time()
        doc = load(tmp_path / name, tmp_path, LIMIT)
        took.append(time.process_time() - start)
        assert doc.headings and doc.headings[0].end <= len(doc.text)
    assert took[1] < 8 * took[0] + 0.2, took


def test_heading_labels_drop_closing_hashes(tmp_path):
    (tmp_path / "h.md").write_text("# Title ##\n\n## C# \n\n### ###\n\nBody.\n", encoding="utf-8")
    assert [h.label for h in load(tmp_path / "h.md", tmp_path, LIMIT).headings] == ["Title", "C", "#"]


def test_a_file_name_that_is_not_utf8_is_refused_by_name(tmp_path):
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.md"), "wb") as fh:
        fh.write(b"# Cafe\n\nA notice.\n")
    (path,) = discover(tmp_path)
    with pytest.raises(DocumentError) as info:
        load(path, tmp_path, LIMIT)
    assert info.value.path == "caf\\xe9.md" and "not valid UTF-8" in info.value.reason
    json.dumps(info.value.path).encode("utf-8")  # reportable
