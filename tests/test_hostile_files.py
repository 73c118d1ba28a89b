"""Hostile and broken files through every way a file gets in: the corpus folder (`assistant index`, a real
subprocess), the chat page's upload handler (ui.app.upload_files → assistant.uploads) and `POST /api/documents`
over real HTTP. One table of files; each entry point gets one index (real USE model, real Chroma) holding a good
document first. Every hostile file gets its own clear reason; the good document stays indexed and answerable."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from assistant import indexer
from assistant.api import Assistant
from assistant.cli import main
from assistant.server import ServerThread, create_app
from assistant.settings import Settings
from ui import app as ui

from conftest import REPO, copy_corpus
from filemakers import (
    encrypt_pdf,
    make_docx,
    make_entity_bomb_docx,
    make_lying_zip_bomb,
    make_pdf,
    make_zip_bomb,
)

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
EN_Q = "How long does the executive order give the Secretary of Labor to reexamine guidance?"
TOKEN = "hostile-files-token"
INDEXED = None  # a row that must be indexed, not refused
MAX_MB = 2.0  # the servers' file limit here: big enough for every row below
BOMB_MB = 1024  # the zip bomb's document.xml inflates to 1 GiB


@dataclass(frozen=True)
class Case:
    name: str  # the file's name (on disk, uploaded as)
    expect: str | None  # a fragment of the refusal reason, or INDEXED
    why: str


def _html_nested(depth: int) -> bytes:
    return (b"<html><body>" + b"<div><span>" * depth + b"Deeply nested notice: the board meets in May."
            + b"</span></div>" * depth + b"</body></html>")


def _huge_line() -> bytes:
    # 200 kB, no line break, no full stop; its pieces repeat, so embedding them stays cheap
    return b"Huge line notice: " + b"pension " * 25_000


def _invalid_utf8() -> bytes:
    return ("Pension notice. 养老金通知。" * 40).encode() + b"\xff\xfe\xc3\x28\x80" + b" trailing text." * 30


DUPLICATE = b"# Duplicate notice\n\nThe same notice was saved under two names; both copies say the fee is 12 dollars.\n"
CASES = [
    Case("empty.md", "file is empty", "zero bytes"),
    Case("blank.txt", "file is empty", "only whitespace"),
    Case("photo.txt", "binary", "PNG bytes under a text extension"),
    Case("noise.md", "encoding", "random bytes without NUL under .md"),
    Case("controls.txt", "binary", "valid UTF-8 made of control codes"),
    Case("truncated.pdf", "corrupt or truncated PDF", "the first 60% of a real PDF"),
    Case("locked.pdf", "encrypted PDF", "RC4 user password"),
    Case("webpage.pdf", "PDF", "HTML saved as .pdf"),
    Case("scan.pdf", "no text layer", "pages without text"),
    Case("bomb.docx", "zip bomb", f"document.xml inflates to {BOMB_MB} MiB"),
    Case("lying-bomb.docx", "not a valid Word", "headers claim 4 kB for a 64 MiB document.xml"),
    Case("entities.docx", "not a valid Word", "billion-laughs XML entities"),
    Case("plain.docx", "not a zip", "text saved as .docx"),
    Case("invalid-utf8.txt", "not valid UTF-8", "UTF-8 with broken bytes mid-file"),
    Case("nested.html", INDEXED, "60,000 nested elements"),
    Case("huge-line.txt", INDEXED, "a 200 kB line without a break"),
    Case("heading.md", INDEXED, "a 200 kB heading line of spaces (was quadratic)"),
    Case("gbk.txt", INDEXED, "GBK-encoded Chinese"),
    Case("big5.txt", INDEXED, "Big5-encoded Chinese"),
    Case("dup-a.md", INDEXED, "the same content as dup-b.md"),
    Case("dup-b.md", INDEXED, "the same content as dup-a.md"),
]


@pytest.fixture(scope="session")
def hostile_bytes(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of every row of CASES, built with real tools (reportlab, pypdf, python-docx, zipfile)."""
    tmp = tmp_path_factory.mktemp("hostile-src")
    rng = random.Random(6)
    pages = ["Harbor County pension notice.\nThe plan adds a stable value fund in July 2025."] * 3
    make_pdf(tmp / "full.pdf", pages)
    full = (tmp / "full.pdf").read_bytes()
    encrypt_pdf(tmp / "full.pdf", tmp / "locked.pdf", "s3cret")
    make_pdf(tmp / "scan.pdf", ["", ""])
    make_docx(tmp / "real.docx", "Real", ["A real Word file."])
    with zipfile.ZipFile(tmp / "real.docx") as real:  # a Word package around each bomb
        parts = [(n, real.read(n)) for n in real.namelist() if n != "word/document.xml"]
    make_zip_bomb(tmp / "bomb.docx", BOMB_MB, extra=parts)
    make_lying_zip_bomb(tmp / "lying.docx", 64, extra=parts)
    make_entity_bomb_docx(tmp / "entities.docx")
    data = {
        "empty.md": b"",
        "blank.txt": b" \n\t\r\n  \n",
        "photo.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(4000),
        "noise.md": bytes(b for b in rng.randbytes(8000) if b)[:4000],
        "controls.txt": bytes(range(1, 32)) * 50,
        "truncated.pdf": full[: len(full) * 3 // 5],
        "locked.pdf": (tmp / "locked.pdf").read_bytes(),
        "webpage.pdf": b"<html><body>Saved from a browser</body></html>\n" * 20,
        "scan.pdf": (tmp / "scan.pdf").read_bytes(),
        "bomb.docx": (tmp / "bomb.docx").read_bytes(),
        "lying-bomb.docx": (tmp / "lying.docx").read_bytes(),
        "entities.docx": (tmp / "entities.docx").read_bytes(),
        "plain.docx": b"Plain text saved with a .docx name.\n",
        "invalid-utf8.txt": _invalid_utf8(),
        "nested.html": _html_nested(30_000),
        "huge-line.txt": _huge_line(),
        "heading.md": b"# Heading" + b" " * 200_000 + b"end\n\nThe notice under the long heading.\n",
        "gbk.txt": "养老金计划通知：计划自2025年7月起增设稳定价值基金。".encode("gbk") * 3,
        "big5.txt": "養老金計劃通知：計劃自2025年7月起增設穩定價值基金。".encode("big5") * 3,
        "dup-a.md": DUPLICATE,
        "dup-b.md": DUPLICATE,
    }
    assert set(data) == {c.name for c in CASES}
    assert len(data["bomb.docx"]) < 1_100_000  # 1 GiB of XML in about 1 MB
    return data


def base_settings(root: Path) -> Settings:
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embed_model="use", max_file_mb=MAX_MB)
    copy_corpus(settings.corpus_dir, [EO])
    return settings


