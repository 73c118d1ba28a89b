"""AssistantClient against a real server (uvicorn on a free 127.0.0.1 port, real model and index): the same
dataclasses as the in-process Assistant, and clear exceptions."""

from __future__ import annotations

import socket

import pytest

from assistant.client import AssistantClient, UploadResult
from assistant.errors import (
    AccessDeniedError,
    IndexMissingError,
    IndexUnavailableError,
    NotFoundError,
    QueryError,
    ServerUnavailableError,
    UploadError,
    UploadTooLargeError,
)
from assistant.settings import Settings
from assistant.types import Answer, Citation, FailedFile, IndexStatus, Passage, SyncReport

from conftest import copy_corpus
from test_server import AURORA, AURORA_Q, EN_Q, EO, TOKEN, ZH, ZH_Q, start


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server started before any index exists; the client's sync builds it (the server opens it then)."""
    root = tmp_path_factory.mktemp("client")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use", max_file_mb=0.05)
    copy_corpus(settings.corpus_dir, [EO, ZH])
    server = start(settings, None, admin_token=TOKEN)
    with AssistantClient(server.url, token=TOKEN) as admin:
        report = admin.sync()
    assert isinstance(report, SyncReport) and sorted(report.added) == sorted([EO, ZH]) and report.rebuilt
    yield server.url, settings
    server.stop()


@pytest.fixture
def client(served):
    with AssistantClient(served[0]) as c:
        yield c


@pytest.fixture
def admin(served):
    with AssistantClient(served[0], token=TOKEN) as c:
        yield c


def assert_verified(answer: Answer, client: AssistantClient) -> None:
    assert answer.citations
    for c in answer.citations:
        assert isinstance(c, Citation)
        assert client.document_text(c.doc_id)[c.start:c.end] == c.quote


def test_answers_in_both_languages_are_the_in_process_answers(client, served):
    from assistant.api import Assistant

    local = Assistant.open(served[1])
    for question in (EN_Q, ZH_Q):
        answer = client.ask(question)
        assert isinstance(answer, Answer) and isinstance(answer.citations, tuple)
        assert all(isinstance(p, Passage) for p in answer.passages)
        assert answer.grounded and "180 days" in answer.text and "[1]" in answer.text
        assert EO in {c.doc_id for c in answer.citations}
        assert_verified(answer, client)
        assert answer == local.ask(question)  # same answer, same citations, over HTTP or in process


def test_search_documents_and_status(client):
    passages = client.search("Secretary of Labor guidance", k=3)
    assert passages and all(isinstance(p, Passage) for p in passages) and len(passages) <= 3
    assert client.document_text(passages[0].doc_id)[passages[0].start:passages[0].end] == passages[0].text
    assert {EO, ZH} <= {d["doc_id"] for d in client.documents()}
    status = client.status()
    assert isinstance(status, IndexStatus) and status.documents >= 2 and status.embed_model
    assert client.health() == {"status": "ok", "index": True}


def test_bad_requests_raise_clear_errors(client):
    with pytest.raises(QueryError, match="empty"):
        client.ask("   ")
    with pytest.raises(QueryError, match="Unknown filter"):
        client.search("x", filters={"colour": "red"})
    with pytest.raises(NotFoundError, match="No indexed document"):
        client.document_text("no/such.md")


def test_upload_and_sync(client, admin, served, tmp_path):
    _, settings = served
    doc = tmp_path / "aurora.md"
    doc.write_text(AURORA, encoding="utf-8")
    with pytest.raises(AccessDeniedError, match="admin token"):
        client.upload([doc])
    with pytest.raises(AccessDeniedError):
        AssistantClient(served[0], token="wrong").sync()

    result = admin.upload([doc])
    assert isinstance(result, UploadResult) and result.ok
    assert result.files[0].doc_id == "aurora.md" and result.files[0].status == "added"
    assert isinstance(result.sync, SyncReport) and result.sync.added == ["aurora.md"]
    answer = client.ask(AURORA_Q)
    assert answer.grounded and answer.citations[0].doc_id == "aurora.md"
    assert_verified(answer, client)

    big = tmp_path / "big.md"
    big.write_bytes(b"# Big\n\n" + b"word " * 12_000)
    with pytest.raises(UploadTooLargeError, match="limit"):
        admin.upload([big])
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    with pytest.raises(UploadError, match="unsupported file type"):
        admin.upload([exe])
    with pytest.raises(UploadError, match="Cannot read"):
        admin.upload([tmp_path / "missing.md"])

    (settings.corpus_dir / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (settings.corpus_dir / "aurora.md").unlink()
    report = admin.sync()
    assert report.removed == ["aurora.md"]
    assert report.failed and isinstance(report.failed[0], FailedFile) and report.failed[0].path == "broken.pdf"
    (settings.corpus_dir / "broken.pdf").unlink()
    assert admin.sync().failed == []


def test_server_without_index_or_admin_token(tmp_path):
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", embed_model="use")
    settings.corpus_dir.mkdir()
    server = start(settings, None, admin_token="")
    try:
        with AssistantClient(server.url, token=TOKEN) as c:
            with pytest.raises(IndexUnavailableError, match="not been built") as err:
                c.ask(EN_Q)
            assert isinstance(err.value, IndexMissingError)  # `except IndexMissingError` works as in process
            with pytest.raises(IndexMissingError):
                c.status()
            with pytest.raises(AccessDeniedError, match="ASSISTANT_ADMIN_TOKEN"):
                c.sync()
    finally:
        server.stop()


def test_unreachable_and_silent_servers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with AssistantClient(f"http://127.0.0.1:{port}") as c:  # nothing listens there
        with pytest.raises(ServerUnavailableError, match=f"not reachable at http://127.0.0.1:{port}"):
            c.ask(EN_Q)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with AssistantClient(url, timeout=0.5) as c:
            with pytest.raises(ServerUnavailableError, match="did not answer within 0.5 s"):
                c.status()
