"""Untrusted users against a real server (uvicorn on a free loopback port, real index): the read token guards every
read, the admin token every change, neither opens the other's door, uploads stay inside the corpus folder, and no
error names a host path."""

from __future__ import annotations

import ast
import shutil

import httpx
import pytest

from assistant import indexer
from assistant.api import Assistant
from assistant.client import AssistantClient
from assistant.errors import AccessDeniedError, NotFoundError
from assistant.server import TOKEN_COOKIE, ServerThread, create_app
from assistant.settings import Settings

from conftest import REPO, copy_corpus

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
EN_Q = "How long does the executive order give the Secretary of Labor to reexamine guidance?"
ADMIN = "admin-7d2e-secret"
READER = "reader-91f0-secret"
READS = [("POST", "/api/ask", {"question": EN_Q}), ("POST", "/api/search", {"query": "Secretary of Labor"}),
         ("GET", "/api/documents", None), ("GET", f"/api/documents/{EO}/text", None), ("GET", "/api/status", None),
         ("GET", "/", None), ("GET", "/config", None), ("GET", "/gradio_api/info", None)]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    root = tmp_path_factory.mktemp("security")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use",
                        read_token=READER, max_file_mb=0.05)
    copy_corpus(settings.corpus_dir, [EO])
    indexer.sync(settings, progress=False)
    server = ServerThread(create_app(Assistant.open(settings), settings, admin_token=ADMIN))
    server.start()
    yield server.url, settings, root
    server.stop()


def call(url, method, path, body=None, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url + path, json=body, headers=headers, timeout=60, **kwargs)


@pytest.mark.parametrize("method, path, body", READS, ids=[f"{m} {p}" for m, p, _ in READS])
def test_every_read_needs_the_read_token(guarded, method, path, body):
    url, _, root = guarded
    for token in (None, "wrong", READER[:-1], READER + "x", "Bearer"):
        r = call(url, method, path, body, token)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (token, r.text)
        assert "ASSISTANT_READ_TOKEN" in r.json()["error"] and str(root) not in r.text
    for token in (READER, ADMIN):  # the admin token reads too
        r = call(url, method, path, body, token)
        assert r.status_code == 200, (token, r.text[:300])


def test_health_and_the_schema_stay_open(guarded):
    url, _, _ = guarded
    assert call(url, "GET", "/healthz").json() == {"status": "ok", "index": True}
    assert "/api/ask" in call(url, "GET", "/openapi.json").json()["paths"]


def test_the_read_token_does_not_change_anything(guarded):
    url, settings, _ = guarded
    before = sorted(p.name for p in settings.corpus_dir.iterdir())
    r = httpx.post(url + "/api/documents", files={"files": ("a.md", b"# A\n\nText here.\n")},
                   headers={"Authorization": f"Bearer {READER}"})
    assert r.status_code == 401 and "admin token" in r.json()["error"]
    assert call(url, "POST", "/api/index", {}, READER).status_code == 401
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before


