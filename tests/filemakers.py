"""Real test files generated from text: PDF (reportlab), Word (python-docx), HTML, and legacy-encoded text.

Each maker writes one file and returns its path. Nothing here imports the code under test, so a file is built the way a
user's tools would build it, not the way the loader expects it.
"""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

_CJK_CHARS = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"  # ideographs, CJK punctuation
_CJK = re.compile(f"[{_CJK_CHARS}]")
_TOKEN = re.compile(f"[{_CJK_CHARS}]|[^\\s{_CJK_CHARS}]+\\s*|\\s+")
CJK_FONT = "STSong-Light"  # a CID font every PDF reader knows; reportlab needs no font file for it
LATIN_FONT = "Helvetica"


# --- text taken from the shipped corpus ---


def corpus_body(name: str) -> str:
    """A corpus file's text after its front-matter header (the whole file when it has none)."""
    raw = (CORPUS / name).read_text(encoding="utf-8")
    if raw.startswith("---\n"):
        raw = raw.split("\n---\n", 1)[1]
    return raw


def corpus_paragraphs(name: str) -> list[str]:
    """The body's paragraphs (blocks between blank lines), stripped."""
    return [p.strip() for p in re.split(r"\n\s*\n", corpus_body(name)) if p.strip()]


# --- PDF ---


def _pdf_font(text: str) -> str:
    if not _CJK.search(text):
        return LATIN_FONT
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    return CJK_FONT


def _tokens(line: str) -> list[str]:
    """Words (with their trailing space) for Latin text, single characters for Chinese, so either wraps."""
    return _TOKEN.findall(line)


def wrap(line: str, font: str, size: float, width: float) -> list[str]:
    """Greedy wrap of one paragraph to a width in points; a word longer than the width gets a line of its own."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, current = [], ""
    for token in _tokens(line):
        if current and stringWidth((current + token).rstrip(), font, size) > width:
            lines.append(current.rstrip())
            current = token.lstrip()
        else:
            current += token
    if current.strip():
        lines.append(current.rstrip())
    return lines


def make_pdf(
    path: Path,
    pages: Sequence[str],
    *,
    header: str | None = None,
    footer: str | None = None,
    page_numbers: bool = False,
    title: str | None = None,
    font_size: float = 11,
    encrypt_password: str | None = None,
) -> Path:
    """One PDF page per item of `pages`: paragraphs (split at newlines) wrapped to the page width, in STSong-Light
    when the page holds Chinese and Helvetica otherwise. `header`/`footer` repeat on every page ("{n}" becomes the
    page number); `page_numbers` adds a bare number at the foot of every page. Text that overflows a page is cut,
    so keep each page's text to what fits. Without `title`, reportlab writes the placeholder title "untitled"."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = Path(path)
    width, height = A4
    margin, leading = 60, font_size * 1.45
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)  # reproducible bytes; CreationDate is 2000-01-01
    if title:
        c.setTitle(title)
    for number, page in enumerate(pages, 1):
        if header:
            line = header.replace("{n}", str(number))
            c.setFont(_pdf_font(line), 9)
            c.drawString(margin, height - 36, line)
        y = height - margin - 10
        for paragraph in page.split("\n"):
            font = _pdf_font(paragraph)
            c.setFont(font, font_size)
            for line in wrap(paragraph, font, font_size, width - 2 * margin):
                if y < margin + 20:
                    break
                c.drawString(margin, y, line)
                y -= leading
            y -= leading * 0.5
        if footer:
            line = footer.replace("{n}", str(number))
            c.setFont(_pdf_font(line), 9)
            c.drawString(margin, 40, line)
        if page_numbers:
            c.setFont(LATIN_FONT, 9)
            c.drawCentredString(width / 2, 24, str(number))
        c.showPage()
    c.save()
    if encrypt_password is not None:
        encrypt_pdf(path, path, encrypt_password)
    return path


