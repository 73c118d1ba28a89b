"""The chat page's handlers, called as plain functions on a real index (real USE model, real Chroma)."""

from __future__ import annotations

import html
import re
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from assistant import indexer
from assistant.api import Assistant
from assistant.errors import QueryError
from assistant.followup import resolve
from assistant.settings import Settings
from ui import app as ui

from conftest import copy_corpus

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"
HOSTILE = "zephyr_board_notice_2024-03-01.md"
# Document text is data: none of this may render or run on the page.
HOSTILE_TEXT = """# Zephyr Pension Board notice <script>window.__pwned = "title"</script>

Date: 2024-03-01

## Decision

The Zephyr Pension Board approved <b>tokenized farmland bonds</b> <img src=x onerror="window.__pwned='quote'"> as an investment option for its members.

<script>window.__pwned = "context"; document.title = "pwned";</script>

Members may allocate at most 5 percent of their balance to the farmland bonds & similar <i>real assets</i>.

Complaints reach the board through [its website](javascript:window.__pwned='link') or the portal <iframe srcdoc="<script>parent.__pwned='iframe'</script>"></iframe> <svg onload="window.__pwned='svg'"></svg> within ten days.
"""
EN_Q = "Which assets does the executive order count as alternative assets?"
ZH_Q = "行政命令给劳工部长多少天重新审查有关指引？"
HOSTILE_Q = "What did the Zephyr Pension Board approve?"
OFF_TOPIC_Q = "What is the capital of France?"
# The only markup the handlers produce; anything else in their output came from a document.
OWN_TAGS = {"div", "span", "mark", "details", "summary", "b", "br", "sup"}


def write_hostile(corpus: Path) -> None:
    (corpus / HOSTILE).write_text(HOSTILE_TEXT, encoding="utf-8")


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """One real index of three documents (English, Chinese, hostile HTML), shared by the read-only tests."""
    root = tmp_path_factory.mktemp("ui")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use")
    copy_corpus(settings.corpus_dir, [EO, ZH])
    write_hostile(settings.corpus_dir)
    report = indexer.sync(settings, progress=False)
    assert report.failed == [] and len(report.added) == 3
    return Assistant.open(settings)


class Tags(HTMLParser):
    def __init__(self, markup: str):
        super().__init__()
        self.tags, self.attrs = [], []
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(name for name, _ in attrs)


def assert_only_own_markup(markup: str):
    parsed = Tags(markup)
    assert set(parsed.tags) <= OWN_TAGS, set(parsed.tags) - OWN_TAGS
    assert not [a for a in parsed.attrs if a.startswith("on")]
    assert set(parsed.attrs) <= {"class"}


def marked_spans(markup: str) -> list[str]:
    return re.findall(r"<mark>(.*?)</mark>", markup, re.S)


# ---------------------------------------------------------------------------------------------------------- chat


def test_english_answer_shows_markers_and_marks_exactly_each_quote(index):
    history, sources = ui.answer_turn(index, EN_Q, [])
    answer = index.ask(EN_Q)
    assert answer.grounded and answer.citations
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert ui.plain_history(history)[0] == {"role": "user", "content": EN_Q}
    reply = history[1]["content"]
    for c in answer.citations:
        assert f'<sup class="cite">[{c.n}]</sup>' in reply
    # Each quote is marked twice (the card's context and the full-document view), escaped, and nothing else is.
    assert sorted(marked_spans(sources)) == sorted(html.escape(c.quote) for c in answer.citations for _ in (1, 2))
    meta = {d["doc_id"]: d for d in index.documents()}
    for c in answer.citations:
        assert html.escape(c.title) in sources and html.escape(c.locator) in sources
        assert meta[c.doc_id]["date"] in sources and html.escape(meta[c.doc_id]["issuer"]) in sources
    assert_only_own_markup(sources)


