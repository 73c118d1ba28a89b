"""The HTTP server for real: uvicorn on a free 127.0.0.1 port, a temp corpus and index built with the real (fast)
model, the real chat page mounted at /, the corpus watched. Requests go over the wire with httpx and gradio_client;
`assistant serve` itself is started as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from assistant.server import ServerThread, create_app, safe_filename, ApiError
from assistant.settings import Settings

from conftest import REPO, copy_corpus

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"
TOKEN = "test-admin-token"
EN_Q = "How long does the executive order give the Secretary of Labor to reexamine guidance?"
ZH_Q = "行政命令给劳工部长多少天重新审查指引？"
SETTLE = 0.3

AURORA = (  # a document no copy of the corpus holds: answerable only once uploaded
    "---\ntitle: Aurora Retirement Savings Notice\ndate: 2026-02-10\n---\n\n"
    "Under the Aurora Retirement Savings Notice, employers must enroll new workers in a savings plan within 45 days "
    "of hiring. Workers may opt out in writing at any time. Employers that miss the deadline must contribute 3 "
    "percent of pay for the missed period.\n"
)
AURORA_Q = "How soon must employers enroll new workers under the Aurora Retirement Savings Notice?"
ZEPHYR = (  # dropped into the watched folder
    "---\ntitle: Zephyr Pension Transparency Act\ndate: 2026-01-05\n---\n\n"
    "The Zephyr Pension Transparency Act requires every plan sponsor to publish a table of all plan fees every 90 "
    "days. The table must be posted on a public website and kept there for five years. Sponsors that fail to "
    "publish the table pay a penalty of 500 dollars per day.\n"
)
ZEPHYR_Q = "How often must every plan sponsor publish a table of all plan fees?"


def ui_builder():
    """The real chat page (ui/app.py); a minimal stand-in only while that module does not exist yet."""
    try:
        import ui.app  # noqa: F401
    except ModuleNotFoundError:
        import gradio as gr

        def placeholder(assistant, settings, admin_token=None):
            with gr.Blocks() as blocks:
                gr.Markdown("placeholder")
            return blocks

        return placeholder
    return None


def has_real_ui() -> bool:
    return ui_builder() is None


def start(settings: Settings, assistant=None, **options) -> ServerThread:
    server = ServerThread(create_app(assistant, settings, build_ui=ui_builder(), **options))
    server.start()
    return server


def verified(answer: dict, text_of) -> None:
    """Every citation's quote is the cited document's text at [start:end]."""
    assert answer["citations"]
    for c in answer["citations"]:
        assert text_of(c["doc_id"])[c["start"]:c["end"]] == c["quote"], c


def wait_for(condition, timeout: float = 20.0, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A server over a two-document index (English and Chinese), admin token set, corpus watched."""
    from assistant.api import Assistant
    from assistant.indexer import sync

    root = tmp_path_factory.mktemp("live")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use", max_file_mb=0.05)
    copy_corpus(settings.corpus_dir, [EO, ZH])
    sync(settings, progress=False)
    server = start(settings, Assistant.open(settings), admin_token=TOKEN, watch=True, settle=SETTLE)
    http = httpx.Client(base_url=server.url, timeout=60)
    yield http, settings, root
    http.close()
    server.stop()


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    """A server with no index yet and admin requests switched off."""
    root = tmp_path_factory.mktemp("empty")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use")
    settings.corpus_dir.mkdir()
    server = start(settings, None, admin_token="")
    http = httpx.Client(base_url=server.url, timeout=60)
    yield http, root
    http.close()
    server.stop()


def text_getter(http):
    def text_of(doc_id):
        r = http.get(f"/api/documents/{doc_id}/text")
        assert r.status_code == 200, r.text
        return r.json()["text"]

    return text_of


def ask(http, question, **body) -> dict:
    r = http.post("/api/ask", json={"question": question, **body})
    assert r.status_code == 200, r.text
    return r.json()


# --- answers


def test_english_and_chinese_questions_get_verified_citations(live):
    http, _, _ = live
    for question in (EN_Q, ZH_Q):
        answer = ask(http, question)
        assert answer["grounded"], answer["text"]
        assert "180 days" in answer["text"]
        assert "[1]" in answer["text"]
        assert EO in {c["doc_id"] for c in answer["citations"]}
        verified(answer, text_getter(http))


