"""Uploaded files → the corpus folder, for the HTTP API (assistant/server.py) and the chat page (ui/app.py).

One upload goes through `admit` (its name, type and size), then `store` (it must load as a document; it is written
under a hidden temporary name inside the corpus folder, which the indexer and the watcher ignore, then renamed into
place, so the corpus never holds a partial file). After the callers' sync, `settle` says per file what happened:
added, updated, unchanged, failed (saved, not indexed) or refused (never entered the corpus). Refusals raise
UploadError, or UploadTooLargeError for size; their message says what is wrong without naming the file.

No web framework here: the server maps the errors to HTTP 400/404/413, the page shows them per file. `remove`
deletes a document's file (DELETE /api/documents/{id}).
"""

from __future__ import annotations

import contextlib
import os
import re
import unicodedata
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import BinaryIO

from . import documents
from .errors import DocumentError, NotFoundError, UploadError, UploadTooLargeError
from .settings import Settings
from .types import SyncReport

MAX_NAME_BYTES = 120  # a stored file name, extension included, in UTF-8 (file systems allow 255)
MAX_EXTENSION_BYTES = 16  # a longer "extension" (the text after a name's last dot) is part of the name
TEMP_PREFIX = ".upload-"  # hidden: the indexer and the watcher skip it
STATUSES = ("saved", "added", "updated", "unchanged", "failed", "refused")

_SEPARATORS = re.compile(r"[\\/]")
_RESERVED_CHARS = re.compile(r'[<>:"|?*]')


@dataclass(frozen=True)
class Outcome:
    """What became of one uploaded file."""

    filename: str  # the name it was uploaded under
    doc_id: str  # its name in the corpus folder, which is its document id ("" when its name was unusable)
    status: str  # one of STATUSES; "saved" until `settle` reports the sync
    error: str = ""  # why it failed or was refused

    @property
    def ok(self) -> bool:
        return self.status not in ("failed", "refused")

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def safe_filename(name: str) -> str:
    """The name an uploaded file takes in the corpus folder: its last path part, NFC, without control characters,
    characters reserved on common file systems (replaced by "_") or leading dots (no hidden files), the extension
    lower-cased, at most MAX_NAME_BYTES in UTF-8 (the extension kept). Raises UploadError when nothing usable is
    left or the name is the corpus README's."""
    base = _SEPARATORS.split(unicodedata.normalize("NFC", str(name or "")))[-1]
    base = "".join(ch for ch in base if not unicodedata.category(ch).startswith("C"))
    base = _RESERVED_CHARS.sub("_", unicodedata.normalize("NFC", base)).strip().lstrip(".").strip()
    stem, ext = os.path.splitext(base)
    if not stem.strip():
        raise UploadError("the file name is empty once path parts, control characters and leading dots are removed; "
                          "rename the file")
    if len(ext.encode()) > MAX_EXTENSION_BYTES:
        stem, ext = base, ""
    ext = ext.lower()
    if len((stem + ext).encode()) > MAX_NAME_BYTES:
        stem = stem.encode()[: MAX_NAME_BYTES - len(ext.encode())].decode(errors="ignore").rstrip()
    base = stem + ext
    if base.lower() in documents.CORPUS_NOTES:
        raise UploadError(f"'{base}' is reserved for the corpus notes (the corpus folder's README); rename the file")
    return base


def max_bytes(settings: Settings) -> int:
    """settings.max_file_mb in bytes (MB = 1,000,000 bytes, as the indexer counts)."""
    return int(settings.max_file_mb * 1e6)


def check_type(name: str) -> None:
    """UploadError unless the indexer reads files named like `name` (documents.FORMATS)."""
    ext = Path(name).suffix.lower()
    if ext not in documents.FORMATS:
        raise UploadError(f"unsupported file type '{ext or '(none)'}' "
                          f"(accepted: {', '.join(sorted(documents.FORMATS))})")


def check_size(size: int, settings: Settings) -> None:
    """UploadTooLargeError when `size` bytes are over settings.max_file_mb (a file of exactly the limit passes)."""
    if size > max_bytes(settings):
        raise _too_large(size, settings)


def admit(name: str, settings: Settings, size: int | None = None) -> str:
    """The name a file uploaded as `name` takes in the corpus folder, once its name, type and (when known) size
    pass; else UploadError / UploadTooLargeError. `store` checks the size again as it copies."""
    saved = safe_filename(name)
    check_type(saved)
    if size is not None:
        check_size(size, settings)
    return saved


