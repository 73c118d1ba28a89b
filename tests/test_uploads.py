"""assistant/uploads.py: names, types, sizes, the load check, the atomic write into the corpus, per-file outcomes."""

from __future__ import annotations

import ast
import io
import unicodedata
from pathlib import Path

import pytest

from assistant import documents, uploads, watch
from assistant.errors import UploadError, UploadTooLargeError
from assistant.types import FailedFile, SyncReport

from conftest import REPO
from filemakers import make_docx, make_pdf

DOC = ("# Harbor County retirement plan notice\n\nDate: 2025-02-03\n\n"
       "The Harbor County retirement plan will offer a stable value fund starting in July 2025.\n")


@pytest.fixture
def corpus(settings) -> Path:
    settings.corpus_dir.mkdir(parents=True)
    return settings.corpus_dir


def tree(folder: Path) -> list[str]:
    """Every name under `folder`, hidden ones included."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# --------------------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("name, safe", [
    ("../x.md", "x.md"),
    ("../../etc/passwd.md", "passwd.md"),
    ("/etc/passwd.txt", "passwd.txt"),
    ("/abs/path/to/report.pdf", "report.pdf"),
    ("C:\\Users\\me\\report.docx", "report.docx"),
    ("..\\..\\a.MD", "a.md"),  # backslashes are separators too; the extension is lower-cased
    ("a\x00b\x1f\x7f\u202e\u200b.md", "ab.md"),  # control and format characters (RTL override, zero width)
    ("line\nbreak\r\t.txt", "linebreak.txt"),
    (".hidden.md", "hidden.md"),
    ("...dots.md", "dots.md"),
    (".md", "md"),  # then refused as a file without a known type
    ('what?<is>"this"|:*.md', "what__is__this____.md"),
    ("  padded.md  ", "padded.md"),
    ("报告 2025.md", "报告 2025.md"),
    ("e\u0301te\u0301.md", "\u00e9t\u00e9.md"),  # NFC
    ("notes.md.exe", "notes.md.exe"),  # only the last extension counts (refused by type)
])
def test_safe_filename(name, safe):
    assert uploads.safe_filename(name) == safe


@pytest.mark.parametrize("name", ["", None, ".", "..", "../", "dir/", "/", "\x00\x01", " . ", "...", "a/\x1b"])
def test_names_with_nothing_left_are_refused(name):
    with pytest.raises(UploadError, match="empty"):
        uploads.safe_filename(name)


@pytest.mark.parametrize("name", ["README.md", "readme.txt", "ReadMe.MD", "README", "../README.md", ".README.md"])
def test_the_corpus_readme_names_are_reserved(name):
    with pytest.raises(UploadError, match="reserved"):
        uploads.safe_filename(name)


@pytest.mark.parametrize("stem, ext", [("a", ".html"), ("政", ".docx"), ("é", ".md"), ("😀", ".txt"), ("ab政", ".pdf")])
def test_long_names_are_cut_in_bytes_keeping_the_extension(stem, ext):
    name = stem * 300 + ext
    safe = uploads.safe_filename(name)
    assert safe.endswith(ext) and len(safe.encode()) <= uploads.MAX_NAME_BYTES
    assert len(safe.encode()) > uploads.MAX_NAME_BYTES - 4  # cut only as far as needed
    assert name.startswith(safe[: -len(ext)])  # a prefix: no character is split or replaced
    assert unicodedata.is_normalized("NFC", safe)


def test_a_long_fake_extension_is_part_of_the_name():
    safe = uploads.safe_filename("report." + "x" * 300)
    assert len(safe.encode()) <= uploads.MAX_NAME_BYTES and safe.startswith("report.xxx")
    with pytest.raises(UploadError, match="unsupported file type"):
        uploads.check_type(safe)


# --------------------------------------------------------------------------------------------------------- types


@pytest.mark.parametrize("ext", sorted(documents.FORMATS))
def test_every_indexed_format_is_accepted(settings, ext):
    assert uploads.admit("file" + ext, settings) == "file" + ext
    assert uploads.admit("FILE" + ext.upper(), settings) == "FILE" + ext


@pytest.mark.parametrize("name, shown", [("tool.exe", "'.exe'"), ("notes", "'(none)'"), ("archive.md.zip", "'.zip'"),
                                         ("md", "'(none)'"), (".md", "'(none)'"), ("page.php", "'.php'")])
def test_other_types_are_refused_listing_the_accepted_ones(settings, name, shown):
    with pytest.raises(UploadError, match="unsupported file type") as err:
        uploads.admit(name, settings, size=10)
    assert not isinstance(err.value, UploadTooLargeError)
    assert shown in str(err.value) and all(ext in str(err.value) for ext in documents.FORMATS)


# --------------------------------------------------------------------------------------------------------- sizes


def test_size_limit_is_in_megabytes_of_a_million_bytes(settings):
    one = settings.model_copy(update={"max_file_mb": 1})
    assert uploads.max_bytes(one) == 1_000_000
    assert uploads.admit("a.md", one, size=1_000_000) == "a.md"  # at the limit: accepted
    uploads.check_size(0, one)
    for size in (1_000_001, 1024 * 1024):  # one byte over; a MiB is over a MB
        with pytest.raises(UploadTooLargeError, match=r"over the 1 MB limit"):
            uploads.admit("a.md", one, size=size)
    with pytest.raises(UploadTooLargeError, match=r"file is 1\.000001 MB, over the 1 MB limit"):
        uploads.check_size(1_000_001, one)  # shown with the decimals that tell it from the limit
    small = settings.model_copy(update={"max_file_mb": 0.05})
    with pytest.raises(UploadTooLargeError, match=r"file is 60\.0 kB, over the 0\.05 MB limit"):
        uploads.check_size(60_000, small)


def test_store_takes_a_file_exactly_at_the_limit_and_refuses_one_byte_more(settings, corpus):
    body = DOC.encode()
    exact = settings.model_copy(update={"max_file_mb": len(body) / 1e6})
    uploads.store(io.BytesIO(body), "exact.md", exact)
    assert (corpus / "exact.md").read_bytes() == body
    with pytest.raises(UploadTooLargeError, match=rf"file is {len(body) + 1} bytes, over the"):
        uploads.store(io.BytesIO(body + b"\n"), "over.md", exact)
    assert tree(corpus) == ["exact.md"]


class Stream(io.RawIOBase):
    """A body that arrives in pieces and cannot be rewound (an HTTP stream); `during(n)` runs before piece n."""

    def __init__(self, pieces, during=None):
        self.pieces, self.during, self.n = list(pieces), during, 0

    def readable(self):
        return True

    def read(self, size=-1):
        if self.during:
            self.during(self.n)
        self.n += 1
        return self.pieces.pop(0) if self.pieces else b""


def test_store_stops_an_oversize_stream_whose_size_was_not_known(settings, corpus):
    tiny = settings.model_copy(update={"max_file_mb": 0.001})  # 1000 bytes
    with pytest.raises(UploadTooLargeError, match=r"file is over the 0\.001 MB limit"):
        uploads.store(Stream([b"# Big\n\n" + b"x" * 600] * 1000), "big.md", tiny)
    assert tree(corpus) == []


# --------------------------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("name, data, reason", [
    ("empty.md", b"  \n\t\n", "file is empty"),
    ("fake.pdf", b"%PDF-1.4 not really a pdf", "(?i)pdf"),
    ("fake.docx", b"PK not a zip", "(?i)docx"),
    ("blank.html", b"<html><body><script>x()</script></body></html>", "no text"),
])
def test_a_file_that_does_not_load_never_enters_the_corpus(settings, corpus, tmp_path, name, data, reason):
    (corpus / "kept.md").write_text(DOC, encoding="utf-8")
    source = tmp_path / "upload" / name
    source.parent.mkdir()
    source.write_bytes(data)
    with pytest.raises(UploadError, match=reason) as err:
        uploads.store(source, name, settings)
    assert str(tmp_path) not in str(err.value) and ".upload-" not in str(err.value)  # no host or temp path
    assert tree(corpus) == ["kept.md"]


def test_a_refused_replacement_leaves_the_file_of_that_name_as_it_was(settings, corpus):
    (corpus / "notice.md").write_text(DOC, encoding="utf-8")
    with pytest.raises(UploadError, match="file is empty"):
        uploads.store(io.BytesIO(b"\n"), "notice.md", settings)
    assert (corpus / "notice.md").read_text(encoding="utf-8") == DOC
    uploads.store(io.BytesIO(b"# Notice, revised\n\nNew text.\n"), "notice.md", settings)
    assert (corpus / "notice.md").read_text(encoding="utf-8") == "# Notice, revised\n\nNew text.\n"
    assert tree(corpus) == ["notice.md"]


def test_real_pdf_and_docx_files_are_stored(settings, corpus, tmp_path):
    pdf = make_pdf(tmp_path / "plan.pdf", ["Harbor County plan notice.\nThe plan adds a stable value fund."])
    docx = make_docx(tmp_path / "plan.docx", "Harbor County plan", ["The plan adds a stable value fund."])
    uploads.store(str(pdf), "plan.pdf", settings)  # a path, as str
    with open(docx, "rb") as data:  # an open file, read from its start whatever its position
        data.read(10)
        uploads.store(data, "plan.docx", settings)
    assert (corpus / "plan.pdf").read_bytes() == pdf.read_bytes()
    assert (corpus / "plan.docx").read_bytes() == docx.read_bytes()
    assert [p.name for p in documents.discover(corpus)] == ["plan.docx", "plan.pdf"]


def test_an_unreadable_source_is_refused(settings, corpus, tmp_path):
    with pytest.raises(UploadError, match=r"cannot read the upload \(No such file or directory\)") as err:
        uploads.store(tmp_path / "missing.md", "missing.md", settings)
    assert str(tmp_path) not in str(err.value)
    assert tree(corpus) == []


# --------------------------------------------------------------------------------------------------------- writing


def test_the_write_is_hidden_inside_the_corpus_until_it_is_complete(settings, corpus):
    seen = []

    def during(n):
        if n == 1:  # the first piece is written, the rest is not
            (temp,) = [p for p in corpus.iterdir()]
            seen.append(temp)
            assert temp.parent == corpus and temp.name.startswith(uploads.TEMP_PREFIX) and temp.suffix == ".md"
            assert documents.discover(corpus) == [] and watch.ignored(temp, corpus)
            assert not (corpus / "notice.md").exists()

    body = DOC.encode()
    uploads.store(Stream([body[:20], body[20:]], during), "notice.md", settings)
    assert seen and not seen[0].exists()
    assert tree(corpus) == ["notice.md"] and (corpus / "notice.md").read_bytes() == body


def test_a_write_that_breaks_off_leaves_no_partial_file(settings, corpus):
    (corpus / "notice.md").write_text(DOC, encoding="utf-8")

    def broken(n):
        if n == 1:
            raise OSError(5, "Input/output error")

    with pytest.raises(UploadError, match=r"Input/output error"):
        uploads.store(Stream([b"# New\n\n", b"more"], broken), "notice.md", settings)
    assert tree(corpus) == ["notice.md"] and (corpus / "notice.md").read_text(encoding="utf-8") == DOC


def test_store_creates_the_corpus_folder(settings):
    uploads.store(io.BytesIO(DOC.encode()), "notice.md", settings)
    assert tree(settings.corpus_dir) == ["notice.md"]


@pytest.mark.parametrize("name", ["../x.md", "sub/x.md", "/tmp/x.md", ".hidden.md", ".upload-x.md", ".."])
def test_store_never_writes_outside_the_corpus_folder(settings, corpus, name):
    with pytest.raises(UploadError, match="outside the corpus folder"):
        uploads.store(io.BytesIO(DOC.encode()), name, settings)
    assert tree(corpus) == [] and tree(corpus.parent) == ["corpus"]


def test_store_does_not_follow_a_link_out_of_the_corpus(settings, corpus, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("precious", encoding="utf-8")
    (corpus / "x.md").symlink_to(outside)
    with pytest.raises(UploadError, match="outside the corpus folder"):
        uploads.store(io.BytesIO(DOC.encode()), "x.md", settings)
    assert outside.read_text(encoding="utf-8") == "precious"


# --------------------------------------------------------------------------------------------------------- outcomes


def test_settle_turns_a_sync_report_into_per_file_outcomes():
    sent = [uploads.Outcome("new.md", "new.md", "saved"),
            uploads.Outcome("../changed.md", "changed.md", "saved"),
            uploads.Outcome("same.md", "same.md", "saved"),
            uploads.Outcome("bad.pdf", "bad.pdf", "saved"),
            uploads.Outcome("empty.md", "empty.md", "refused", "file is empty"),
            uploads.Outcome("moved.md", "moved.md", "saved"),
            uploads.Outcome("lost.md", "lost.md", "saved"),
            uploads.Outcome("tool.exe", "", "refused", "unsupported file type '.exe'")]
    report = SyncReport(added=["new.md"], updated=["changed.md"], renamed=[{"from": "old.md", "to": "moved.md"}],
                        failed=[FailedFile("bad.pdf", "cannot parse pdf file")], unchanged=2)
    indexed = {"new.md", "changed.md", "same.md", "moved.md", "other.md"}
    settled = uploads.settle(sent, report, indexed)
    assert [(o.filename, o.status, o.error) for o in settled] == [  # in the order sent
        ("new.md", "added", ""),
        ("../changed.md", "updated", ""),
        ("same.md", "unchanged", ""),
        ("bad.pdf", "failed", "cannot parse pdf file"),
        ("empty.md", "refused", "file is empty"),
        ("moved.md", "added", ""),
        ("lost.md", "failed", "the index does not list it after the sync"),
        ("tool.exe", "refused", "unsupported file type '.exe'"),
    ]
    assert [o.ok for o in settled] == [True, True, True, False, False, True, False, False]
    assert settled[4].to_dict() == {"filename": "empty.md", "doc_id": "empty.md", "ok": False, "status": "refused",
                                    "error": "file is empty"}
    assert set(o.status for o in settled) <= set(uploads.STATUSES)


def test_settle_without_a_sync_lists_only_what_the_index_holds():
    sent = [uploads.Outcome("a.md", "a.md", "saved"), uploads.Outcome("b.md", "b.md", "saved")]
    assert [o.status for o in uploads.settle(sent, None, {"a.md"})] == ["unchanged", "failed"]


# --------------------------------------------------------------------------------------------------------- layering


def test_uploads_imports_no_web_framework():
    tree_ = ast.parse((REPO / "assistant" / "uploads.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree_) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree_)
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert not imported & {"fastapi", "starlette", "gradio", "uvicorn", "httpx", "ui", "multipart"}