def test_quote_sits_in_its_surrounding_document_text(index):
    answer = index.ask(EN_Q)
    c = answer.citations[0]
    text = index.document_text(c.doc_id)
    sources = ui.sources_html(answer, index.document_text)
    context = re.search(r'<div class="src-ctx">(.*?)</div>', sources, re.S).group(1)
    before, marked, after = re.split(r"</?mark>", context)
    assert html.unescape(marked) == text[c.start : c.end]
    # Up to 300 characters either side, taken from the document (blank lines collapsed), ellipses where cut.
    plain = lambda s: re.sub(r"\s+", " ", html.unescape(s)).strip(" …")  # noqa: E731
    assert plain(before) and plain(before) in re.sub(r"\s+", " ", text[max(0, c.start - 300) : c.start])
    assert plain(after) and plain(after) in re.sub(r"\s+", " ", text[c.end : c.end + 300])
    # The full view holds the whole (short) document with the quote marked at its place.
    full = re.search(r'<div class="src-doc">(.*?)</div>', sources, re.S).group(1)
    assert html.unescape(re.sub(r"</?mark>", "", full)) == text
    assert html.unescape(full.split("<mark>")[0]) == text[: c.start]


def test_chinese_question_is_answered_with_markers(index):
    history, sources = ui.answer_turn(index, ZH_Q, [])
    assert re.search(r'<sup class="cite">\[1\]</sup>', history[-1]["content"])
    assert "<mark>" in sources and "Not an answer" not in sources


def test_follow_up_passes_the_conversation_to_the_assistant(index):
    class Recording:  # the real assistant; only remembers what the handler hands it
        def __init__(self, inner):
            self.inner, self.calls = inner, []

        def ask(self, question, history=None, **kw):
            self.calls.append((question, history))
            return self.inner.ask(question, history=history, **kw)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    rec = Recording(index)
    history, _ = ui.answer_turn(rec, HOSTILE_Q, [])
    # Gradio 6 hands the history back with content as a list of parts.
    as_gradio = [{"role": m["role"], "content": [{"type": "text", "text": m["content"]}], "metadata": None}
                 for m in history]
    history, _ = ui.answer_turn(rec, "And how much of their balance may members put into them?", as_gradio)
    question, passed = rec.calls[-1]
    assert passed[0] == {"role": "user", "content": HOSTILE_Q}
    assert resolve(question, passed).startswith(HOSTILE_Q)  # the follow-up is searched with the first question
    assert len(history) == 4 and "5 percent" in history[-1]["content"]


def test_hostile_document_text_is_escaped_everywhere(index):
    history, sources = ui.answer_turn(index, HOSTILE_Q, [])
    answer = index.ask(HOSTILE_Q)
    assert answer.grounded and any(c.doc_id == HOSTILE for c in answer.citations)
    for markup in (sources, history[-1]["content"]):
        assert "<script" not in markup and "<img" not in markup and "<b>" not in markup
        assert_only_own_markup(markup)
    assert "&lt;img src=x onerror=" in sources and "&lt;script&gt;" in sources
    # The quote holding the <img> is marked exactly, escaped.
    quote = next(c.quote for c in answer.citations if "onerror" in c.quote)
    assert f"<mark>{html.escape(quote)}</mark>" in sources
    # The chat bubble's text is Markdown-escaped too: the renderer shows it literally.
    assert "\\<" not in history[-1]["content"] and "&lt;img" in history[-1]["content"]
    assert ui.documents_table(index)[-1][0] == 'Zephyr Pension Board notice <script>window.__pwned = "title"</script>'


@pytest.mark.parametrize("text", ["<img src=x onerror=alert(1)> *a* [1](x) \\.md", "C:\\dir\\a_b.md &amp; 5$ ~x~",
                                  "行政命令给劳工部长多少天？", "# heading\n- item\n1. item `code`"])
def test_typed_text_is_shown_literally_and_read_back_exactly(text):
    shown = ui._md(text)
    assert "<" not in shown and not re.search(r"(?<!\\)[*_`\[\]]", shown)
    assert ui._unmd(shown) == text
    history = [{"role": "user", "content": [{"type": "text", "text": shown}]}]
    assert ui.plain_history(history) == [{"role": "user", "content": text}]
    assert ui.plain_history([{"role": "user", "content": text}], shown=False) == [{"role": "user", "content": text}]


