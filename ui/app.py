"""The chat page: `build_app(assistant, settings)` → a Gradio Blocks app.

Every handler below is a plain function of its inputs (an Assistant, the question, the history...) returning plain
values, so the tests call them without a browser; `build_app` only wires them to components. Document text is data:
everything taken from a document is HTML-escaped before it reaches the page, and only the quoted span is wrapped in
<mark>. The whole document opens in an expandable view inside each source card, scrolled to the highlighted quote.

Gradio 6 takes theme and CSS at launch (or mount) time: pass `**page_options()` to `app.launch()` or to
`gr.mount_gradio_app()`.
"""

from __future__ import annotations

import hmac
import html
import os
import re
from dataclasses import dataclass

from assistant import uploads
from assistant.documents import FORMATS
from assistant.api import MAX_QUESTION_CHARS
from assistant.errors import AssistantError, QueryError, UploadError
from assistant.settings import Settings, path_scrubber
from assistant.types import Answer, Citation, Passage

ADMIN_TOKEN_ENV = "ASSISTANT_ADMIN_TOKEN"
CONTEXT_CHARS = 300  # document text shown on each side of a quote in a source card
CONTEXT_CHARS_CJK = 120  # as much to read in Chinese takes fewer characters
FULL_VIEW_CHARS = 40_000  # the expandable full view shows at most this much on each side of the quote
SNIPPET_CHARS = 360  # nearest passages of an abstention are shown up to this length

EXAMPLES = [
    "Which assets does the executive order count as alternative assets?",
    "行政命令给劳工部长多少天重新审查有关指引？",
    "What did the Labor Department say about crypto in 401(k) plans in 2022?",
    "北卡罗来纳州的法案允许州财政部长投资哪些数字资产？",
]
LANGUAGES = [("Any", ""), ("English", "en"), ("中文", "zh"), ("Mixed", "mixed")]
DOCUMENT_HEADERS = ["Title", "Date", "Issuer", "Language", "Chunks", "File"]
SOURCES_PLACEHOLDER = (
    '<div class="src-empty">Ask a question: the sources of the answer appear here, with the quoted words '
    "highlighted in their document.<br>提问后，答案的出处会显示在这里，引用的原文会被高亮。</div>"
)


# ---------------------------------------------------------------------------------------------------------- chat


def filters_from(doc_ids=None, language: str = "", date_from: str = "", date_to: str = "") -> dict | None:
    """The retrieval filters the form describes (see assistant.types.Filters), or None for no filter."""
    filters = {}
    if doc_ids:
        filters["doc_id"] = list(doc_ids)
    if language:
        filters["language"] = language
    if date_from and date_from.strip():
        filters["date_from"] = date_from.strip()
    if date_to and date_to.strip():
        filters["date_to"] = date_to.strip()
    return filters or None