def base_index(root: Path) -> Settings:
    settings = base_settings(root)
    assert indexer.sync(settings, progress=False).added == [EO]
    return settings


def check_intact(assistant: Assistant) -> None:
    """The good document is still indexed and still answers."""
    answer = assistant.ask(EN_Q)
    assert answer.grounded and "180 days" in answer.text and answer.citations[0].doc_id == EO


def corpus_names(settings: Settings) -> set[str]:
    return {p.name for p in settings.corpus_dir.iterdir()}


def assert_reason(reason: str, case: Case, root: Path) -> None:
    assert case.expect in reason, (case.name, reason)
    assert str(root) not in reason and "Traceback" not in reason and "/tmp" not in reason


# --- the corpus folder: `assistant index --json`, a real subprocess


# Names that exist only on disk (an upload's name is sanitized first): control characters, 80 Chinese characters
# (240 bytes; file systems stop at 255), bytes that are not UTF-8.
ODD_NAMES = {"ctl\x01\x1b[31mred.md": INDEXED, "政" * 80 + ".md": INDEXED}
LATIN1_NAME = b"latin1-\xe9t\xe9.md"


def cli_index(settings: Settings) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASSISTANT_EMBED_MODEL": "use", "ASSISTANT_MAX_FILE_MB": str(MAX_MB),
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "assistant.cli", "index", "--json", "--corpus",
                           str(settings.corpus_dir), "--index", str(settings.index_dir)],
                          cwd=REPO, env=env, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, hostile_bytes):
    """Both syncs in their own process, as a user runs them (an embedded Chroma index is one process's at a
    time: this process opens it only afterwards)."""
    root = tmp_path_factory.mktemp("folder")
    settings = base_settings(root)
    first = cli_index(settings)
    assert first.returncode == 0 and json.loads(first.stdout)["added"] == [EO], first.stderr.decode()[-2000:]
    for name, data in hostile_bytes.items():
        (settings.corpus_dir / name).write_bytes(data)
    for name in ODD_NAMES:
        text = f"# Odd name\n\nA notice stored as {name} on disk.\n"
        (settings.corpus_dir / name).write_text(text, encoding="utf-8")
    with open(os.path.join(os.fsencode(settings.corpus_dir), LATIN1_NAME), "wb") as fh:
        fh.write(b"# Latin-1 name\n\nA file whose name is not UTF-8.\n")
    run = cli_index(settings)
    return root, settings, run, json.loads(run.stdout.decode())


