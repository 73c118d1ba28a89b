"""Command line: `assistant index | status | ...`. Heavy libraries are imported inside the commands that need them,
so `assistant --help` stays fast."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .errors import AssistantError, QueryError


def _settings(ctx: click.Context, **overrides):
    from .settings import Settings

    # a subcommand's own option wins over the group's, but an option not given leaves the group's in place
    given = {k: v for k, v in {**ctx.obj, **{k: v for k, v in overrides.items() if v is not None}}.items()
             if v is not None}
    return Settings(**given)


def _echo(message: str = "", err: bool = False) -> None:
    """click.echo, with control and formatting characters shown as escapes: document text, titles and file names
    may carry terminal escape sequences or bidirectional overrides, and a terminal would act on them."""
    click.echo(_safe(message), err=err)


def _safe(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch in "\n\t" else
                   f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}" for ch in str(text))


def _fail(exc: AssistantError) -> None:
    _echo(f"Error: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), help="Corpus folder [env ASSISTANT_CORPUS_DIR; default ./corpus].")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [env ASSISTANT_INDEX_DIR; default ./index].")
@click.option("--embed-model", help="Embedding model: use, e5, use+e5 or st:<model> [env ASSISTANT_EMBED_MODEL].")
@click.option("--chroma-url", help="Keep the index on a Chroma server, http://HOST:PORT [env ASSISTANT_CHROMA_URL].")
@click.option("--reranker", help="A cross-encoder (hub name or folder) to rescore the best passages [env ASSISTANT_RERANKER].")
@click.pass_context
def main(ctx, corpus_dir, index_dir, embed_model, chroma_url, reranker):
    """A cited-answer assistant over policy documents, in Chinese and English.

    \b
    Example usage:
      assistant index                 # build or update the index of ./corpus
      assistant ask "Which assets does the order call alternative assets?"
      assistant ask "行政命令给劳工部多长时间重新审查指引？" --json
      assistant search "fiduciary safe harbor" -k 5
      assistant status                # what is indexed, and what changed since
      assistant eval --qa eval/qa-dev.jsonl
    """
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    ctx.obj = {"corpus_dir": corpus_dir, "index_dir": index_dir, "embed_model": embed_model, "chroma_url": chroma_url,
               "reranker": reranker}


def _corpus_option(f):
    f = click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")(f)
    return click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), help="Corpus folder.")(f)


@main.command()
@_corpus_option
@click.option("--full", is_flag=True, help="Rebuild everything (needed after changing the model or chunking).")
@click.option("--json", "as_json", is_flag=True, help="Print the sync report as JSON.")
@click.pass_context
def index(ctx, corpus_dir, index_dir, full, as_json):
    """Bring the index in line with the corpus: new, changed, renamed and deleted files.

    Only chunks whose text changed are embedded again. Files that cannot be read are listed with the reason
    (exit status 1); every other file is still indexed and the existing index stays intact.

    \b
    Example usage:
      assistant index
      assistant index --corpus ~/policies --json
      assistant index --full          # after changing --embed-model
    """
    from .indexer import sync

    try:
        report = sync(_settings(ctx, corpus_dir=corpus_dir, index_dir=index_dir), full=full, progress=None if not as_json else False)
    except AssistantError as exc:
        _fail(exc)
    if as_json:
        data = report.to_dict()
        _echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        verb = "Rebuilt" if report.rebuilt else "Synced"
        _echo(
            f"{verb}: {len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} removed, "
            f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded, {report.chunks_total} in the index."
        )
        for move in report.renamed:
            _echo(f"  renamed: {move['from']} -> {move['to']} (vectors reused)")
        for failure in report.failed:
            _echo(f"  failed: {failure.path}: {failure.error}", err=True)
    if report.failed:
        sys.exit(1)


@main.command()
@_corpus_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def status(ctx, corpus_dir, index_dir, as_json):
    """What the index holds, and whether it is behind the corpus.

    \b
    Example usage:
      assistant status
      assistant status --json
    """
    from .indexer import status as index_status

    try:
        st = index_status(_settings(ctx, corpus_dir=corpus_dir, index_dir=index_dir))
    except AssistantError as exc:
        _fail(exc)
    if as_json:
        _echo(json.dumps(st.to_dict(), ensure_ascii=False, indent=2))
        return
    _echo(f"Index:     {st.index_dir}  ({st.documents} documents, {st.chunks} chunks)")
    _echo(f"Corpus:    {st.corpus_dir}")
    _echo(f"Model:     {st.embed_model} (dimension {st.dimension})")
    _echo(f"Last sync: {st.last_sync or 'never'}")
    if not st.settings_match:
        _echo("Settings:  the index was built with another model or chunking; run: assistant index --full")
    if st.up_to_date:
        _echo("Status:    up to date")
    else:
        for kind, paths in st.behind.items():
            for path in paths:
                _echo(f"Behind:    {kind}: {path}")
        _echo("Run `assistant index` to update.")



def _filters(doc, language, date_from, date_to) -> dict | None:
    filters = {"doc_id": list(doc) or None, "language": language, "date_from": date_from, "date_to": date_to}
    return {k: v for k, v in filters.items() if v} or None


def _filter_options(f):
    f = click.option("--date-to", help="Only documents dated on or before YYYY-MM-DD.")(f)
    f = click.option("--date-from", help="Only documents dated on or after YYYY-MM-DD.")(f)
    f = click.option("--language", type=click.Choice(["zh", "en", "mixed"]), help="Only documents in this language.")(f)
    return click.option("--doc", multiple=True, help="Only this document (its path in the corpus); repeatable.")(f)


def _checked(question: str) -> str:
    """The question, or a one-line error when it is longer than the assistant reads."""
    from .api import MAX_QUESTION_CHARS

    if len(question) > MAX_QUESTION_CHARS:
        _fail(QueryError(f"The question is {len(question):,} characters long; at most {MAX_QUESTION_CHARS:,} are "
                         "read. Shorten it."))
    return question


def _open(ctx, index_dir):
    from .api import Assistant

    return Assistant.open(_settings(ctx, index_dir=index_dir))


@main.command()
@click.argument("question")
@click.option("-k", "k", default=5, show_default=True, help="Passages to answer from.")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ask(ctx, question, k, index_dir, doc, language, date_from, date_to, as_json):
    """Answer a question from the documents, citing the exact passages; say so when they do not answer.

    \b
    Example usage:
      assistant ask "How long does the Secretary of Labor have to reexamine the guidance?"
      assistant ask "北卡罗来纳州的法案允许投资多少比例？" --json
      assistant ask "What did the 2022 release warn about?" --date-from 2022-01-01 --date-to 2022-12-31
    """
    try:
        question = _checked(question)
        answer = _open(ctx, index_dir).ask(question, k=k, filters=_filters(doc, language, date_from, date_to))
    except AssistantError as exc:
        _fail(exc)
    if as_json:
        _echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    _echo(answer.text)
    _echo()
    if answer.grounded:
        _echo("Sources:")
        for c in answer.citations:
            _echo(f"  [{c.n}] {c.title} — {c.locator} ({c.path}, characters {c.start}-{c.end})")
            _echo(f"      “{_one_line(c.quote, 300)}”")
    else:
        _echo("Nearest passages (they do not answer the question):")
        for p in answer.passages[:3]:
            _echo(f"  - {p.title} — {p.locator} ({p.path})")
            _echo(f"      {_one_line(p.text, 200)}")


@main.command()
@click.argument("query")
@click.option("-k", "k", default=5, show_default=True, help="Passages to return.")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")
@_filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the passages as JSON.")
@click.pass_context
def search(ctx, query, k, index_dir, doc, language, date_from, date_to, as_json):
    """The passages that best match a query (hybrid: vectors and keywords), in either language.

    \b
    Example usage:
      assistant search "digital assets definition" -k 3
      assistant search "稳定币 储备" --language en --json
    """
    try:
        query = _checked(query)
        passages = _open(ctx, index_dir).search(query, k=k, filters=_filters(doc, language, date_from, date_to))
    except AssistantError as exc:
        _fail(exc)
    if as_json:
        _echo(json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=2))
        return
    for i, p in enumerate(passages, 1):
        _echo(f"{i}. {p.title} — {p.locator} ({p.path}, score {p.score:.2f})")
        _echo(f"   {_one_line(p.text, 240)}")


@main.command(name="eval")
@click.option("--qa", "qa_file", required=True, type=click.Path(exists=True, path_type=Path), help="Question file (JSON lines).")
@click.option("-k", "k", default=10, show_default=True, help="Passages retrieved per question.")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def evaluate(ctx, qa_file, k, index_dir, as_json):
    """Score retrieval, citations and abstention on a question file against the current index.

    The file format and scoring are described in eval/README.md.

    \b
    Example usage:
      assistant eval --qa eval/qa-dev.jsonl
      assistant eval --qa eval/qa-extra.jsonl --json
    """
    from .evaluation import evaluate as run, format_report, load_questions

    try:
        assistant = _open(ctx, index_dir)
        items = load_questions(qa_file)
        result = run(
            lambda q, n: assistant.search(q, k=n),
            lambda q, n: assistant.ask(q, k=n),
            assistant.document_text,
            items,
            k=k,
            doc_ids=[d["doc_id"] for d in assistant.documents()],
        )
    except AssistantError as exc:
        _fail(exc)
    if as_json:
        _echo(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    else:
        _echo(format_report(result))


@main.command()
@_corpus_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 opens it to the network).")
@click.option("--port", default=7860, show_default=True, type=int, help="Port to listen on.")
@click.option("--watch", is_flag=True, help="Sync the index whenever files in the corpus folder change.")
@click.option("--settle", default=1.0, show_default=True, type=float,
              help="With --watch: seconds without changes before a sync starts.")
@click.pass_context
def serve(ctx, corpus_dir, index_dir, host, port, watch, settle):
    """Serve the chat page at / and the JSON API under /api/ (OpenAPI at /docs).

    Builds the index first if there is none. Uploads, deletions and POST /api/index need an admin token: set
    ASSISTANT_ADMIN_TOKEN to enable them (they are off without it). Set ASSISTANT_READ_TOKEN to make reading
    need a token too (Authorization: Bearer <token>; in a browser, open /?token=<token> once). See
    docs/security.md.

    \b
    Example usage:
      assistant serve                      # http://127.0.0.1:7860/
      assistant serve --watch              # new, changed and deleted files are indexed as they come
      ASSISTANT_ADMIN_TOKEN=s3cret assistant serve --port 8000
      ASSISTANT_READ_TOKEN=r34d ASSISTANT_ADMIN_TOKEN=s3cret assistant serve
    """
    for key, value in (("GRADIO_ANALYTICS_ENABLED", "False"), ("HF_HUB_OFFLINE", "1")):
        os.environ.setdefault(key, value)
    from .api import Assistant
    from .indexer import sync
    from .store import Store

    settings = _settings(ctx, corpus_dir=corpus_dir, index_dir=index_dir)
    try:
        if Store.open_or_none(settings) is None:
            _echo(f"No index yet: building it from {settings.corpus_dir} ...", err=True)
            report = sync(settings)
            _echo(f"Indexed {len(report.added)} documents ({report.chunks_total} chunks).", err=True)
            for failure in report.failed:
                _echo(f"  failed: {failure.path}: {failure.error}", err=True)
        assistant = Assistant.open(settings)
        if watch:  # changes made while the server was down
            report = assistant.sync()
            if report.added or report.updated or report.removed:
                _echo(f"Caught up: {len(report.added)} added, {len(report.updated)} updated, "
                           f"{len(report.removed)} removed.", err=True)
    except AssistantError as exc:
        _fail(exc)
    from .server import Server, create_app

    app = create_app(assistant, settings, watch=watch, settle=settle)
    shown = f"[{host}]" if ":" in host else host
    _echo(f"Serving on http://{shown}:{port}/  (API under /api/, docs at /docs; Ctrl-C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        _echo(f"Warning: listening on {host}, reachable from other machines.", err=True)
    if not os.environ.get("ASSISTANT_ADMIN_TOKEN"):
        _echo("Uploads are off (set ASSISTANT_ADMIN_TOKEN to enable them).", err=True)
    if settings.read_token:
        _echo(f"Reading needs the read token: open http://{shown}:{port}/?token=<ASSISTANT_READ_TOKEN> once.",
              err=True)
    try:
        Server(app, host=host, port=port).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down cleanly
        _echo("Stopped.", err=True)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


if __name__ == "__main__":
    main()