def test_follow_up_uses_the_history(live):
    http, _, _ = live
    history = [{"role": "user", "content": EN_Q}, {"role": "assistant", "content": "Within 180 days [1]."}]
    answer = ask(http, "And what must the Secretary consider rescinding?", history=history, k=5)
    assert answer["resolved_question"].startswith(EN_Q)


def test_gradio_client_chat_returns_the_answer_with_markers_and_sources(live):
    if not has_real_ui():
        pytest.skip("ui/app.py does not exist yet: the /chat endpoint is registered by ui.app.build_app")
    from gradio_client import Client

    http, _, _ = live
    client = Client(str(http.base_url), verbose=False)
    try:
        text = client.predict(EN_Q, api_name="/chat")
    finally:
        client.close()
    assert "180 days" in text and "[1]" in text
    assert "Executive Order" in text.split("[1]", 2)[-1]  # the sources follow the answer, with their titles


def test_the_chat_page_and_the_openapi_schema_are_served(live):
    http, _, _ = live
    page = http.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/search", "/api/documents", "/api/documents/{doc_id}/text", "/api/index",
            "/api/status", "/healthz"} <= set(paths)
    assert "post" in paths["/api/documents"] and "multipart/form-data" in paths["/api/documents"]["post"]["requestBody"]["content"]
    assert http.get("/healthz").json() == {"status": "ok", "index": True}


def test_search_documents_and_status(live):
    http, _, root = live
    passages = http.post("/api/search", json={"query": "Secretary of Labor guidance", "k": 3}).json()
    assert 1 <= len(passages) <= 3
    text_of = text_getter(http)
    for p in passages:
        assert text_of(p["doc_id"])[p["start"]:p["end"]] == p["text"]
    docs = {d["doc_id"]: d for d in http.get("/api/documents").json()}
    assert {EO, ZH} <= set(docs) and docs[ZH]["language"] == "zh"
    status = http.get("/api/status").json()
    assert status["documents"] >= 2 and status["embed_model"]
    assert str(root) not in str(status)  # folder names, not where the server keeps them


# --- errors


@pytest.mark.parametrize("method, path, body, status, fragment", [
    ("post", "/api/ask", {"question": "   "}, 400, "empty"),
    ("post", "/api/ask", {"question": "x", "filters": {"colour": "red"}}, 400, "Unknown filter colour"),
    ("post", "/api/ask", {"question": "x", "filters": {"language": "fr"}}, 400, "language"),
    ("post", "/api/ask", {}, 400, "question"),
    ("post", "/api/ask", {"question": "x", "k": 0}, 400, "k"),
    ("post", "/api/ask", {"question": "x", "colour": 1}, 400, "colour"),
    ("post", "/api/search", {"query": "x", "filters": {"date_from": "May 2025"}}, 400, "YYYY-MM-DD"),
    ("get", "/api/documents/no-such.md/text", None, 404, "No indexed document"),
    ("get", "/api/nothing-here", None, 404, "No API endpoint"),
])
def test_errors_are_json_with_the_right_status(live, method, path, body, status, fragment):
    http, _, root = live
    r = http.request(method.upper(), path, json=body)
    assert r.status_code == status
    error = r.json()["error"]
    assert fragment in error
    assert str(root) not in r.text and "Traceback" not in r.text


def test_before_the_index_exists_questions_get_503_and_admin_requests_403(empty):
    http, root = empty
    for method, path, body in [("POST", "/api/ask", {"question": EN_Q}), ("POST", "/api/search", {"query": "x"}),
                               ("GET", "/api/documents", None), ("GET", "/api/status", None)]:
        r = http.request(method, path, json=body)
        assert r.status_code == 503, (path, r.text)
        assert "not been built" in r.json()["error"] and str(root) not in r.text
    assert http.get("/healthz").json() == {"status": "ok", "index": False}
    r = http.post("/api/documents", files={"files": ("a.md", b"# A\n\nText.\n")})
    assert r.status_code == 403 and "ASSISTANT_ADMIN_TOKEN" in r.json()["error"]
    assert http.post("/api/index").status_code == 403
    assert list((root / "corpus").iterdir()) == []
    assert http.get("/").status_code == 200  # the page is up, saying the index is unavailable


