"""Source files → Document (text, metadata, structure).

Each loader returns the text that every later span and quote points into; it is never rewritten afterwards. Page
furniture (site navigation, "related reads" trailers, running PDF headers) is not deleted from the text: its spans are
recorded so the chunker skips them, which keeps offsets honest.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from .errors import DocumentError
from .types import Document, Heading

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}
# The corpus folder's own README describes the corpus (provenance); it is not a source document.
CORPUS_NOTES = {"readme.md", "readme.txt", "readme"}
# A .docx is a zip: refuse archives that would inflate beyond this, or inflate suspiciously (zip bombs).
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 200
# python-docx parses every XML part whole, at several times its size in memory; a long report's XML is ~10 MB.
MAX_DOCX_XML_BYTES = 50 * 1024 * 1024

_ISO_DATE = re.compile(r"(20\d\d|19\d\d)-(\d\d)-(\d\d)")
_ZH_DATE = re.compile(r"(20\d\d|19\d\d)年(\d{1,2})月(\d{1,2})日")
_EN_DATE = re.compile(
    r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? (\d{1,2}),? ((?:19|20)\d\d)\b"
)
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# Trailers that news sites append after the article: everything from such a line on is furniture.
_TRAILER = re.compile(
    r"^(related reads?|related articles|recommended|read more|you may also like|相关阅读|相关推荐|推荐阅读|猜你喜欢|延伸阅读)\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def discover(corpus_dir: Path) -> list[Path]:
    """Every candidate file under the corpus, sorted; hidden files and folders and the corpus README are skipped."""
    found = []
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if len(rel.parts) == 1 and path.name.lower() in CORPUS_NOTES:
            continue
        found.append(path)
    return found


def doc_id_for(path: Path, corpus_dir: Path) -> str:
    """The file's path in the corpus. Bytes of a name that are not UTF-8 (Python keeps them as lone surrogates,
    which no JSON, database or terminal takes) are shown as \\xNN escapes; `load` refuses such a file."""
    rel = path.relative_to(corpus_dir).as_posix()
    if _has_surrogates(rel):
        rel = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return rel


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def load(path: Path, corpus_dir: Path, max_bytes: int) -> Document:
    """Read one file into a Document, or raise DocumentError naming the file and the reason."""
    rel = doc_id_for(path, corpus_dir)
    if _has_surrogates(str(path.relative_to(corpus_dir))):
        raise DocumentError(rel, "the file name is not valid UTF-8; rename the file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DocumentError(rel, f"unsupported file type '{path.suffix or '(none)'}' (supported: {', '.join(sorted(FORMATS))})")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            shown, limit = _sizes_apart(size, max_bytes)
            raise DocumentError(rel, f"file is {shown}, over the {limit} limit")
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(rel, f"cannot read file ({exc.strerror or exc})") from None
    if not data.strip():
        raise DocumentError(rel, "file is empty")
    try:
        parsed = _load_pdf(data, max_bytes) if fmt == "pdf" else _LOADERS[fmt](data)
    except DocumentError as exc:
        raise DocumentError(rel, exc.reason) from None
    except Exception as exc:  # a parser library choking on a corrupt file: report it, never crash the sync
        raise DocumentError(rel, f"cannot parse {fmt} file ({type(exc).__name__}: {str(exc)[:200]})") from None
    text = parsed["text"]
    if not text.strip():
        raise DocumentError(rel, "no text found in the file")
    if len(text) > max_bytes:  # a small archive or PDF can unpack to far more text than any file of the limit
        raise DocumentError(rel, f"its text is over {max_bytes:,} characters, more than a file within the size "
                                 f"limit can hold")
    furniture = tuple(parsed.get("furniture", ())) + _trailer_furniture(text)
    return Document(
        id=rel,
        path=rel,
        text=text,
        content_hash=hashlib.sha256(data).hexdigest(),
        title=(parsed.get("title") or _first_line(_without(text, furniture)) or path.stem)[:300],
        language=detect_language(_without(text, furniture)),
        format=fmt,
        date=_find_date(parsed.get("date") or "") or _find_date(text[:600]),
        source_url=parsed.get("source_url", ""),
        issuer=parsed.get("issuer", ""),
        headings=tuple(parsed.get("headings", ())),
        pages=tuple(parsed.get("pages", ())),
        furniture=tuple(sorted(set(furniture))),
    )


def _human(size: float, digits: int = 0) -> str:
    return f"{size / 1e3:.{digits}f} kB" if size < 1e6 else f"{size / 1e6:.{digits + 1}f} MB"


def _sizes_apart(size: int, limit: int) -> tuple[str, str]:
    """The file size and the limit, with more decimals where rounding would print them equal ("20.04 MB" over the
    "20.00 MB" limit, not "20.0 MB" over "20.0 MB")."""
    for digits in range(6):  # by 3 more decimals kB show bytes, by 5 MB do
        shown = _human(size, digits), _human(limit, digits)
        if shown[0] != shown[1]:
            break
    return shown


def content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- language and dates ---


def detect_language(text: str) -> str:
    """zh, en or mixed, from the share of Chinese characters against Latin words (a word is ~5 letters)."""
    cjk = len(_CJK.findall(text))
    words = len(_LATIN.findall(text)) / 5
    if cjk + words == 0:
        return "en"
    share = cjk / (cjk + words)
    return "zh" if share >= 0.7 else "en" if share <= 0.3 else "mixed"


def _find_date(text: str) -> str:
    if m := _ISO_DATE.search(text):
        return m.group(0)
    if m := _ZH_DATE.search(text):
        return f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    if m := _EN_DATE.search(text):
        return f"{m.group(3)}-{_MONTHS.index(m.group(1).lower()) + 1:02d}-{int(m.group(2)):02d}"
    return ""


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line
    return ""


def _without(text: str, spans) -> str:
    keep, pos = [], 0
    for start, end in sorted(spans):
        keep.append(text[pos:start])
        pos = max(pos, end)
    keep.append(text[pos:])
    return "".join(keep)


def _trailer_furniture(text: str) -> tuple[tuple[int, int], ...]:
    """A "Related Reads" block after the article's first quarter is page furniture up to the end."""
    for m in _TRAILER.finditer(text):
        if m.start() > len(text) * 0.25:
            return ((m.start(), len(text)),)
    return ()