def encrypt_pdf(source: Path, target: Path, password: str) -> Path:
    """Re-save a PDF with a user password (RC4, which pypdf writes without extra crypto packages)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(str(source)))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="RC4-128")
    with open(target, "wb") as fh:
        writer.write(fh)
    return Path(target)


# --- Word ---


def make_docx(
    path: Path,
    title: str,
    paragraphs: Sequence[str],
    headings: dict[int, tuple[int, str]] | None = None,
    *,
    table: Sequence[Sequence[str]] | None = None,
    table_after: int | None = None,
    core_title: str | None = None,
    author: str | None = None,
    created: datetime | None = None,
) -> Path:
    """A Word file: `title` in the Title style, then the paragraphs; headings[i] = (level, text) puts a
    "Heading <level>" paragraph before paragraphs[i]; `table` (rows of cells) goes after paragraphs[table_after]
    (default: at the end). Core properties title/author/created are set only when given (python-docx's template
    otherwise carries a 2013 creation date and the author "python-docx")."""
    import docx

    document = docx.Document()
    if title:
        document.add_paragraph(title, style="Title")
    headings = headings or {}
    for i, text in enumerate(paragraphs):
        if i in headings:
            level, label = headings[i]
            document.add_heading(label, level=level)
        document.add_paragraph(text)
        if table is not None and table_after == i:
            _add_table(document, table)
    if table is not None and (table_after is None or table_after >= len(paragraphs)):
        _add_table(document, table)
    props = document.core_properties
    if core_title is not None:
        props.title = core_title
    if author is not None:
        props.author = author
    if created is not None:
        props.created = created
    document.save(str(path))
    return Path(path)


def _add_table(document, rows: Sequence[Sequence[str]]) -> None:
    table = document.add_table(rows=len(rows), cols=max(len(r) for r in rows))
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            table.cell(r, c).text = cell


# --- HTML ---


def make_html(
    path: Path,
    *,
    title: str,
    heading: str,
    sections: Sequence[tuple[str, Sequence[str]]],
    nav: Sequence[str] = ("Home", "News", "Markets", "Subscribe"),
    header: str = "",
    footer: str = "",
    aside: str = "",
    published: str | None = None,
    wrap_in_article: bool = True,
    encoding: str = "utf-8",
) -> Path:
    """A news-site page: <header> and <nav> before, <aside> beside and <footer> after an <article> holding an <h1>
    and, per section, an <h2> (skipped when empty) and its paragraphs. A script block adds noise a loader must drop."""
    esc = html.escape
    links = "\n".join(f'      <li><a href="/{i}">{esc(item)}</a></li>' for i, item in enumerate(nav))
    body = [f"    <h1>{esc(heading)}</h1>"]
    for section, paragraphs in sections:
        if section:
            body.append(f"    <h2>{esc(section)}</h2>")
        body.extend(f"    <p>{esc(p)}</p>" for p in paragraphs)
    article = "\n".join(body)
    if wrap_in_article:
        article = f"  <article>\n{article}\n  </article>"
    meta = f'  <meta property="article:published_time" content="{esc(published)}">\n' if published else ""
    page = f"""<!DOCTYPE html>
<html>
<head>
  <meta charset="{encoding}">
  <title>{esc(title)}</title>
{meta}  <script>window.tracking = "SCRIPT-NOISE";</script>
  <style>body {{ font-family: sans-serif; }}</style>
</head>
<body>
  <header><div class="brand">{esc(header)}</div></header>
  <nav><ul>
{links}
  </ul></nav>
{article}
  <aside><h3>Sidebar</h3><p>{esc(aside)}</p></aside>
  <footer><p>{esc(footer)}</p></footer>