# --- uploads


def upload(http, files, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.post("/api/documents", files=[("files", f) for f in files], headers=headers)


def test_upload_needs_the_admin_token(live):
    http, settings, _ = live
    for token in (None, "wrong-token", TOKEN + "x"):
        r = upload(http, [("aurora.md", AURORA.encode())], token=token)
        assert r.status_code == 401 and "admin token" in r.json()["error"]
        assert r.headers["www-authenticate"] == "Bearer"
    r = http.post("/api/documents", files={"files": ("aurora.md", AURORA.encode())},
                  headers={"Authorization": TOKEN})  # no "Bearer"
    assert r.status_code == 401
    assert not (settings.corpus_dir / "aurora.md").exists()
    assert http.post("/api/index").status_code == 401


def test_an_uploaded_document_is_indexed_and_answerable(live):
    http, settings, _ = live
    assert not ask(http, AURORA_Q)["grounded"] or all(c["doc_id"] != "aurora.md" for c in ask(http, AURORA_Q)["citations"])
    r = upload(http, [("aurora.md", AURORA.encode()), ("empty.md", b"  \n")])
    assert r.status_code == 200, r.text
    files = {f["filename"]: f for f in r.json()["files"]}
    assert files["aurora.md"]["ok"] and files["aurora.md"]["status"] in ("added", "unchanged")
    assert files["empty.md"] == {"filename": "empty.md", "doc_id": "empty.md", "ok": False, "status": "refused",
                                 "error": "file is empty"}
    assert (settings.corpus_dir / "aurora.md").read_text() == AURORA
    assert not (settings.corpus_dir / "empty.md").exists()  # refused files never enter the corpus
    assert [p.name for p in settings.corpus_dir.iterdir() if p.name.startswith(".")] == []  # no temp files left
    answer = ask(http, AURORA_Q)
    assert answer["grounded"] and answer["citations"][0]["doc_id"] == "aurora.md"
    assert "45 days" in answer["text"]
    verified(answer, text_getter(http))


def test_too_large_and_unsupported_uploads_are_refused_whole(live):
    http, settings, root = live
    before = sorted(p.name for p in settings.corpus_dir.iterdir())
    big = b"# Big\n\n" + b"word " * 12_000  # 60 kB, over the 0.05 MB limit
    r = upload(http, [("ok.md", b"# Fine\n\nText.\n"), ("big.md", big)])
    assert r.status_code == 413 and "over the 0.05 MB limit" in r.json()["error"]
    for name in ("tool.exe", "noextension", "archive.md.zip"):
        r = upload(http, [("ok.md", b"# Fine\n\nText.\n"), (name, b"data")])
        assert r.status_code == 400 and "unsupported file type" in r.json()["error"], name
        assert ".md" in r.json()["error"]  # lists the accepted types
    r = upload(http, [("README.md", b"# Notes\n")])
    assert r.status_code == 400 and "reserved" in r.json()["error"]
    r = http.post("/api/documents", data={"note": "no file"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400 and "No file" in r.json()["error"]
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before
    assert str(root) not in r.text


def test_uploaded_file_names_cannot_leave_the_corpus_folder(live):
    http, settings, root = live
    r = upload(http, [("../evil.md", b"# Evil\n\nThe evil document says hello.\n"),
                      ("..\\..\\windows.md", b"# Windows\n\nBackslashes are path separators too.\n")])
    assert r.status_code == 200, r.text
    saved = sorted(f["doc_id"] for f in r.json()["files"])
    assert saved == ["evil.md", "windows.md"]
    assert (settings.corpus_dir / "evil.md").is_file() and (settings.corpus_dir / "windows.md").is_file()
    assert not (root / "evil.md").exists() and not (settings.corpus_dir.parent.parent / "windows.md").exists()
    assert {"evil.md", "windows.md"} <= {d["doc_id"] for d in http.get("/api/documents").json()}


def test_safe_filename():
    assert safe_filename("../evil.md") == "evil.md"
    assert safe_filename("/etc/passwd.txt") == "passwd.txt"
    assert safe_filename("..\\..\\a.MD") == "a.md"
    assert safe_filename("a\x00b\x1f\u202e.md") == "ab.md"
    assert safe_filename("..hidden.md") == "hidden.md"
    assert safe_filename('a<b>:c?.md') == "a_b__c_.md"
    assert safe_filename("政策 文件.pdf") == "政策 文件.pdf"
    long = safe_filename("政" * 300 + ".docx")
    assert long.endswith(".docx") and len(long.encode()) <= 200
    assert safe_filename(".md") == "md"  # then refused as a file without a known type
    for bad in ("", "..", "../", "\x00\x01", "README.md", "readme.txt"):
        with pytest.raises(ApiError) as err:
            safe_filename(bad)
        assert err.value.status == 400


# --- syncs


def test_index_endpoint_syncs_and_questions_are_answered_during_a_sync(live):
    http, _, _ = live
    report = {}

    def rebuild():
        r = http.post("/api/index", json={"full": True}, headers={"Authorization": f"Bearer {TOKEN}"})
        report.update(r.json(), status=r.status_code)

    sync = threading.Thread(target=rebuild)
    sync.start()
    answers = []
    while sync.is_alive():  # questions keep being answered for as long as the rebuild runs
        answers.append(ask(http, EN_Q))
    sync.join(120)
    assert answers, "no question was answered while the rebuild ran"
    assert all(a["grounded"] for a in answers)
    assert report["status"] == 200 and report["rebuilt"] and report["chunks_total"] > 0
    assert ask(http, EN_Q)["grounded"]


def test_a_file_dropped_into_the_watched_corpus_is_answerable_and_a_deleted_one_stops_being_cited(live):
    http, settings, _ = live

    def cited():
        return {c["doc_id"] for c in ask(http, ZEPHYR_Q)["citations"]}

    assert "zephyr.md" not in cited()
    (settings.corpus_dir / "zephyr.md").write_text(ZEPHYR, encoding="utf-8")
    started = time.monotonic()
    assert wait_for(lambda: "zephyr.md" in cited(), timeout=20), "the dropped file was not indexed"
    assert time.monotonic() - started < 20
    answer = ask(http, ZEPHYR_Q)
    assert answer["grounded"] and "90 days" in answer["text"]
    verified(answer, text_getter(http))

    (settings.corpus_dir / "zephyr.md").unlink()
    assert wait_for(lambda: "zephyr.md" not in cited(), timeout=20), "the deleted file is still cited"
    assert http.get("/api/documents/zephyr.md/text").status_code == 404


# --- `assistant serve`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_builds_the_missing_index_then_serves_on_loopback(tmp_path):
    corpus = copy_corpus(tmp_path / "corpus", [EO])
    port = free_port()
    env = {**os.environ, "ASSISTANT_EMBED_MODEL": "use", "PYTHONUNBUFFERED": "1"}
    env.pop("ASSISTANT_ADMIN_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "serve", "--corpus", str(corpus), "--index", str(tmp_path / "index"),
         "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def up():
            if proc.poll() is not None:
                return True
            try:
                return httpx.get(url + "/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        assert wait_for(up, timeout=120, step=0.5)
        assert proc.poll() is None, proc.stderr.read()
        status = httpx.get(url + "/api/status").json()
        assert status["documents"] == 1
        answer = httpx.post(url + "/api/ask", json={"question": EN_Q}, timeout=60).json()
        assert answer["grounded"]
        assert httpx.get(url + "/").status_code == 200
        listening = _listening(port)  # bound to loopback only
        assert listening and all(addr.startswith("127.0.0.1") for addr in listening), listening
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"serve did not stop within 20 s after Ctrl-C:\n{err}")
    assert proc.returncode == 0, err
    assert f"Serving on http://127.0.0.1:{port}/" in out
    assert "No index yet: building it" in err
    assert (tmp_path / "index").is_dir()


def _listening(port: int) -> list[str]:
    """Local addresses listening on this TCP port (from /proc/net/tcp*)."""
    found = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr, hexport = local.split(":")
            if state != "0A" or int(hexport, 16) != port:
                continue
            if v6:
                found.append("::" if set(addr) == {"0"} else addr)
            else:
                found.append(".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found