def store(source: BinaryIO | str | os.PathLike, name: str, settings: Settings) -> None:
    """Put an upload (an open binary file, read from its start, or the path of one) into the corpus folder as
    `name` (from `admit`), replacing a file of that name. It is written under a hidden temporary name in the corpus
    folder and renamed into place only once documents.load reads it, so a file that would fail to index never
    enters the corpus and no partial file is ever visible. UploadError (UploadTooLargeError) says why not."""
    corpus = Path(settings.corpus_dir)
    target = corpus / name
    if Path(name).name != name or name.startswith(".") or target.resolve().parent != corpus.resolve():
        raise UploadError("the file name points outside the corpus folder")
    limit = max_bytes(settings)
    try:
        reader = open(source, "rb") if isinstance(source, (str, os.PathLike)) else contextlib.nullcontext(source)
    except OSError as exc:
        raise UploadError(f"cannot read the upload ({_why(exc)})") from None
    temp = corpus / f"{TEMP_PREFIX}{uuid.uuid4().hex}{Path(name).suffix}"
    try:
        with reader as data:
            corpus.mkdir(parents=True, exist_ok=True)
            with open(temp, "xb") as out:  # mode 0o666 less the umask, as any file the user puts there
                _copy(data, out, limit, settings)
                out.flush()
                os.fsync(out.fileno())
        try:
            documents.load(temp, corpus, limit)
        except DocumentError as exc:
            raise UploadError(exc.reason) from None
        os.replace(temp, target)
    except OSError as exc:
        raise UploadError(f"cannot store the upload in the corpus folder ({_why(exc)})") from None
    finally:
        temp.unlink(missing_ok=True)


def remove(doc_id: str, settings: Settings) -> None:
    """Delete the corpus file whose document id is `doc_id` (the callers then sync, which drops it from the index).
    Only a file the indexer would read can go: NotFoundError for any other id, UploadError when the id reaches
    outside the corpus folder (a linked folder). A symlink in the corpus is removed, never its target."""
    corpus = Path(settings.corpus_dir)
    files = {documents.doc_id_for(p, corpus): p for p in documents.discover(corpus)} if corpus.is_dir() else {}
    path = files.get(doc_id)
    if path is None:
        raise NotFoundError(f"No file '{doc_id}' in the corpus folder; GET /api/documents lists the documents.")
    if not path.parent.resolve().is_relative_to(corpus.resolve()):
        raise UploadError("the document id points outside the corpus folder")
    try:
        path.unlink()
    except OSError as exc:
        raise UploadError(f"cannot delete the file ({_why(exc)})") from None


def settle(outcomes: Sequence[Outcome], report: SyncReport | None, indexed: Collection[str]) -> list[Outcome]:
    """`outcomes` once the sync that `report` describes has run: each saved file becomes added, updated, unchanged
    (already indexed with this content, e.g. by a concurrent sync) or failed with the indexer's reason; refused
    files stay as they are. `indexed`: the document ids the index lists after the sync."""
    report = report or SyncReport()
    failed = {f.path: f.error for f in report.failed}
    added = set(report.added) | {r.get("to") for r in report.renamed}
    updated = set(report.updated)
    settled = []
    for o in outcomes:
        if o.status != "saved":
            settled.append(o)
        elif o.doc_id in failed:
            settled.append(replace(o, status="failed", error=failed[o.doc_id]))
        elif o.doc_id in added:
            settled.append(replace(o, status="added"))
        elif o.doc_id in updated:
            settled.append(replace(o, status="updated"))
        elif o.doc_id in indexed:
            settled.append(replace(o, status="unchanged"))
        else:
            settled.append(replace(o, status="failed", error="the index does not list it after the sync"))
    return settled


def _copy(data: BinaryIO, out: BinaryIO, limit: int, settings: Settings) -> None:
    """Copy `data` from its start into `out`, stopping with UploadTooLargeError past `limit` bytes."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        if data.seekable():
            data.seek(0)
    written = 0
    while chunk := data.read(1 << 20):
        written += len(chunk)
        if written > limit:
            raise _too_large(_total_size(data), settings)
        out.write(chunk)


def _total_size(data: BinaryIO) -> int | None:
    with contextlib.suppress(AttributeError, OSError, ValueError):
        if data.seekable():
            return data.seek(0, os.SEEK_END)
    return None


def _too_large(size: int | None, settings: Settings) -> UploadTooLargeError:
    shown = f" {_shown(size, settings.max_file_mb)}," if size else ""
    return UploadTooLargeError(f"file is{shown} over the {settings.max_file_mb:g} MB limit")


def _shown(size: int, limit_mb: float) -> str:
    """A size for a message, with enough decimals that a file just over the limit does not show as the limit."""
    if size < 1000:
        return f"{size} bytes"
    if size < 100_000:
        return f"{size / 1e3:.1f} kB"
    for digits in range(1, 7):
        shown = f"{size / 1e6:.{digits}f}"
        if float(shown) != limit_mb:
            break
    return f"{shown} MB"


def _why(exc: OSError) -> str:
    """The reason of an OSError without its file name (messages never carry a host path)."""
    return exc.strerror or type(exc).__name__