def message_text(content) -> str:
    """The text of one chat message's content, whichever shape Gradio hands it over in (str, part dict, list)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return (content.get("text") or "") if content.get("type", "text") == "text" else ""
    if isinstance(content, (list, tuple)):
        return "\n".join(t for t in (message_text(part) for part in content) if t)
    return ""


def plain_history(history, shown: bool = True) -> list[dict]:
    """The conversation as the assistant reads it: [{"role", "content": str}]. Gradio 6 hands messages over with
    `content` as a list of parts; `shown`: the user's turns are as answer_turn displays them (escaped), so they are
    unescaped back to the question as typed."""
    turns = []
    for turn in history or []:
        if isinstance(turn, dict) and turn.get("role") in ("user", "assistant"):
            text = message_text(turn.get("content"))
            turns.append({"role": turn["role"], "content": _unmd(text) if shown and turn["role"] == "user" else text})
    return turns


def answer_turn(assistant, message: str, history, doc_ids=None, language: str = "", date_from: str = "",
                date_to: str = "") -> tuple[list[dict], str]:
    """One chat turn: the history with the question and its answer appended, and the sources panel's HTML.
    Follow-ups are resolved against the earlier questions of `history`."""
    history = list(history or [])
    message = (message or "").strip()
    if not message:
        return history, sources_html(None, assistant.document_text)
    user = {"role": "user", "content": _md(message)}  # shown as typed: markup in a question is text too
    try:
        check_length(message)
        answer = assistant.ask(message, history=plain_history(history),
                               filters=filters_from(doc_ids, language, date_from, date_to))
    except AssistantError as exc:
        shown = _md(shown_error(assistant, exc))
        reply = {"role": "assistant", "content": f'<span class="chat-error">{shown}</span>'}
        return history + [user, reply], sources_html(None, assistant.document_text)
    reply = {"role": "assistant", "content": answer_markdown(answer)}
    return history + [user, reply], sources_html(answer, assistant.document_text, document_meta(assistant))


def answer_markdown(answer: Answer) -> str:
    """The answer as the chat bubble shows it: text escaped (quotes are document text), [n] markers styled."""
    if not answer.grounded:
        return f'<span class="no-answer">{_md(answer.text)}</span>'
    parts = re.split(r"(\[\d+\])", answer.text)
    return "".join(f'<sup class="cite">{part}</sup>' if re.fullmatch(r"\[\d+\]", part) else _md(part)
                   for part in parts)


def chat_text(answer: Answer, meta: dict | None = None) -> str:
    """The answer for API callers (`/chat`): its text with markers, then the numbered sources with their quotes."""
    meta = meta or {}
    lines = [answer.text, ""]
    if answer.grounded:
        lines.append("Sources:")
        for c in answer.citations:
            date = meta.get(c.doc_id, {}).get("date", "")
            lines.append(f"[{c.n}] {c.title}{f' ({date})' if date else ''}, {c.locator}")
            lines.append(f"    “{_one_line(c.quote)}”")
    elif answer.passages:
        lines.append("Nearest passages (they do not answer the question):")
        for p in answer.passages:
            lines.append(f"- {p.title}, {p.locator}: “{_one_line(_snippet(p.text))}”")
    return "\n".join(lines).rstrip()


def shown_error(assistant, exc: Exception) -> str:
    """An error's message as the page shows it: host paths replaced by what they are (the page may be remote)."""
    settings = getattr(assistant, "settings", None)
    return path_scrubber(settings)(str(exc)) if isinstance(settings, Settings) else str(exc)


def check_length(question: str) -> None:
    """QueryError for a question longer than the assistant reads (assistant.api.MAX_QUESTION_CHARS)."""
    if len(question or "") > MAX_QUESTION_CHARS:
        raise QueryError(f"The question is {len(question):,} characters long; at most {MAX_QUESTION_CHARS:,} are "
                         "read. Shorten it.")


def chat_api(assistant, message: str, history=None) -> str:
    """What `Client(url).predict(message, api_name="/chat")` returns."""
    check_length(message)
    answer = assistant.ask(message, history=plain_history(history, shown=False))
    return chat_text(answer, document_meta(assistant))


# ------------------------------------------------------------------------------------------------------- sources


def document_meta(assistant) -> dict[str, dict]:
    return {d["doc_id"]: d for d in assistant.documents()}


def sources_html(answer: Answer | None, document_text, meta: dict | None = None) -> str:
    """The sources panel. A card per cited document (title, date, issuer), holding each of its citations: marker,
    locator, the quote in <mark> inside its surrounding text, and the whole document in an expandable view scrolled
    to the quote. An abstention lists the nearest passages under a label saying they do not answer the question.
    `document_text(doc_id)` returns a document's full text (or None); `meta` maps doc_id to its metadata."""
    if answer is None:
        return SOURCES_PLACEHOLDER
    meta = meta or {}
    if not answer.grounded:
        cards = "".join(_passage_card(p, meta.get(p.doc_id, {})) for p in answer.passages)
        return (
            '<div class="abstain"><b>Not an answer.</b> The documents do not answer this question. The passages '
            "below are the nearest ones found; they do not answer it.<br>文档中没有这个问题的答案；以下只是最接近的段落，"
            "并不回答该问题。</div>" + (cards or '<div class="src-empty">No passage came close.</div>')
        )
    by_doc: dict[str, list[Citation]] = {}
    for c in answer.citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    cards = []
    for doc_id, cites in by_doc.items():
        text = document_text(doc_id)
        body = "".join(_citation_block(c, text) for c in cites)
        cards.append(_card(cites[0].title, _meta_line(meta.get(doc_id, {})), body))
    count = len(answer.citations)
    return f'<div class="src-count">{count} source{"s" if count != 1 else ""}</div>' + "".join(cards)