def test_the_page_opens_once_with_the_token_then_keeps_it_in_a_cookie(guarded):
    url, _, _ = guarded
    with httpx.Client(base_url=url, timeout=60) as browser:
        assert browser.get("/").status_code == 401
        r = browser.get(f"/?token={READER}")
        assert r.status_code == 303 and r.headers["location"] == "/"  # the token leaves the address bar
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{TOKEN_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert browser.get("/").status_code == 200 and browser.get("/config").status_code == 200
        assert browser.post("/api/ask", json={"question": EN_Q}).json()["grounded"]
    with httpx.Client(base_url=url, timeout=60) as other:
        assert other.get("/?token=wrong").status_code == 401
        other.cookies.set(TOKEN_COOKIE, "wrong")
        assert other.get("/").status_code == 401


def test_gradio_client_needs_the_token(guarded):
    from gradio_client import Client

    url, _, _ = guarded
    with pytest.raises(Exception):
        Client(url, verbose=False)
    client = Client(url, verbose=False, headers={"Authorization": f"Bearer {READER}"})
    try:
        assert "180 days" in client.predict(EN_Q, api_name="/chat")
    finally:
        client.close()


def test_python_client_sends_the_read_token(guarded):
    url, _, _ = guarded
    with AssistantClient(url) as anonymous:
        with pytest.raises(AccessDeniedError, match="ASSISTANT_READ_TOKEN"):
            anonymous.ask(EN_Q)
    with AssistantClient(url, read_token=READER) as reader:
        assert reader.ask(EN_Q).grounded and reader.status().documents == 1
        with pytest.raises(AccessDeniedError, match="admin token"):
            reader.sync()


def test_uploads_cannot_follow_a_link_out_of_the_corpus(guarded, tmp_path):
    url, settings, _ = guarded
    outside = tmp_path / "precious.md"
    outside.write_text("# Precious\n\nNot to be overwritten.\n", encoding="utf-8")
    link = settings.corpus_dir / "link.md"
    link.symlink_to(outside)
    try:
        r = httpx.post(url + "/api/documents", files={"files": ("link.md", b"# Evil\n\nOverwrite attempt.\n")},
                       headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
        assert r.status_code == 200, r.text
        (result,) = r.json()["files"]
        assert result["status"] == "refused" and "outside the corpus folder" in result["error"]
        assert outside.read_text(encoding="utf-8") == "# Precious\n\nNot to be overwritten.\n"
        assert str(tmp_path) not in r.text
    finally:
        link.unlink()


def test_errors_never_name_a_host_path(guarded, tmp_path):
    """Deliberate failures whose raw messages carry host paths: the corpus folder gone, a document id that
    climbs out, a body that is not JSON."""
    url, settings, root = guarded
    moved = tmp_path / "moved-corpus"
    shutil.move(settings.corpus_dir, moved)
    try:
        r = call(url, "POST", "/api/index", {}, ADMIN)
        assert r.status_code == 400 and "the corpus folder" in r.json()["error"]
        for response in (r, call(url, "GET", "/api/status", token=READER)):
            assert str(root) not in response.text and "/tmp" not in response.text, response.text
    finally:
        shutil.move(moved, settings.corpus_dir)
    for path in ("/api/documents/..%2F..%2F..%2Fetc%2Fpasswd/text", "/api/documents/%2Fetc%2Fpasswd/text"):
        r = call(url, "GET", path, token=READER)
        assert r.status_code == 404 and "root:" not in r.text
    r = httpx.post(url + "/api/ask", content=b"\x00not json", timeout=60,
                   headers={"Authorization": f"Bearer {READER}", "Content-Type": "application/json"})
    assert r.status_code == 400 and "Traceback" not in r.text


def test_tokens_are_compared_in_constant_time():
    """Every comparison with a token in the server and the page goes through hmac.compare_digest."""
    for module in ("assistant/server.py", "ui/app.py"):
        tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                assert not names & {"token", "admin_token", "given", "read_token"}, (module, ast.unparse(node))
        calls = [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
        assert "hmac.compare_digest" in calls, module


def test_deleting_needs_the_admin_token_and_stays_inside_the_corpus(guarded, tmp_path):
    url, settings, root = guarded
    doc = "to-delete.md"
    (settings.corpus_dir / doc).write_text("# Removable notice\n\nThe removable notice sets a fee of 7 dollars.\n",
                                          encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.md").write_text("# Kept\n\nOutside the corpus.\n", encoding="utf-8")
    (settings.corpus_dir / "linked").symlink_to(outside, target_is_directory=True)
    try:
        with AssistantClient(url, token=ADMIN) as admin:
            assert doc in admin.sync().added
            for token in (None, "wrong", READER):
                r = call(url, "DELETE", f"/api/documents/{doc}", token=token)
                assert r.status_code == 401, (token, r.text)
            assert (settings.corpus_dir / doc).exists()
            for bad in ("..%2Foutside%2Fkept.md", "linked/kept.md", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
                        EO + "x"):
                r = call(url, "DELETE", f"/api/documents/{bad}", token=ADMIN)
                assert r.status_code == 404 and "No file" in r.json()["error"], (bad, r.text)
                assert str(root) not in r.text and str(tmp_path) not in r.text
            assert (outside / "kept.md").exists()
            report = admin.delete(doc)
            assert report.removed == [doc] and not (settings.corpus_dir / doc).exists()
            assert doc not in {d["doc_id"] for d in admin.documents()}
            with pytest.raises(NotFoundError):
                admin.delete(doc)
    finally:
        (settings.corpus_dir / "linked").unlink()


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory):
    """A server whose index does not exist yet: the errors it shows would name the index folder."""
    root = tmp_path_factory.mktemp("unbuilt")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use")
    settings.corpus_dir.mkdir()
    server = ServerThread(create_app(None, settings, admin_token=""))
    server.start()
    yield server.url, root
    server.stop()


def test_without_an_admin_token_the_page_takes_no_files(unbuilt, guarded):
    url, root = unbuilt
    r = httpx.post(url + "/gradio_api/upload", files={"files": ("a.md", b"# A\n\ntext\n")}, timeout=60)
    assert r.status_code == 403 and "ASSISTANT_ADMIN_TOKEN" in r.json()["error"]
    open_url = guarded[0]  # uploads on: Gradio takes the file into its cache for the upload tab
    r = httpx.post(open_url + "/gradio_api/upload", files={"files": ("a.md", b"# A\n\ntext\n")}, timeout=60,
                   headers={"Authorization": f"Bearer {READER}"})
    assert r.status_code == 200, r.text


def test_the_page_and_its_api_name_no_host_path(unbuilt):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url, root = unbuilt
    page = httpx.get(url + "/", timeout=60)
    config = httpx.get(url + "/config", timeout=60)
    assert page.status_code == 200 and config.status_code == 200
    assert "Index unavailable" in config.text  # the status line says so ...
    for response in (page, config):
        assert str(root) not in response.text and "/tmp/" not in response.text  # ... without saying where
    client = Client(url, verbose=False)
    try:
        with pytest.raises(AppError) as err:
            client.predict(EN_Q, api_name="/chat")
    finally:
        client.close()
    assert "index" in str(err.value) and str(root) not in str(err.value) and "/tmp/" not in str(err.value)


def test_messages_shown_remotely_never_name_the_chroma_servers_address():
    from assistant.settings import Settings, path_scrubber

    scrub = path_scrubber(Settings(chroma_url="http://10.1.2.3:8000"))
    message = scrub("Cannot use the Chroma server at http://10.1.2.3:8000 (connection refused); see http://10.1.2.3:8000")
    assert "10.1.2.3" not in message
    assert message.startswith("Cannot use the Chroma server (connection refused)")