def test_folder_sync_reports_each_file_exits_1_and_keeps_the_index(folder):
    root, settings, run, report = folder
    assert run.returncode == 1, run.stderr.decode()
    assert b"Traceback" not in run.stderr
    check_intact(Assistant.open(settings))
    assert report["unchanged"] == 1  # the good document was not touched


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_folder(folder, case):
    root, settings, run, report = folder
    failed = {f["path"]: f["error"] for f in report["failed"]}
    if case.expect is INDEXED:
        assert case.name in report["added"], failed.get(case.name)
    else:
        assert case.name in failed, f"{case.name} ({case.why}) was not refused"
        assert_reason(failed[case.name], case, root)


def test_folder_odd_file_names(folder):
    root, settings, run, report = folder
    failed = {f["path"]: f["error"] for f in report["failed"]}
    for name in ODD_NAMES:
        assert name in report["added"], failed.get(name)
    shown = "latin1-\\xe9t\\xe9.md"  # the bytes that are not UTF-8, escaped: the report stays valid JSON
    assert "not valid UTF-8" in failed[shown] and "rename" in failed[shown]
    assert set(report["added"]) | set(failed) == {c.name for c in CASES} | set(ODD_NAMES) | {shown}


def test_cli_shows_control_characters_as_escapes(folder):
    """A terminal acts on escape sequences: in file names and document text the CLI prints them escaped."""
    root, settings, run, report = folder
    assert "\x1b" not in run.stderr.decode()
    result = CliRunner().invoke(main, ["search", "A notice stored as ctl red on disk", "-k", "20", "--index",
                                       str(settings.index_dir)])
    assert result.exit_code == 0, result.output
    assert "ctl\\x01\\x1b[31mred.md" in result.output  # the file name, and its text quoting it
    assert "\x1b" not in result.output and "\x01" not in result.output


# --- the chat page's upload handler


@pytest.fixture(scope="module")
def uploaded(tmp_path_factory, hostile_bytes):
    root = tmp_path_factory.mktemp("upload")
    settings = base_index(root)
    assistant = Assistant.open(settings)
    src = root / "browser-temp"  # where Gradio would have put the uploads: one folder per file
    files = []
    for n, (name, data) in enumerate(hostile_bytes.items()):
        (src / str(n)).mkdir(parents=True)
        (src / str(n) / name).write_bytes(data)
        files.append((name, str(src / str(n) / name)))
    outcomes = ui.upload_files(assistant, settings, files, TOKEN, TOKEN)
    return root, settings, assistant, {o.name: o for o in outcomes}