# --- plain text ---


def decode_text(data: bytes) -> str:
    """Bytes → str: UTF-8 (with or without BOM) and UTF-16 with BOM first, then the likeliest legacy encoding
    (GB18030/GBK, Big5, ...) as detected; binary content is refused."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _check_text(data.decode("utf-16"))
        except UnicodeDecodeError:
            raise DocumentError("", "invalid UTF-16 text") from None
    if b"\x00" in data[:8192]:
        raise DocumentError("", "binary content (NUL bytes) in a text file")
    try:
        return _check_text(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        bad_utf8 = exc.start
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=["gb18030", "big5", "euc_jp", "cp1252", "latin_1", "utf_16"]).best()
    if best is None or best.chaos > 0.25:
        raise DocumentError("", f"unreadable text encoding: not valid UTF-8 (byte {bad_utf8:,} is not), nor "
                                "GB18030/GBK, Big5 or another detectable encoding")
    return _check_text(str(best))


def _check_text(text: str) -> str:
    controls = sum(1 for ch in text[:20000] if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f")
    if controls > max(5, len(text[:20000]) // 100):
        raise DocumentError("", "binary content in a text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _load_text(data: bytes) -> dict:
    return {"text": decode_text(data)}


# --- Markdown ---

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
# Linear on any line: the label's closing spaces and #s are stripped in Python (a lazy group followed by
# "[ \t#]*$" backtracks quadratically, so one 60 kB heading line of spaces took 15 s).
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+)$", re.MULTILINE)


def _load_markdown(data: bytes) -> dict:
    raw = decode_text(data)
    meta, body = {}, raw
    if m := _FRONT_MATTER.match(raw):
        body = raw[m.end() :]
        for line in m.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("\"'")
    headings = [
        Heading(m.start(), m.end(), len(m.group(1)), _heading_label(m.group(2))) for m in _MD_HEADING.finditer(body)
    ]
    return {
        "text": body,
        "title": meta.get("title") or (headings[0].label if headings else ""),
        "date": meta.get("date", ""),
        "source_url": meta.get("source_url") or meta.get("url") or meta.get("source", ""),
        "issuer": meta.get("issuing_body") or meta.get("issuer") or meta.get("author", ""),
        "headings": headings,
    }


def _heading_label(text: str) -> str:
    """A Markdown heading's text without its closing "#"s and spaces (at least its first character)."""
    return (text.rstrip(" \t#") or text[:1]).strip()