def test_abstention_shows_nearest_passages_labelled_as_not_answering(index):
    history, sources = ui.answer_turn(index, OFF_TOPIC_Q, [])
    assert '<span class="no-answer">' in history[-1]["content"] and "[1]" not in history[-1]["content"]
    assert sources.startswith('<div class="abstain"><b>Not an answer.</b>')
    assert "do not answer" in sources and "<mark>" not in sources
    assert sources.count('class="src-card near"') == len(index.ask(OFF_TOPIC_Q).passages) > 0
    assert_only_own_markup(sources)


def test_filters_restrict_the_sources(index):
    assert ui.filters_from([], "", " ", "") is None
    assert ui.filters_from([ZH], "zh", "2025-01-01", "2025-12-31") == {
        "doc_id": [ZH], "language": "zh", "date_from": "2025-01-01", "date_to": "2025-12-31"}
    _, sources = ui.answer_turn(index, ZH_Q, [], doc_ids=[ZH])
    assert "加密货币正式进入美国养老金套餐" in sources and "Democratizing Access" not in sources
    _, sources = ui.answer_turn(index, EN_Q, [], language="en", date_to="2024-12-31")
    assert "Democratizing Access" not in sources  # the order is dated 2025-08-07
    history, sources = ui.answer_turn(index, EN_Q, [], date_from="August 2025")
    assert "must be a date as YYYY-MM-DD" in html.unescape(history[-1]["content"].replace("\\", ""))
    assert sources == ui.SOURCES_PLACEHOLDER


def test_an_over_long_question_is_refused_with_the_limit(index):
    question = "Which assets count?" + "?" * 2001  # 2,020 characters
    history, sources = ui.answer_turn(index, question, [])
    assert 'class="chat-error"' in history[-1]["content"] and sources == ui.SOURCES_PLACEHOLDER
    assert "2,020 characters long; at most 2,000 are read" in history[-1]["content"].replace("\\", "")
    with pytest.raises(QueryError, match="at most 2,000"):
        ui.chat_api(index, question)
    assert ui.answer_turn(index, question[:2000], [])[0][-1]["content"]  # at the limit it is asked


def test_errors_on_the_page_name_no_host_path(settings):
    """The page may be remote: an error naming the index folder shows what it is, not where."""
    from assistant.server import LazyAssistant

    settings.corpus_dir.mkdir(parents=True)
    unbuilt = LazyAssistant(settings)
    line = ui.status_markdown(unbuilt)
    assert line.startswith("Index unavailable") and "the index folder" in line
    history, _ = ui.answer_turn(unbuilt, EN_Q, [])
    for shown in (line, history[-1]["content"]):
        assert str(settings.index_dir) not in shown.replace("\\", "") and "/tmp" not in shown


def test_empty_message_changes_nothing(index):
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert ui.answer_turn(index, "   ", history) == (history, ui.SOURCES_PLACEHOLDER)


def test_chat_api_text_has_markers_then_numbered_sources(index):
    answer = index.ask(EN_Q)
    text = ui.chat_api(index, EN_Q)
    assert text.startswith(answer.text)
    assert "\n\nSources:\n[1] " + answer.citations[0].title in text
    for c in answer.citations:
        assert f"[{c.n}] {c.title} (2025-08-07), {c.locator}" in text
        assert re.sub(r"\s+", " ", c.quote).strip() in text
    off = ui.chat_api(index, OFF_TOPIC_Q)
    assert "Nearest passages (they do not answer the question):" in off and "Sources:" not in off


# ------------------------------------------------------------------------------------------ documents and status


