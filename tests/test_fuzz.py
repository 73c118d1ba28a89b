"""Fuzzing. The HTTP API from its own OpenAPI schema (schemathesis, in-process ASGI calls against the real app
over a real index): no request gets a 500. The loaders (hypothesis): any bytes under any supported extension,
and text shaped like each format, give a Document or a DocumentError, never another exception."""

from __future__ import annotations

import io
import zipfile

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from assistant import documents, indexer
from assistant.api import Assistant
from assistant.errors import DocumentError
from assistant.server import create_app
from assistant.settings import Settings

from conftest import copy_corpus

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
ADMIN = "fuzz-admin-token"
FAST = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


# --- the HTTP API


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-api")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use", max_file_mb=0.05)
    copy_corpus(settings.corpus_dir, [EO])
    indexer.sync(settings, progress=False)
    app = create_app(Assistant.open(settings), settings, admin_token=ADMIN)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def test_api_never_answers_500(api_schema):
    """Every operation of the schema, up to 20 generated requests each, valid and invalid. Driven
    without schemathesis's pytest plugin, which does not run under this pytest."""
    tried = []
    for operation in operations(api_schema):
        @given(case=st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                              operation.as_strategy(schemathesis.GenerationMode.NEGATIVE)))
        @hsettings(max_examples=20, **FAST)
        def fuzz(case):
            response = case.call()
            tried.append((case.method, case.path))
            assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:500])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error and "Traceback" not in error and "/tmp/" not in error

        fuzz()
    assert {path for _, path in tried} >= {"/api/ask", "/api/search", "/api/documents", "/api/status"}
    assert len(tried) >= 80


def test_admin_api_never_answers_500(api_schema):
    """The operations that change the corpus, with the admin token: generated uploads and deletions."""
    tried = []
    for operation in operations(api_schema):
        if operation.method.upper() not in ("POST", "DELETE") or not operation.path.startswith("/api/documents"):
            continue

        @given(case=st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                              operation.as_strategy(schemathesis.GenerationMode.NEGATIVE)))
        @hsettings(max_examples=20, **FAST)
        def fuzz(case):
            response = case.call(headers={"Authorization": f"Bearer {ADMIN}"})
            tried.append((case.method, response.status_code))
            assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text[:500])

        fuzz()
    assert {method for method, _ in tried} == {"POST", "DELETE"}
    assert any(status != 401 for _, status in tried)  # the token was taken: past the door


# --- the loaders


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-files")


def load_or_refuse(folder, name: str, data: bytes):
    path = folder / name
    path.write_bytes(data)
    try:
        doc = documents.load(path, folder, 200_000)
    except DocumentError as exc:
        assert exc.path == name and exc.reason
        return None
    assert doc.text.strip() and doc.id == name
    for start, end in doc.furniture:
        assert 0 <= start <= end <= len(doc.text)
    for heading in doc.headings:
        assert 0 <= heading.start <= heading.end <= len(doc.text)
    return doc


@given(data=st.binary(max_size=3000), ext=st.sampled_from(sorted(documents.FORMATS)))
@hsettings(max_examples=300, **FAST)
def test_any_bytes_under_any_extension(folder, data, ext):
    load_or_refuse(folder, "fuzz" + ext, data)


_MARKUP = st.text(alphabet=st.sampled_from(list("#-*: \t\n\r<>/=\"'&;!abc文字.。0123456789") + ["\x00", "\ud7ff",
                                                                                            "\u202e", "\ufeff"]),
                  max_size=400)


@given(text=_MARKUP, ext=st.sampled_from([".md", ".txt", ".html"]),
       encoding=st.sampled_from(["utf-8", "utf-16", "gb18030", "big5"]))
@hsettings(max_examples=300, **FAST)
def test_text_shaped_like_each_format(folder, text, ext, encoding):
    if ext == ".md":
        text = "---\ntitle: " + text[:40] + "\n---\n# " + text
    elif ext == ".html":
        text = "<html><head><title>" + text[:30] + "</title></head><body><main><h1>" + text + "</main></body>"
    load_or_refuse(folder, "shaped" + ext, text.encode(encoding, "replace"))


@given(parts=st.lists(st.tuples(st.sampled_from(["word/document.xml", "[Content_Types].xml", "_rels/.rels",
                                                 "docProps/core.xml", "word/styles.xml"]),
                                st.binary(max_size=300)), max_size=5))
@hsettings(max_examples=150, **FAST)
def test_zips_named_docx(folder, parts):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts:
            archive.writestr(name, data)
    load_or_refuse(folder, "fuzz.docx", buffer.getvalue())