def _citation_block(c: Citation, text: str | None) -> str:
    head = f'<div class="src-loc"><span class="src-n">{c.n}</span><span>{_esc(c.locator)}</span></div>'
    start, end = c.start, c.end
    if text is None or text[start:end] != c.quote:
        # The document changed since the answer (or is gone): find the quote again, else show it alone.
        found = text.find(c.quote) if text else -1
        if found < 0:
            return (f'<div class="src-cite">{head}<div class="src-ctx"><mark>{_esc(c.quote)}</mark></div>'
                    '<div class="src-meta">The document changed since this answer; the quote is shown alone.</div>'
                    "</div>")
        start, end = found, found + len(c.quote)
    return (
        f'<div class="src-cite">{head}'
        f'<div class="src-ctx">{_marked(text, start, end, _radius(c.quote), snap=True)}</div>'
        '<details class="src-full"><summary>Open the whole document at this passage</summary>'
        f'<div class="src-doc">{_marked(text, start, end, FULL_VIEW_CHARS, snap=False)}</div></details></div>'
    )


def _passage_card(p: Passage, meta: dict) -> str:
    meta = {"date": p.date, "issuer": p.issuer, **{k: v for k, v in meta.items() if v}}
    body = (f'<div class="src-cite"><div class="src-loc"><span>{_esc(p.locator)}</span></div>'
            f'<div class="src-ctx">{_esc(_snippet(_tidy(p.text)))}</div></div>')
    return _card(p.title, _meta_line(meta), body, extra_class="near")


def _card(title: str, meta_line: str, body: str, extra_class: str = "") -> str:
    return (f'<div class="src-card {extra_class}"><div class="src-title">{_esc(title)}</div>'
            f'<div class="src-meta">{meta_line}</div>{body}</div>')


def _meta_line(meta: dict) -> str:
    items = [meta.get("date", ""), meta.get("issuer", "")]
    return "".join(f"<span>{_esc(item)}</span>" for item in items if item)


def _marked(text: str, start: int, end: int, radius: int, snap: bool) -> str:
    """text[start:end] in <mark>, with up to `radius` characters of the document either side, all escaped.
    snap: cut at word boundaries and collapse blank lines (a card's context); else the text exactly (full view)."""
    a, b = max(0, start - radius), min(len(text), end + radius)
    if snap:  # start and stop at a word boundary where one is near (CJK text has none: cut anywhere)
        space = text.find(" ", a, min(start, a + 25))
        a = space + 1 if a > 0 and space >= 0 else a
        space = text.rfind(" ", max(end, b - 25), b)
        b = space if b < len(text) and space >= 0 else b
    before, after = text[a:start], text[end:b]
    if snap:  # a compact card; the full view keeps the text as it is
        before, after = _tidy(before).lstrip("\n"), _tidy(after).rstrip()
    return (("…" if a > 0 else "") + _esc(before) + f"<mark>{_esc(text[start:end])}</mark>" + _esc(after)
            + ("…" if b < len(text) else ""))


def _radius(quote: str) -> int:
    cjk = sum(1 for ch in quote if "\u3400" <= ch <= "\u9fff")
    return CONTEXT_CHARS_CJK if cjk > len(quote) / 3 else CONTEXT_CHARS


def _tidy(text: str) -> str:
    return re.sub(r"\n\s*\n\s*", "\n", text)  # compact cards: blank lines around the quote collapse


def _snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rstrip() + "…"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _esc(text: str) -> str:
    return html.escape(text or "", quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")
_MD_SPECIAL_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~$])")


