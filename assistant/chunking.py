"""Document → sentences → chunks, each with its exact span in Document.text and a human-readable locator.

Sentences end at 。！？ and . ! ? (not after abbreviations such as "Sec." or "U.S."); Chinese sentences longer than
LONG_ZH characters are broken again at ，；. Chunks are runs of whole sentences up to a target size that never cross a
section start (a Markdown/HTML/Word heading, "Sec. 3.", "第三条", a short standalone title line) or page furniture,
with the last sentence of a chunk repeated at the start of the next one of the same section.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .types import Chunk, Document

# Bumped whenever the loaders' or the chunker's output changes for the same input: indexes built before are then
# reported as built with other settings, and rebuilt with `assistant index --full`.
CHUNKER_VERSION = 2
LONG_ZH = 90  # characters; a Chinese sentence longer than this is split at commas/semicolons
TITLE_MAX = 40  # characters; a standalone line longer than this is never a title
_TERMINAL = re.compile(r"[。！？!?]+[”’」』）)\"']*|\.(?:[”’\"')\]]*)(?=\s|$)")
_SENTENCE_END = re.compile(r"[。！？!?.:：;；][”’」』）)\"']*$")
_ZH_SOFT = re.compile(r"[，；;,]")
_ABBREV = re.compile(
    r"(?:\b(?:Sec|Secs|No|Nos|Mr|Mrs|Ms|Dr|St|Inc|Corp|Co|Ltd|Jr|Sr|vs|etc|e\.g|i\.e|pp|p|Pub|Stat|U\.S|U\.S\.C|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Art|Ch|Fig|Vol|al|approx|Dept|Gov|Rep|Sen|H\.R|S)"
    r"|\b[A-Z])$"
)
_SECTION = re.compile(r"^(?:Sec(?:tion)?\.?|SECTION|SEC\.)\s+(\d+[A-Za-z]?)\b", re.IGNORECASE)
# "Sec. 3." / "SECTION 1." and a capitalized heading after it ("Sec. 2. Policy.", "SEC. 2. DEFINITIONS.") open a
# line without being sentences of their own: they stay with the text after them.
_SECTION_HEAD = re.compile(
    r"(?:Sec(?:tion)?|SEC(?:TION)?)\.?\s+\d+[A-Za-z]?\."
    r"(?:\s+[A-Z\d][\w’'()-]*(?:\s+(?:[A-Z\d][\w’'()-]*|a|an|and|for|in|of|on|or|the|to))*\.)?"
)
_ZH_ARTICLE = re.compile(r"^第[一二三四五六七八九十百零〇\d]+[条章节]")
_PAREN = re.compile(r"^\(([a-z]{1,4}|\d{1,2}|[A-Z])\)\s")
_ROMAN = re.compile(r"^(?:i|ii|iii|iv|v|vi|vii|viii|ix|x|xi|xii|xiii|xiv|xv)$")
_LIST_START = re.compile(r"^(?:[-*•·]\s|\(?\w{1,4}[.)]\s|\[\d+\]|#|第.{1,4}[条章节])")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int


@dataclass(frozen=True)
class Structure:
    """Where each labelled part of a document starts: the locator of any offset is the last label before it."""

    starts: tuple[int, ...]
    labels: tuple[str, ...]
    boundaries: frozenset[int]  # offsets where a chunk must not continue across
    pages: tuple[int, ...] = ()

    def locate(self, offset: int) -> str:
        i = bisect.bisect_right(self.starts, offset) - 1
        label = self.labels[i] if i >= 0 else ""
        if self.pages:
            page = bisect.bisect_right(self.pages, offset)
            return f"p. {page}, {label}" if label and not label.startswith("¶") else f"p. {page}"
        return label

    def to_json(self) -> list:
        return [list(self.starts), list(self.labels), sorted(self.boundaries), list(self.pages)]

    @classmethod
    def from_json(cls, data: list) -> "Structure":
        starts, labels, boundaries, pages = data
        return cls(tuple(starts), tuple(labels), frozenset(boundaries), tuple(pages))


def chunk_document(doc: Document, target_chars: int, overlap: int = 1) -> tuple[list[Chunk], Structure]:
    structure = analyze(doc)
    sentences = split_sentences(doc.text, doc.furniture)
    chunks: list[Chunk] = []
    current: list[Sentence] = []

    def emit():
        start, end = current[0].start, current[-1].end
        chunks.append(Chunk(doc.id, len(chunks), start, end, doc.text[start:end], structure.locate(start),
                            tuple((s.start, s.end) for s in current)))

    boundaries = sorted(structure.boundaries)
    section_of = lambda s: bisect.bisect_right(boundaries, s.start)  # noqa: E731
    for sentence in _fit(sentences, doc.text, target_chars):
        if current and section_of(sentence) != section_of(current[0]):
            emit()
            current = []
        elif current and sentence.end - current[0].start > target_chars:
            emit()
            kept = current[-overlap:] if overlap else []
            # Overlap only while it leaves room for new text.
            current = kept if kept and sentence.end - kept[0].start <= target_chars else []
        current.append(sentence)
    if current:
        emit()
    return _dedupe_tails(chunks), structure


def _dedupe_tails(chunks: list[Chunk]) -> list[Chunk]:
    """A chunk wholly inside its predecessor (overlap at a section end) adds nothing."""
    kept: list[Chunk] = []
    for chunk in chunks:
        if kept and kept[-1].start <= chunk.start and chunk.end <= kept[-1].end:
            continue
        kept.append(Chunk(chunk.doc_id, len(kept), chunk.start, chunk.end, chunk.text, chunk.locator, chunk.sentences))
    return kept


def split_sentences(text: str, skip: tuple[tuple[int, int], ...] = ()) -> list[Sentence]:
    """Sentences with exact spans, outside the skipped (furniture) spans."""
    sentences = []
    for start, end in _lines_as_units(text, skip):
        if _inside(start, skip):
            continue
        sentences.extend(_split_unit(text, start, end))
    return sentences


def _lines_as_units(text: str, skip: tuple[tuple[int, int], ...] = ()):
    """Paragraphs, with a single line break ending a unit when the line reads as complete (list items, titles,
    lines ending in punctuation, short lines) and treated as a soft wrap (PDF text) otherwise. A skipped line
    (furniture, whole lines) is always a unit of its own, so skipping it never takes the text around it along."""
    unit_start = last_line = None
    prev_end = 0
    prev_skipped = False
    for s, e in _paragraph_spans(text):
        e = s + len(text[s:e].rstrip())
        skipped = _inside(s, skip)
        if unit_start is None:
            unit_start = s
        else:
            hard = (
                skipped
                or prev_skipped
                or text.count("\n", prev_end, s) >= 2
                or _LIST_START.match(text[s:e])
                or re.search(r"[。！？!?.:;：；”\"]\s*$", text[last_line:prev_end])
                or prev_end - last_line < 50
            )
            if hard:
                yield unit_start, prev_end
                unit_start = s
        last_line, prev_end, prev_skipped = s, e, skipped
    if unit_start is not None:
        yield unit_start, prev_end


def _split_unit(text: str, start: int, end: int) -> list[Sentence]:
    out, pos = [], start
    head_end = _section_head_end(text, pos, end)
    for m in _TERMINAL.finditer(text, start, end):
        if m.start() < head_end:
            continue  # the periods of "Sec. 2. Policy." at the sentence's start
        if m.group(0).startswith(".") and _ABBREV.search(text[max(start, m.start() - 8) : m.start()]):
            continue
        if m.group(0).startswith(".") and re.match(r"\s*[a-z(,;]", text[m.end() : m.end() + 3]):
            continue  # "Sec. 3. (a)" and mid-sentence periods continue the sentence
        out.append(Sentence(pos, m.end()))
        pos = _skip_space(text, m.end(), end)
        head_end = _section_head_end(text, pos, end)
    if pos < end:
        out.append(Sentence(pos, end))
    result = []
    for sentence in out:
        result.extend(_split_long_zh(text, sentence))
    return [s for s in result if text[s.start : s.end].strip()]


def _section_head_end(text: str, pos: int, end: int) -> int:
    """End of the section number and heading ("Sec. 2. Policy.") opening a line at pos, or pos when there is none."""
    if text[text.rfind("\n", 0, pos) + 1 : pos].strip():
        return pos  # mid-line, "Sec. 3." is a reference, left to the usual rules
    m = _SECTION_HEAD.match(text, pos, end)
    return m.end() if m else pos


def _split_long_zh(text: str, sentence: Sentence) -> list[Sentence]:
    body = text[sentence.start : sentence.end]
    if len(body) <= LONG_ZH or not re.search(r"[\u4e00-\u9fff]", body):
        return [sentence]
    pieces, pos = [], sentence.start
    for m in _ZH_SOFT.finditer(text, sentence.start, sentence.end):
        if m.end() - pos >= LONG_ZH // 3:
            pieces.append(Sentence(pos, m.end()))
            pos = _skip_space(text, m.end(), sentence.end)
    if pos < sentence.end:
        if pieces and sentence.end - pos < LONG_ZH // 4:
            pieces[-1] = Sentence(pieces[-1].start, sentence.end)
        else:
            pieces.append(Sentence(pos, sentence.end))
    return pieces


def _fit(sentences: list[Sentence], text: str, target: int) -> list[Sentence]:
    """Sentences longer than a chunk are cut at the last space or comma before the limit."""
    out = []
    for s in sentences:
        start = s.start
        while s.end - start > target:
            window = text[start : start + target]
            cut = max(window.rfind(" "), window.rfind("，"), window.rfind(","), window.rfind("；"), window.rfind(";"))
            cut = start + (cut + 1 if cut > target // 2 else target)
            out.append(Sentence(start, cut))
            start = _skip_space(text, cut, s.end)
        if start < s.end:
            out.append(Sentence(start, s.end))
    return out


def _skip_space(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos].isspace():
        pos += 1
    return pos


def analyze(doc: Document) -> Structure:
    """Labels for every structural start: headings from the loader, legal numbering ("Sec. 3", "(a)", "(iii)",
    "第三条") and short title lines; paragraphs are numbered where nothing else labels the text."""
    text = doc.text
    marks: dict[int, tuple[str, bool]] = {}  # offset -> (label, is a chunk boundary)
    for h in doc.headings:
        marks[h.start] = (h.label, True)

    section = ""
    numbering: list[tuple[int, str]] = []  # the open (level, token) under the section, outermost first
    paragraph = 0
    for start, end in _paragraph_spans(text):
        if _inside(start, doc.furniture):
            continue
        paragraph += 1
        line = text[start:end]
        if start in marks:
            section, numbering = marks[start][0], []
            continue
        if m := _SECTION.match(line):
            section, numbering = f"Sec. {m.group(1)}", []
            marks[start] = (section, True)
            # "Sec. 3. Title. (a) For purposes..." opens subsection (a) on the same line
            if inner := re.search(r"\.\s+\(([a-z])\)\s", line[:200]):
                numbering = [(_LETTER, inner.group(1))]
                marks[start + inner.start() + 1] = (f"{section}({inner.group(1)})", False)
            continue
        if m := _ZH_ARTICLE.match(line):
            section, numbering = m.group(0), []
            marks[start] = (section, True)
            continue
        if m := _PAREN.match(line):
            level = _paren_level(m.group(1), numbering)
            numbering = [n for n in numbering if n[0] < level] + [(level, m.group(1))]
            marks[start] = (section + "".join(f"({token})" for _, token in numbering), False)
            continue
        if _is_title_line(text, start, end):
            section, numbering = line.strip(), []
            marks[start] = (section[:80], True)
            continue
        if not section:
            marks[start] = (f"¶ {paragraph}", False)
    starts = sorted(marks)
    return Structure(
        tuple(starts),
        tuple(marks[s][0] for s in starts),
        # Furniture bounds chunks too: no chunk runs across a running header or page number into the next page.
        frozenset(s for s in starts if marks[s][1]) | {s for s, _ in doc.furniture},
        doc.pages,
    )


# US legislative nesting: (a) subsection → (1) paragraph → (A) subparagraph → (i) clause.
_LETTER, _NUMBER, _CAPITAL, _CLAUSE = range(4)


def _paren_level(token: str, numbering: list[tuple[int, str]]) -> int:
    """The nesting level of "(token)". "(i)", "(v)", "(x)" are letters only when they follow the open letter
    ("(h)" then "(i)"); otherwise they are roman clauses, also directly under a section with no "(a)" above."""
    if token.isdigit():
        return _NUMBER
    if token.isupper():
        return _CAPITAL
    if _ROMAN.match(token):
        letter = next((t for level, t in numbering if level == _LETTER), "")
        if not (len(token) == 1 and len(letter) == 1 and ord(token) == ord(letter) + 1):
            return _CLAUSE
    return _LETTER


def _inside(offset: int, spans) -> bool:
    return any(s <= offset < e for s, e in spans)


def _paragraph_spans(text: str):
    for m in re.finditer(r"[^\n]+", text):
        if m.group(0).strip():
            lead = len(m.group(0)) - len(m.group(0).lstrip())
            yield m.start() + lead, m.end()


def _is_title_line(text: str, start: int, end: int) -> bool:
    """A short standalone line with no sentence-ending punctuation, followed by a longer paragraph of body text: one
    that ends a sentence or is too long for a title (a short line before another short line is a caption or a
    signature, not a title)."""
    line = text[start:end].strip()
    if not line or len(line) > TITLE_MAX or re.search(r"[.。:：;；,，]$", line):
        return False
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    if start and before != "\n\n" or after != "\n\n":
        return False
    nxt = re.match(r"\s*([^\n]+)", text[end:])
    body = nxt.group(1).strip() if nxt else ""
    return len(body) > len(line) and (len(body) > TITLE_MAX or bool(_SENTENCE_END.search(body)))
