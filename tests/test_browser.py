"""The chat page in a real browser: Debian's chromium driven by Playwright, against a real server on a free loopback
port serving a real index (USE model, Chroma). Skips, saying why, where chromium or Playwright is missing."""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from assistant import indexer
from assistant.api import Assistant
from assistant.settings import Settings

from conftest import REPO, copy_corpus
from test_ui import EN_Q, EO, HOSTILE_Q, ZH, write_hostile

# A file whose name and title are markup too: they show in the sources and the documents table.
HOSTILE_NAME = """<img src=x onerror="window.__pwned='name'">quail.md"""
HOSTILE_NAMED_TEXT = """# <svg onload="window.__pwned='svg-title'"></svg> Quail Fund notice

The Quail Fund notice sets a yearly fee of 9 dollars for each member of the Quail Fund.
"""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
NC = "nc_h92_bill_text_edition3_excerpt.md"
ZH_Q = "北卡罗来纳州的法案允许州财政部长投资哪些数字资产？"
SCREENSHOT = REPO / "docs" / "screenshot.png"
WAIT_MS = 30_000

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium and fonts-noto-cjk (`make setup` does) to run "
                "the browser tests", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed "
                                                              "(pip install playwright; never `playwright install`)")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The chat page as `assistant serve` serves it (assistant.server.create_app mounts it at /); a plain
    `build_app(...).launch()` where the server module is not there."""
    root = tmp_path_factory.mktemp("browser")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use")
    copy_corpus(settings.corpus_dir, [EO, ZH, NC])
    write_hostile(settings.corpus_dir)
    (settings.corpus_dir / HOSTILE_NAME).write_text(HOSTILE_NAMED_TEXT, encoding="utf-8")
    assert indexer.sync(settings, progress=False).failed == []
    assistant = Assistant.open(settings)
    try:
        from assistant.server import ServerThread, create_app
    except ImportError:
        from ui.app import build_app, page_options

        app = build_app(assistant, settings, admin_token="")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        _, url, _ = app.launch(server_name="127.0.0.1", server_port=port, share=False, prevent_thread_lock=True,
                               quiet=True, **page_options())
        yield url.rstrip("/"), assistant
        app.close()
    else:
        server = ServerThread(create_app(assistant, settings, admin_token=""))
        yield server.start(), assistant
        server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, served):
    page = browser.new_page(viewport={"width": 1440, "height": 960})
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(served[0] + "/", wait_until="load")  # never networkidle: the page keeps a stream open
    page.wait_for_selector("#question textarea", timeout=WAIT_MS)
    yield page
    page.close()


def ask(page, question: str, example: bool = False) -> str:
    """Type the question and press Enter (or click its example button); wait for the answer and the new sources;
    the answer's text."""
    bots = page.locator("#chat [data-testid=bot]").count()
    before = page.inner_html("#sources")
    if example:
        page.locator("#examples button", has_text=question).click()
    else:
        page.fill("#question textarea", question)
        page.keyboard.press("Enter")
    page.wait_for_function("n => document.querySelectorAll('#chat [data-testid=bot]').length > n", arg=bots,
                           timeout=WAIT_MS)
    page.wait_for_function("html => document.querySelector('#sources').innerHTML !== html", arg=before,
                           timeout=WAIT_MS)
    return page.locator("#chat [data-testid=bot]").last.inner_text()


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_hostile_text_never_runs_and_follow_ups_work(page, served, tmp_path):
    answer = ask(page, HOSTILE_Q)
    assert re.search(r"\[\d\]", answer)
    sources = page.inner_text("#sources")
    assert "<img src=x onerror=" in sources and "<script>" in sources  # shown as text
    assert "<img src=x onerror=" in answer
    page.locator("#sources details summary").first.click()  # the full document view too
    # A follow-up goes through the page's own history (Gradio 6 message parts) to the assistant.
    assert "5 percent" in ask(page, "And how much of their balance may members put into them?")
    assert "9 dollars" in ask(page, "What yearly fee does the Quail Fund notice set for each member?")
    assert "<svg onload=" in page.inner_text("#sources")  # the markup title, as text
    typed = 'Is <img src=x onerror="window.__pwned=\'typed\'"> *this* a question?'  # markup typed into the chat
    ask(page, typed)
    assert page.locator("#chat [data-testid=user]").last.inner_text().strip() == typed
    page.screenshot(path=str(tmp_path / "hostile-chat.png"))
    page.get_by_role("tab", name="Documents · 文档").click()
    page.wait_for_selector("#documents >> text=Zephyr Pension Board notice", timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
    assert page.evaluate("window.__pwned") is None
    assert page.title() != "pwned" and page.dialogs == []
    assert page.locator("#chat img, #sources img, #documents img").count() == 0
    assert page.locator("#chat script, #sources script, #documents script").count() == 0
    assert page.locator("#chat iframe, #sources iframe, #documents iframe, #chat a[href^=javascript]").count() == 0
    assert page.locator("#documents", has_text="onerror=").count() == 1  # the file name, as text


def test_chat_in_english_and_chinese_with_highlighted_quotes(page, served, tmp_path):
    assistant = served[1]
    for n, (question, doc) in enumerate([(EN_Q, EO), (ZH_Q, NC)], 1):
        # The English one through its example button (click: filled in and asked), the Chinese one typed.
        answer = ask(page, question, example=(n == 1))
        expected = assistant.ask(question)
        assert expected.grounded and re.search(r"\[1\]", answer)
        assert squash(answer).startswith(squash(expected.text.split(" [1]")[0]))
        marks = page.locator("#sources .src-ctx mark")
        assert marks.count() == len(expected.citations)
        assert [squash(t) for t in marks.all_inner_texts()] == [squash(c.quote) for c in expected.citations]
        assert marks.first.evaluate("m => getComputedStyle(m).backgroundColor") != "rgba(0, 0, 0, 0)"
        assert any(c.doc_id == doc for c in expected.citations) or n == 2  # the Chinese one may cite the news article
        page.screenshot(path=str(tmp_path / f"chat-{n}.png"), full_page=True)
    # "Open the whole document at this passage": the full text, scrolled to the marked quote.
    page.locator("#sources details summary").first.click()
    box = page.locator("#sources .src-doc").first
    box.locator("mark").wait_for(state="visible", timeout=WAIT_MS)
    assert box.evaluate("b => { const m = b.querySelector('mark'); const r = m.getBoundingClientRect(), "
                        "q = b.getBoundingClientRect(); return r.top >= q.top - 1 && r.top < q.bottom; }")
    page.locator("#sources details summary").first.click()  # closed again for the picture
    final = tmp_path / "chat-final.png"
    page.screenshot(path=str(final))
    if os.environ.get("ASSISTANT_UPDATE_SCREENSHOT"):  # refresh the README's picture on purpose only
        shutil.copyfile(final, SCREENSHOT)


def test_gradio_client_chat_endpoint(served):
    from gradio_client import Client

    text = Client(served[0] + "/", verbose=False).predict(EN_Q, api_name="/chat")
    answer = served[1].ask(EN_Q)
    assert text.startswith(answer.text) and "\n\nSources:\n[1] " in text
    assert f"[1] {answer.citations[0].title}" in text


def test_a_read_token_server_opens_once_with_the_token_and_then_works(browser, served):
    """The page behind ASSISTANT_READ_TOKEN: refused without it; opened once as /?token=..., it keeps working
    (its own requests and streams carry the cookie)."""
    from assistant.server import ServerThread, create_app

    assistant = served[1]
    server = ServerThread(create_app(assistant, assistant.settings, admin_token="", read_token="page-reader"))
    url = server.start()
    context = browser.new_context(viewport={"width": 1440, "height": 960})
    try:
        page = context.new_page()
        response = page.goto(url + "/", wait_until="load")
        assert response.status == 401 and "ASSISTANT_READ_TOKEN" in page.content()
        page.goto(url + "/?token=page-reader", wait_until="load")
        assert page.url == url + "/"  # the token left the address bar
        page.wait_for_selector("#question textarea", timeout=WAIT_MS)
        answer = ask(page, EN_Q)
        assert re.search(r"\[1\]", answer)
    finally:
        context.close()
        server.stop()