def test_documents_table_and_status(index):
    rows = ui.documents_table(index)
    assert [r[5] for r in rows] == sorted([EO, ZH, HOSTILE])
    eo = next(r for r in rows if r[5] == EO)
    assert eo[:4] == ["Democratizing Access to Alternative Assets for 401(k) Investors (Executive Order)", "2025-08-07",
                      "The White House (President Donald J. Trump)", "en"]
    assert eo[4] == index.documents()[[d["doc_id"] for d in index.documents()].index(EO)]["chunks"] > 0
    assert next(r for r in rows if r[5] == ZH)[3] == "zh"
    status = index.status()
    text = ui.status_markdown(index)
    assert text.startswith(f"**3** documents · **{status.chunks}** chunks · model `{status.embed_model}` · last sync ")
    assert "not indexed yet" not in text
    assert ui.document_choices(index)[1] == (
        "Democratizing Access to Alternative Assets for 401(k) Investors (Executive Order) (2025-08-07)", EO)


# --------------------------------------------------------------------------------------------------------- upload


@pytest.fixture
def small(settings):
    copy_corpus(settings.corpus_dir, [ZH])
    indexer.sync(settings, progress=False)
    return Assistant.open(settings)


def make_file(folder: Path, name: str, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


NEW_DOC = ("# Harbor County retirement plan notice\n\nDate: 2025-02-03\n\n"
           "The Harbor County retirement plan will offer a stable value fund starting in July 2025. "
           "Participants can move up to 10 percent of their savings into the stable value fund each year.\n")


def test_upload_refused_without_an_admin_token(small, settings, tmp_path):
    path = make_file(tmp_path / "up", "harbor.md", NEW_DOC)
    for admin in (None, ""):
        (outcome,) = ui.upload_files(small, settings, [path], "anything", admin)
        assert not outcome.ok and "ASSISTANT_ADMIN_TOKEN" in outcome.detail
    (outcome,) = ui.upload_files(small, settings, [path], "wrong", "s3cret")
    assert not outcome.ok and outcome.detail == "wrong or missing admin token"
    assert not (settings.corpus_dir / "harbor.md").exists()
    assert [d["doc_id"] for d in small.documents()] == [ZH]


def test_upload_with_token_indexes_the_file_and_it_answers(small, settings, tmp_path):
    path = make_file(tmp_path / "up", "harbor.md", NEW_DOC)
    (outcome,) = ui.upload_files(small, settings, [path], " s3cret ", "s3cret")
    assert outcome.ok and outcome.saved_as == "harbor.md" and re.fullmatch(r"indexed, \d+ chunks?", outcome.detail)
    assert (settings.corpus_dir / "harbor.md").read_text(encoding="utf-8") == NEW_DOC
    assert "harbor.md" in [r[5] for r in ui.documents_table(small)]
    answer = small.ask("How much of their savings can Harbor County participants move into the stable value fund?")
    assert answer.grounded and answer.citations[0].doc_id == "harbor.md"
    assert not list(settings.corpus_dir.glob(".upload-*"))  # no partial files left behind
    report = ui.upload_report_markdown([outcome])
    assert report.startswith("- ✓ **harbor\\.md** — indexed, ")
    refused = ui.upload_report_markdown([ui.UploadOutcome("a.exe", "", False, "unsupported file type '.exe'")])
    assert refused == "- ✗ **a\\.exe** — refused: unsupported file type '\\.exe'"


def test_upload_refuses_bad_types_oversize_and_unloadable_files(small, settings, tmp_path):
    up = tmp_path / "up"
    files = [make_file(up, "tool.exe", "MZ not a document"), make_file(up, "notes", "no extension"),
             make_file(up, "empty.md", "   \n"), make_file(up, "README.md", NEW_DOC),
             make_file(up, "fake.pdf", "this is not a PDF")]
    outcomes = ui.upload_files(small, settings, files, "t", "t")
    assert [o.ok for o in outcomes] == [False] * 5
    assert "unsupported file type '.exe'" in outcomes[0].detail and ".docx" in outcomes[0].detail
    assert "unsupported file type '(none)'" in outcomes[1].detail
    assert outcomes[2].detail == "file is empty"
    assert "reserved" in outcomes[3].detail
    assert "pdf" in outcomes[4].detail.lower()
    tiny = settings.model_copy(update={"max_file_mb": 0.0001})  # about 100 bytes
    (outcome,) = ui.upload_files(small, tiny, [make_file(up, "big.md", NEW_DOC)], "t", "t")
    assert not outcome.ok and "over the 0.0001 MB limit" in outcome.detail
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == [ZH]


def test_upload_names_are_sanitized_and_stay_in_the_corpus(small, settings, tmp_path):
    path = make_file(tmp_path / "up", "x.md", NEW_DOC)
    (outcome,) = ui.upload_files(small, settings, [("../../escaped.md", path)], "t", "t")
    assert outcome.ok and outcome.saved_as == "escaped.md"
    assert (settings.corpus_dir / "escaped.md").exists()
    assert not (settings.corpus_dir.parent / "escaped.md").exists()
    assert not (settings.corpus_dir.parent.parent / "escaped.md").exists()
    (outcome,) = ui.upload_files(small, settings, [("..", path)], "t", "t")
    assert not outcome.ok and "empty" in outcome.detail


@pytest.mark.parametrize("name, safe", [
    ("../../etc/passwd.md", "passwd.md"),
    ("C:\\Users\\me\\report.docx", "report.docx"),
    (".hidden.md", "hidden.md"),
    (".md", "md"),  # then refused as a file without a supported extension
    ("bad\x00na\x1bme\u202e.txt", "badname.txt"),
    ('what?<is>"this".md', "what__is__this_.md"),
    ("报告 2025.md", "报告 2025.md"),
    ("a" * 300 + ".html", "a" * 115 + ".html"),
])
def test_safe_filename(name, safe):
    assert ui.safe_filename(name) == safe
    assert len(ui.safe_filename(name)) <= 120


@pytest.mark.parametrize("name", ["", "..", "../", "dir/", "\x00\x01", " . "])
def test_safe_filename_refuses_names_with_nothing_left(name):
    with pytest.raises(ValueError):
        ui.safe_filename(name)


def test_chat_answers_while_an_upload_is_indexing(small, settings, tmp_path):
    # A large upload keeps the sync busy for seconds; questions asked meanwhile are answered from the index as it was.
    sentences = [f"Clause {i}: the Harbor County plan sets rule number {i} for fund {i % 7} in year {2000 + i % 25}."
                 for i in range(800)]
    path = make_file(tmp_path / "up", "harbor_rules.md", "# Harbor rules\n\n" + "\n\n".join(sentences))
    outcomes = []
    worker = threading.Thread(target=lambda: outcomes.extend(ui.upload_files(small, settings, [path], "t", "t")))
    worker.start()
    answered_meanwhile = 0
    while worker.is_alive():
        history, sources = ui.answer_turn(small, "行政命令允许哪些另类资产进入401(k)？", [])
        answered_meanwhile += worker.is_alive() and len(history) == 2
    worker.join()
    assert outcomes[0].ok, outcomes[0].detail
    assert answered_meanwhile >= 1


# --------------------------------------------------------------------------------------------------------- wiring


def test_app_wiring(small, settings, monkeypatch):
    monkeypatch.delenv("ASSISTANT_ADMIN_TOKEN", raising=False)
    app = ui.build_app(small, settings)
    fns = {f.api_name: f for f in app.fns.values()}
    assert fns["chat"].api_visibility == "public"
    assert {n for n, f in fns.items() if f.api_visibility == "public"} == {"chat"}
    # Questions and uploads sit in separate concurrency groups: indexing never queues a question behind it.
    assert fns["chat"].concurrency_id == fns["respond"].concurrency_id == "chat"
    assert fns["upload"].concurrency_id == "upload" and fns["respond"].concurrency_limit >= 1
    config = app.get_config_file()
    files = next(c for c in config["components"] if c["type"] == "file")
    assert files["props"]["interactive"] is False
    assert any("ASSISTANT_ADMIN_TOKEN" in str(c["props"].get("value", "")) for c in config["components"])
    monkeypatch.setenv("ASSISTANT_ADMIN_TOKEN", "t")
    config = ui.build_app(small, settings).get_config_file()
    assert next(c for c in config["components"] if c["type"] == "file")["props"]["interactive"] is True