def _md(text: str) -> str:
    """Text for a Markdown-rendered chat bubble: HTML escaped, Markdown punctuation backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text or "", quote=False))


def _unmd(text: str) -> str:
    """The text _md() was given."""
    return html.unescape(_MD_SPECIAL_ESCAPED.sub(r"\1", text))


# ------------------------------------------------------------------------------------------ documents and status


def documents_table(assistant) -> list[list]:
    """One row per indexed document: title, date, issuer, language, chunks, file."""
    return [[d.get("title", ""), d.get("date", ""), d.get("issuer", ""), d.get("language", ""),
             int(d.get("chunks", 0) or 0), d["doc_id"]] for d in assistant.documents()]


def document_choices(assistant) -> list[tuple[str, str]]:
    """(label, doc_id) pairs for the documents filter."""
    return [(f"{d.get('title') or d['doc_id']}" + (f" ({d['date']})" if d.get("date") else ""), d["doc_id"])
            for d in assistant.documents()]


def status_markdown(assistant) -> str:
    """One line: documents, chunks, model, last sync, and what the index lacks from the corpus."""
    try:
        s = assistant.status()
    except AssistantError as exc:
        return f"Index unavailable: {_md(shown_error(assistant, exc))}"
    last = s.last_sync.replace("T", " ").replace("+0000", " UTC") if s.last_sync else "never"
    line = (f"**{s.documents}** documents · **{s.chunks}** chunks · model `{s.embed_model or '?'}` · "
            f"last sync {last}")
    pending = sum(len(v) for v in s.behind.values())
    if pending:
        line += f" · {pending} file change{'s' if pending != 1 else ''} not indexed yet"
    if not s.settings_match:
        line += " · settings differ from the index (rebuild: `assistant index --full`)"
    return line


# --------------------------------------------------------------------------------------------------------- upload


@dataclass(frozen=True)
class UploadOutcome:
    name: str  # the file name as uploaded
    saved_as: str  # its name in the corpus folder ("" when refused)
    ok: bool
    detail: str  # "indexed, 7 chunks" or the reason it was refused


def admin_token_from_env() -> str | None:
    return os.environ.get(ADMIN_TOKEN_ENV) or None


def upload_disabled_message() -> str:
    return (f"Uploading is off. To enable it, set `{ADMIN_TOKEN_ENV}` when starting the server "
            f"(e.g. `{ADMIN_TOKEN_ENV}=<a secret> assistant serve`), then type that token here.")


def safe_filename(name: str) -> str:
    """The name a file may take in the corpus folder (assistant.uploads.safe_filename: its basename, without control
    characters, reserved characters or leading dots, at most 120 bytes, extension kept). Raises ValueError with the
    reason when nothing usable is left or the name is reserved."""
    try:
        return uploads.safe_filename(name)
    except UploadError as exc:
        raise ValueError(str(exc)) from None


def upload_files(assistant, settings, files, token: str | None, admin_token: str | None) -> list[UploadOutcome]:
    """Put uploaded files into the corpus folder and index them (one incremental sync for the batch).

    `files`: paths (their basename is the uploaded name) or (name, path) pairs. All are refused when `admin_token`
    is unset or `token` does not match it; each file is refused, with its reason, when its type is not accepted,
    it is over settings.max_file_mb, its name is unusable, or the indexer's own loader cannot read it (checked
    before the file enters the corpus; see assistant.uploads). Same-named files in the corpus are replaced."""
    items = [_name_and_path(f) for f in (files or [])]
    if not admin_token:
        return [UploadOutcome(name, "", False, upload_disabled_message()) for name, _ in items]
    if not token or not hmac.compare_digest(token.strip().encode(), admin_token.encode()):
        return [UploadOutcome(name, "", False, "wrong or missing admin token") for name, _ in items]
    outcomes: list[uploads.Outcome] = []
    for name, path in items:
        try:
            saved = uploads.admit(name, settings)
            uploads.store(path, saved, settings)  # checks the size as it copies
            outcomes.append(uploads.Outcome(name, saved, "saved"))
        except UploadError as exc:
            outcomes.append(uploads.Outcome(name, "", "refused", str(exc)))
    if not any(o.status == "saved" for o in outcomes):
        return [_shown_outcome(o, {}) for o in outcomes]
    try:
        report = assistant.sync()
    except AssistantError as exc:
        failure = f"saved, but indexing failed: {shown_error(assistant, exc)}"
        return [UploadOutcome(o.filename, o.doc_id, False, failure)
                if o.status == "saved" else _shown_outcome(o, {}) for o in outcomes]
    chunks = {d["doc_id"]: d.get("chunks", 0) for d in assistant.documents()}
    return [_shown_outcome(o, chunks) for o in uploads.settle(outcomes, report, chunks)]


_STATUS_NOTES = {"updated": " (replaced the file of that name)", "unchanged": " (the same file was already indexed)"}


def _shown_outcome(o: uploads.Outcome, chunks: dict[str, int]) -> UploadOutcome:
    """An uploads.Outcome as the page reports it."""
    if o.status == "refused":
        return UploadOutcome(o.filename, "", False, o.error)
    if o.status == "failed":
        return UploadOutcome(o.filename, o.doc_id, False, f"saved, but not indexed: {o.error}")
    n = chunks.get(o.doc_id, 0)
    return UploadOutcome(o.filename, o.doc_id, True,
                         f"indexed, {n} chunk{'s' if n != 1 else ''}{_STATUS_NOTES.get(o.status, '')}")


def upload_report_markdown(outcomes: list[UploadOutcome]) -> str:
    """One line per file: ✓ name, what happened; ✗ name, why it was refused (no emoji: they need a font)."""
    if not outcomes:
        return "Choose files first."
    lines = []
    for o in outcomes:
        shown = o.name if not o.saved_as or o.saved_as == o.name else f"{o.name} → {o.saved_as}"
        detail = o.detail if o.ok or o.saved_as else f"refused: {o.detail}"
        lines.append(f"- {'✓' if o.ok else '✗'} **{_md(shown)}** — {_md(detail)}")
    return "\n".join(lines)


def _name_and_path(item) -> tuple[str, str]:
    if isinstance(item, (tuple, list)):
        return str(item[0]), str(item[1])
    path = str(getattr(item, "name", item))  # a path, or a tempfile-like object from older Gradio versions
    return getattr(item, "orig_name", None) or os.path.basename(path), path


# --------------------------------------------------------------------------------------------------------- the page

CSS = """
@font-face { font-family: "Latin Quotes"; unicode-range: U+2018-201F;
  src: local("Noto Sans"), local("DejaVu Sans"), local("Arial"), local("Helvetica"); }