def test_upload_handler_keeps_the_index(uploaded):
    root, settings, assistant, outcomes = uploaded
    check_intact(assistant)
    assert not [n for n in corpus_names(settings) if n.startswith(".")]  # no temporary file left behind


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_upload_handler(uploaded, case):
    root, settings, assistant, outcomes = uploaded
    outcome = outcomes[case.name]
    if case.expect is INDEXED:
        assert outcome.ok and outcome.detail.startswith("indexed"), outcome
        assert case.name in {d["doc_id"] for d in assistant.documents()}
    else:
        assert not outcome.ok and outcome.saved_as == "", outcome
        assert_reason(outcome.detail, case, root)
        assert case.name not in corpus_names(settings)  # a refused file never enters the corpus


# --- POST /api/documents over HTTP


@pytest.fixture(scope="module")
def api(tmp_path_factory, hostile_bytes):
    root = tmp_path_factory.mktemp("api")
    settings = base_index(root)
    assistant = Assistant.open(settings)
    server = ServerThread(create_app(assistant, settings, admin_token=TOKEN))
    server.start()
    http = httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"})
    files, items = {}, list(hostile_bytes.items())
    for part in (items[:len(items) // 2], items[len(items) // 2:]):  # a request carries at most 20 files
        r = http.post("/api/documents", files=[("files", (name, data)) for name, data in part])
        assert r.status_code == 200, r.text
        files.update((f["filename"], f) for f in r.json()["files"])
    yield root, settings, assistant, http, files
    http.close()
    server.stop()


def test_api_upload_keeps_the_index(api):
    root, settings, assistant, http, files = api
    check_intact(assistant)
    r = http.post("/api/ask", json={"question": EN_Q})
    assert r.status_code == 200 and r.json()["grounded"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_api_upload(api, case):
    root, settings, assistant, http, files = api
    result = files[case.name]
    if case.expect is INDEXED:
        assert result["ok"] and result["status"] == "added", result
        r = http.get(f"/api/documents/{case.name}/text")
        assert r.status_code == 200 and r.json()["text"].strip()
    else:
        assert not result["ok"] and result["status"] == "refused", result
        assert_reason(result["error"], case, root)
        assert case.name not in corpus_names(settings)


# Upload names: every one lands inside the corpus folder under a clean name, or is refused with the reason.
NAMES = [
    ("../escape.md", "escape.md"),
    ("../../../../etc/cron.d/evil.md", "evil.md"),
    ("/etc/absolute.md", "absolute.md"),
    ("..\\..\\windows.md", "windows.md"),
    ("C:\\Windows\\System32\\drive.md", "drive.md"),
    ("ctl\x01\x1b[31m\x7fname.md", "ctl[31mname.md"),
    ("nul\x00byte.md", "nulbyte.md"),
    ("n" * 300 + ".md", "n" * 117 + ".md"),
    (".hidden.md", "hidden.md"),
    ("\u202etxt.md", "txt.md"),  # a right-to-left override would show the name reversed
]


def test_api_upload_names_stay_inside_the_corpus(api):
    root, settings, assistant, http, _ = api
    before = {p for p in root.rglob("*") if not p.is_relative_to(settings.index_dir)}
    # The multipart body is written by hand: HTTP clients would percent-encode the control characters.
    boundary = "hostile-boundary"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="'.encode()
        + name.encode() + b'"\r\nContent-Type: text/markdown\r\n\r\n'
        + f"# Name test {i}\n\nUploaded under a hostile name, number {i}.\n".encode() + b"\r\n"
        for i, (name, _) in enumerate(NAMES)) + f"--{boundary}--\r\n".encode()
    r = http.post("/api/documents", content=body,
                  headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 200, r.text
    saved = [f["doc_id"] for f in r.json()["files"]]
    assert saved == [safe for _, safe in NAMES]
    after = {p for p in root.rglob("*") if not p.is_relative_to(settings.index_dir)}
    assert {p.relative_to(settings.corpus_dir).as_posix() for p in after - before} == set(saved)
    assert not any(Path("/etc", n).exists() for n in ("cron.d/evil.md", "absolute.md"))
    for bad, reason in [("README.md", "reserved"), ("..", "empty"), ("../", "empty"), ("a.exe", "unsupported")]:
        r = http.post("/api/documents", files=[("files", (bad, b"# x\n\ntext\n"))])
        assert r.status_code == 400 and reason in r.json()["error"], (bad, r.text)