</body>
</html>
"""
    Path(path).write_bytes(page.encode(encoding))
    return Path(path)


# --- encoded text ---


def write_encoded(path: Path, text: str, encoding: str, *, bom: bool = False) -> Path:
    """`text` in a given encoding; `bom` prefixes the byte-order mark (UTF-8 and UTF-16 only)."""
    if encoding.lower().replace("-", "") in {"utf16", "utf_16"}:
        data = text.encode("utf-16-le")
        data = (b"\xff\xfe" + data) if bom else data
    else:
        data = text.encode(encoding)
        if bom:
            assert encoding.lower().replace("-", "").replace("_", "") == "utf8", "BOM only for UTF-8/UTF-16"
            data = b"\xef\xbb\xbf" + data
    Path(path).write_bytes(data)
    return Path(path)


def make_gbk_text(path: Path, text: str) -> Path:
    return write_encoded(path, text, "gbk")


def make_big5_text(path: Path, text: str) -> Path:
    return write_encoded(path, text, "big5")


def make_utf8_bom_text(path: Path, text: str) -> Path:
    return write_encoded(path, text, "utf-8", bom=True)


def make_utf16_text(path: Path, text: str, *, big_endian: bool = False) -> Path:
    data = text.encode("utf-16-be" if big_endian else "utf-16-le")
    Path(path).write_bytes((b"\xfe\xff" if big_endian else b"\xff\xfe") + data)
    return Path(path)


# --- archives ---


def make_zip_bomb(path: Path, inflated_mb: int, *, member: str = "word/document.xml",
                  extra: Iterable[tuple[str, bytes]] = ()) -> Path:
    """A zip (named as the caller likes, e.g. .docx): the `extra` members, then one member of `inflated_mb` MiB of
    zeros, all deflated (the file is ~1/1000 of the zeros). Written by hand, fast: after a full flush a deflate
    stream does not refer back, so one compressed MiB of zeros is repeated; nothing holds the inflated bytes."""
    import struct
    import zlib

    assert inflated_mb < 4096  # sizes fit the classic (not zip64) headers
    block = b"\0" * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated_mb):
        crc = zlib.crc32(block, crc)
    def deflated(data: bytes) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return packer.compress(data) + packer.flush()

    members = [(name.encode(), 8, zlib.crc32(data), deflated(data), len(data)) for name, data in extra]
    members.append((member.encode(), 8, crc, piece * inflated_mb + compressor.flush(zlib.Z_FINISH), inflated_mb << 20))
    local, central = bytearray(), bytearray()
    for name, method, crc, data, size in members:
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(name), 0, 0, 0, 0, 0, len(local)) + name
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(name),
                             0) + name + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    Path(path).write_bytes(bytes(local + central + end))
    return Path(path)


# --- reading generated files back ---


def find_loose(text: str, phrase: str, start: int = 0) -> int:
    """Offset of `phrase` in `text` where line wrapping may have put whitespace anywhere (PDF text layers), or -1."""
    chars = [re.escape(ch) for ch in phrase if not ch.isspace()]
    m = re.compile(r"\s*".join(chars)).search(text, start)
    return m.start() if m else -1


def make_lying_zip_bomb(path: Path, inflated_mb: int, *, declared: int = 4096,
                        member: str = "word/document.xml", extra: Iterable[tuple[str, bytes]] = ()) -> Path:
    """A zip whose headers (local and central) claim `member` inflates to `declared` bytes while it holds
    `inflated_mb` MiB of zeros: a bomb that a check of the declared sizes alone lets through."""
    import struct

    make_zip_bomb(path, inflated_mb, member=member, extra=extra)
    data = bytearray(Path(path).read_bytes())
    name = member.encode()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    local = info.header_offset  # local header: uncompressed size at +22, or in the zip64 extra field
    data[local + 22:local + 26] = struct.pack("<I", declared)
    name_len, extra_len = struct.unpack("<HH", data[local + 26:local + 30])
    _patch_zip64(data, local + 30 + name_len, extra_len, declared)
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) >= 0:  # the member's central directory entry
        name_len, extra_len = struct.unpack("<HH", data[pos + 28:pos + 32])
        if data[pos + 46:pos + 46 + name_len] == name:
            data[pos + 24:pos + 28] = struct.pack("<I", declared)
            _patch_zip64(data, pos + 46 + name_len, extra_len, declared)
        pos += 4
    Path(path).write_bytes(bytes(data))
    return Path(path)


def _patch_zip64(data: bytearray, start: int, length: int, declared: int) -> None:
    """Write `declared` as the uncompressed size in a zip64 extra field (id 1) between start and start+length."""
    import struct

    end = start + length
    while start + 4 <= end:
        tag, size = struct.unpack("<HH", data[start:start + 4])
        if tag == 1 and size >= 8:
            data[start + 4:start + 12] = struct.pack("<Q", declared)
        start += 4 + size


def make_entity_bomb_docx(path: Path, levels: int = 10) -> Path:
    """A Word file whose document.xml defines nested XML entities ("billion laughs"): expanded, the one
    reference in its body would be 10**levels copies of a word."""
    import io

    make_docx(Path(path), "Entity bomb", ["placeholder"])
    entities = ['<!ENTITY e0 "policy ">'] + [f'<!ENTITY e{i} "{("&e%d;" % (i - 1)) * 10}">'
                                                for i in range(1, levels + 1)]
    body = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<!DOCTYPE w:document [{"".join(entities)}]>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
            f"<w:p><w:r><w:t>&e{levels};</w:t></w:r></w:p></w:body></w:document>").encode()
    source = io.BytesIO(Path(path).read_bytes())
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            new.writestr(item, body if item.filename == "word/document.xml" else old.read(item.filename))
    return Path(path)