.gradio-container { max-width: 1480px !important; width: 100% !important; margin: 0 auto; }
#topbar { align-items: center; gap: 12px; border-bottom: 1px solid var(--border-color-primary); padding-bottom: 6px; }
#topbar h2 { margin: 0; font-size: 1.25rem; }
#status { text-align: right; color: var(--body-text-color-subdued); font-size: 13px; }
#status p { margin: 0; }
#chat .cite { color: var(--color-accent); font-weight: 600; font-size: .78em; margin-left: 1px; }
#chat .no-answer { color: #9a3412; }
#chat .chat-error { color: #b91c1c; }
#sources { max-height: 720px; overflow-y: auto; padding-right: 4px; }
.src-count { font-size: 12px; text-transform: uppercase; letter-spacing: .06em;
  color: var(--body-text-color-subdued); margin: 2px 0 8px; }
.src-empty { color: var(--body-text-color-subdued); font-size: 14px; line-height: 1.7; padding: 28px 16px;
  border: 1px dashed var(--border-color-primary); border-radius: 12px; text-align: center; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 12px; padding: 10px 14px;
  margin-bottom: 10px; background: var(--block-background-fill); box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.src-card.near { opacity: .85; border-style: dashed; }
.src-title { font-weight: 600; line-height: 1.35; }
.src-meta { color: var(--body-text-color-subdued); font-size: 12px; margin: 2px 0 4px; }
.src-cite + .src-cite { border-top: 1px solid var(--border-color-primary); margin-top: 8px; padding-top: 6px; }
.src-loc { display: flex; gap: 6px; align-items: center; font-size: 12.5px; font-weight: 600; margin: 4px 0; }
.src-n { background: var(--color-accent); color: #fff; border-radius: 999px; min-width: 20px;
  text-align: center; font-size: 11.5px; padding: 0 6px; }
.src-meta span + span::before { content: " · "; }
.src-ctx { white-space: pre-wrap; font-size: 13.5px; line-height: 1.65; color: var(--body-text-color-subdued);
  border-left: 3px solid var(--color-accent-soft); padding-left: 10px; }
.src-card mark { background: #fde68a; color: #1f2937; padding: 1px 2px; border-radius: 3px; }
.src-full summary { cursor: pointer; font-size: 12.5px; color: var(--color-accent); margin-top: 7px; }
.src-doc { position: relative; white-space: pre-wrap; max-height: 340px; overflow-y: auto; font-size: 13px;
  line-height: 1.6; margin-top: 6px; padding: 8px 10px; border-radius: 8px;
  background: var(--background-fill-secondary); }
.abstain { background: #fff7ed; color: #7c2d12; border: 1px solid #fdba74; border-radius: 12px;
  padding: 10px 14px; margin-bottom: 10px; font-size: 13.5px; line-height: 1.6; }
#documents .table-wrap * { font-family: var(--font) !important; font-size: 13.5px; }
#upload-note { background: var(--background-fill-secondary); border-radius: 10px; padding: 8px 14px; }
#examples { gap: 8px; }
#examples button { font-weight: 400; font-size: 13px; justify-content: flex-start; text-align: left;
  white-space: normal; line-height: 1.4; }
"""
# "Latin Quotes" (in CSS) keeps ’ and “ ” proportional: Noto Sans CJK draws them full-width inside English text.
FONTS = ["Latin Quotes", "Noto Sans", "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei",
         "system-ui", "sans-serif"]
MONO = ["Noto Sans Mono", "Noto Sans Mono CJK SC", "ui-monospace", "monospace"]
# Scroll an opened full-document view to its highlighted quote (toggle does not bubble: listen while capturing).
SOURCES_JS = """
element.addEventListener('toggle', (event) => {
  const box = event.target.classList && event.target.classList.contains('src-full') && event.target.open
    ? event.target.querySelector('.src-doc') : null;
  const mark = box && box.querySelector('mark');
  if (mark) box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
}, true);
"""


def page_options() -> dict:
    """Theme and CSS for `app.launch(**page_options())` or `gr.mount_gradio_app(..., **page_options())`. Fonts are
    local ones (no web-font download: the page works offline; Noto Sans CJK renders Chinese)."""
    import gradio as gr

    theme = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate", radius_size="lg",
                           font=FONTS, font_mono=MONO)
    return {"theme": theme, "css": CSS}


def build_app(assistant, settings=None, admin_token: str | None = None):
    """The chat page for `assistant`. `admin_token` enables uploads (default: $ASSISTANT_ADMIN_TOKEN)."""
    import gradio as gr

    settings = settings or assistant.settings
    admin_token = admin_token if admin_token is not None else admin_token_from_env()
    accepted = sorted(FORMATS)

    def respond(message, history, doc_ids, language, date_from, date_to):
        history, sources = answer_turn(assistant, message, history, doc_ids, language, date_from, date_to)
        return history, sources, ""

    def chat(message: str, history: list | None = None) -> str:
        """Ask a question (English or Chinese); returns the answer with its [n] markers, then the numbered sources
        (title, locator, quote). `history`: earlier messages as [{"role", "content"}], for follow-up questions."""
        try:
            return chat_api(assistant, message, history)
        except AssistantError as exc:  # shown to the API caller as the error's message
            raise gr.Error(shown_error(assistant, exc)) from None

    def refresh_views():
        choices = document_choices(assistant)
        return status_markdown(assistant), documents_table(assistant), gr.update(choices=choices)

    def upload(files, token):
        outcomes = upload_files(assistant, settings, files, token, admin_token)
        return (upload_report_markdown(outcomes), *refresh_views())

    with gr.Blocks(title="Policy Assistant · 政策问答") as app:
        with gr.Row(elem_id="topbar"):
            gr.Markdown("## Policy Assistant · 政策问答", elem_id="brand")
            status = gr.Markdown(status_markdown(assistant), elem_id="status")
        with gr.Tabs():
            with gr.Tab("Ask · 提问", id="ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            elem_id="chat", show_label=False, height=560, latex_delimiters=[],
                            buttons=["copy_all"], feedback_options=None,
                            placeholder="**Ask about the indexed policy documents, in English or 中文.**<br>"
                                        "Every sentence of an answer is quoted from a document and marked [n].",
                        )
                        with gr.Row():
                            box = gr.Textbox(placeholder="Ask a question… / 输入问题…", show_label=False,
                                             scale=6, container=False, elem_id="question", autofocus=True,
                                             max_length=MAX_QUESTION_CHARS)
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                            new = gr.Button("New chat", variant="secondary", scale=1, min_width=100)
                        with gr.Row(elem_id="examples"):
                            example_buttons = [gr.Button(q, size="sm", variant="secondary", min_width=240)
                                               for q in EXAMPLES]
                        with gr.Accordion("Filters · 筛选", open=False):
                            doc_filter = gr.Dropdown(choices=document_choices(assistant), multiselect=True,
                                                     value=[], label="Documents", elem_id="doc-filter")
                            with gr.Row():
                                language = gr.Radio(LANGUAGES, value="", label="Document language")
                                date_from = gr.Textbox(label="From (YYYY-MM-DD)", placeholder="2025-01-01")
                                date_to = gr.Textbox(label="To (YYYY-MM-DD)", placeholder="2025-12-31")
                    with gr.Column(scale=2, min_width=320):
                        sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="sources", js_on_load=SOURCES_JS)
            with gr.Tab("Documents · 文档", id="documents"):
                table = gr.Dataframe(value=documents_table(assistant), headers=DOCUMENT_HEADERS,
                                     interactive=False, wrap=True, elem_id="documents",
                                     column_widths=["38%", "10%", "20%", "8%", "7%", "17%"])
            with gr.Tab("Add documents · 上传", id="upload"):
                enabled = bool(admin_token)
                gr.Markdown(
                    f"Accepted: {', '.join(accepted)}; at most {settings.max_file_mb:g} MB each. Files go into the "
                    "corpus folder and are indexed at once; the chat keeps answering meanwhile."
                    if enabled else upload_disabled_message(), elem_id="upload-note"
                )
                files = gr.File(file_count="multiple", file_types=accepted, label="Documents",
                                interactive=enabled, height=160)
                token = gr.Textbox(type="password", label="Admin token", interactive=enabled)
                upload_btn = gr.Button("Upload and index", variant="primary", interactive=enabled)
                upload_result = gr.Markdown(elem_id="upload-result")

        chat_inputs = [box, chatbot, doc_filter, language, date_from, date_to]
        # Questions run in their own concurrency group: an upload's indexing (group "upload") never blocks them.
        gr.on([box.submit, send.click], respond, chat_inputs, [chatbot, sources, box],
              concurrency_limit=2, concurrency_id="chat", api_visibility="private")
        for button, question in zip(example_buttons, EXAMPLES):
            button.click(lambda q=question: q, None, box, queue=False, api_visibility="private").then(
                respond, chat_inputs, [chatbot, sources, box], concurrency_limit=2, concurrency_id="chat",
                api_visibility="private")
        new.click(lambda: ([], SOURCES_PLACEHOLDER, ""), None, [chatbot, sources, box], queue=False,
                  api_visibility="private")
        chatbot.clear(lambda: SOURCES_PLACEHOLDER, None, sources, queue=False, api_visibility="private")
        upload_btn.click(upload, [files, token], [upload_result, status, table, doc_filter],
                         concurrency_limit=1, concurrency_id="upload", api_visibility="private")
        app.load(refresh_views, None, [status, table, doc_filter], api_visibility="private")
        gr.api(chat, api_name="chat", concurrency_limit=2, concurrency_id="chat")
    return app