# --- HTML ---

_DROP_TAGS = {"script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe", "svg",
              "button", "select", "menu", "dialog"}
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"}
_BLOCK_TAGS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "table", "tr", "td", "th", "pre",
               "blockquote", "br", "dd", "dt", "dl", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
               "hr", "caption", "address", "body"}
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def _load_html(data: bytes) -> dict:
    from bs4 import BeautifulSoup, Comment, NavigableString, Tag

    soup = BeautifulSoup(decode_text(data), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    date = ""
    for meta in soup.find_all("meta"):
        name = (meta.get("property") or meta.get("name") or "").lower()
        if name in {"article:published_time", "date", "dc.date", "pubdate", "publish-date"} and meta.get("content"):
            date = meta["content"]
            break
    for tag in soup.find_all(True):
        if isinstance(tag, Tag) and tag.attrs is not None and (
            tag.name in _DROP_TAGS or str(tag.get("role", "")).lower() in _DROP_ROLES
        ):
            if tag.name == "header" and tag.find_parent(["article", "main"]):
                continue  # the article's own header (headline, byline), not the site banner
            tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.find(attrs={"role": "main"}) or soup.body or soup

    # Iterative walk (deeply nested pages must not hit the recursion limit): text runs grouped into blocks.
    blocks: list[tuple[str, int]] = []  # (text, heading level or 0)
    current: list[str] = []

    def flush(level: int = 0):
        text = re.sub(r"\s+", " ", "".join(current)).strip()
        current.clear()
        if text:
            blocks.append((text, level))

    stack: list = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            flush(_HEADING_TAGS.get(node.name, 0))
            continue
        if isinstance(node, Comment):
            continue
        if isinstance(node, NavigableString):
            current.append(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        if node.name in _BLOCK_TAGS:
            flush()
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node.children)))
    flush()

    text, headings, pos = [], [], 0
    for block, level in blocks:
        if text:
            text.append("\n\n")
            pos += 2
        if level:
            headings.append(Heading(pos, pos + len(block), level, block[:120]))
        text.append(block)
        pos += len(block)
    if not title and headings:
        title = headings[0].label
    return {"text": "".join(text), "title": title, "date": date, "headings": headings}


# --- PDF ---

# Titles that PDF producers write when the author set none ("untitled", "Microsoft Word - memo.docx"): the first line
# of the text names the document better.
_PLACEHOLDER_TITLE = re.compile(r"untitled\b.*|microsoft \w+ - .*|document\d*|[\w -]+\.(?:docx?|pdf|txt)",
                                re.IGNORECASE)


def _load_pdf(data: bytes, max_chars: int = 0) -> dict:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("", "encrypted PDF (password required)")
        pages, total = [], 0
        for page in reader.pages:
            pages.append((page.extract_text() or "").replace("\r\n", "\n").strip("\n"))
            total += len(pages[-1]) + (2 if len(pages) > 1 else 0)  # as joined below
            if max_chars and total > max_chars:
                break  # load() refuses it: no need to extract the rest
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError("", f"corrupt or truncated PDF ({str(exc)[:160]})") from None
    if not any(p.strip() for p in pages):
        raise DocumentError("", "PDF has no text layer (scanned images need OCR first)")
    text, starts = "", []
    for page in pages:
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += page
    info = reader.metadata or {}
    title = str(info.get("/Title") or "").strip()
    title = "" if _PLACEHOLDER_TITLE.fullmatch(title) else title
    date = str(info.get("/CreationDate") or "")
    date = f"{date[2:6]}-{date[6:8]}-{date[8:10]}" if re.match(r"D:\d{8}", date) else ""
    return {"text": text, "title": title, "date": date, "pages": starts, "furniture": _pdf_furniture(text, starts)}


def _pdf_furniture(text: str, starts: list[int]) -> list[tuple[int, int]]:
    """Running headers/footers: a first or last line repeated (digits aside) on at least half of 3+ pages,
    and bare page numbers."""
    if len(starts) < 2:
        return []
    bounds = list(zip(starts, starts[1:] + [len(text)]))
    edges = []  # (normalized line, start, end)
    for start, end in bounds:
        lines = [(m.start() + start, m.end() + start) for m in re.finditer(r"[^\n]+", text[start:end])]
        for s, e in lines[:1] + lines[-1:] if lines else []:
            edges.append((re.sub(r"\d+", "#", text[s:e].strip()), s, e))
    counts: dict[str, int] = {}
    for norm, _, _ in set(edges):
        counts[norm] = counts.get(norm, 0) + 1
    found = []
    for norm, s, e in set(edges):
        bare_number = re.fullmatch(r"(page |p\. ?|第)?#( of #|页| / #)?", norm, re.IGNORECASE)
        if bare_number or (len(starts) >= 3 and counts[norm] * 2 >= len(starts)):
            found.append((s, e))
    return sorted(found)


# --- Word ---

_DOCX_TEMPLATE_CREATED = datetime(2013, 12, 23, 23, 15, tzinfo=timezone.utc)  # python-docx's default.docx


def _load_docx(data: bytes) -> dict:
    import docx

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        raise DocumentError("", "not a valid Word .docx file (not a zip archive)") from None
    # Declared sizes first: nothing is inflated for these checks.
    unzipped = sum(info.file_size for info in infos)
    if unzipped > MAX_UNZIPPED_BYTES or unzipped > MAX_ZIP_RATIO * len(data):
        raise DocumentError("", f"refused: archive inflates to {unzipped / 1e6:.0f} MB (zip bomb?)")
    xml = sum(info.file_size for info in infos if info.filename.endswith((".xml", ".rels")))
    if xml > MAX_DOCX_XML_BYTES:
        raise DocumentError("", f"refused: its XML inflates to {xml / 1e6:.0f} MB, over the "
                                f"{MAX_DOCX_XML_BYTES / 1e6:.0f} MB a Word file is read up to")
    try:
        word = docx.Document(io.BytesIO(_verified_zip(data, infos)))
    except Exception as exc:
        raise DocumentError("", f"not a valid Word .docx file ({type(exc).__name__})") from None

    parts, headings, pos, title = [], [], 0, ""
    for item in word.iter_inner_content():
        if hasattr(item, "rows"):  # a table: one line per row, cells separated by tabs
            block = "\n".join("\t".join(c.text.strip() for c in row.cells) for row in item.rows).strip()
            level = 0
        else:
            block = item.text.strip()
            style = (item.style.name if item.style is not None else "") or ""
            level = 1 if style == "Title" else int(m.group(1)) if (m := re.match(r"Heading (\d)", style)) else 0
            if style == "Title" and not title:
                title = block
        if not block:
            continue
        if parts:
            parts.append("\n\n")
            pos += 2
        if level:
            headings.append(Heading(pos, pos + len(block), level, block[:120]))
        parts.append(block)
        pos += len(block)
    text = "".join(parts)
    props = word.core_properties
    # A file made from python-docx's blank template keeps the template's creation time and author unless they were
    # set: neither says anything about the document. A date written in the text wins over the file's creation time.
    template = props.created == _DOCX_TEMPLATE_CREATED
    created = props.created.date().isoformat() if props.created and not template else ""
    author = "" if props.author == "python-docx" else props.author or ""
    return {"text": text, "title": props.title or title, "date": _find_date(text[:600]) or created,
            "headings": headings, "issuer": author}


def _verified_zip(data: bytes, infos: list[zipfile.ZipInfo]) -> bytes:
    """The archive rebuilt (stored, not compressed) from its members as they really inflate, read in bounded pieces.
    Headers can understate a member's size; zipfile then cuts it at the declared size and fails its checksum, but
    a whole-member read (what python-docx does) inflates everything first: a 4 kB claim could cost gigabytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
        for info in infos:
            if info.is_dir():
                continue
            pieces = []
            with source.open(info) as member:
                while piece := member.read(1 << 20):
                    pieces.append(piece)
            copy.writestr(info.filename, b"".join(pieces))
    return out.getvalue()


_LOADERS = {"markdown": _load_markdown, "text": _load_text, "html": _load_html, "pdf": _load_pdf, "docx": _load_docx}
