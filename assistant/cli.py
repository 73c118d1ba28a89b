"""Command line: `assistant index | status | ...`. Heavy libraries are imported inside the commands that need them,
so `assistant --help` stays fast."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .errors import AssistantError


def _settings(ctx: click.Context, **overrides):
    from .settings import Settings

    given = {k: v for k, v in {**ctx.obj, **overrides}.items() if v is not None}
    return Settings(**given)


def _fail(exc: AssistantError) -> None:
    click.echo(f"Error: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), help="Corpus folder [env ASSISTANT_CORPUS_DIR; default ./corpus].")
@click.option("--index", "index_dir", type=click.Path(path_type=Path), help="Index folder [env ASSISTANT_INDEX_DIR; default ./index].")
@click.option("--embed-model", help="Embedding model: use, e5, use+e5 or st:<model> [env ASSISTANT_EMBED_MODEL].")
@click.pass_context
def main(ctx, corpus_dir, index_dir, embed_model):
    """A cited-answer assistant over policy documents, in Chinese and English.

    \b
    Example usage:
      assistant index                 # build or update the index of ./corpus
      assistant status                # what is indexed, and what changed since
    """
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    ctx.obj = {"corpus_dir": corpus_dir, "index_dir": index_dir, "embed_model": embed_model}


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
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        verb = "Rebuilt" if report.rebuilt else "Synced"
        click.echo(
            f"{verb}: {len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} removed, "
            f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded, {report.chunks_total} in the index."
        )
        for move in report.renamed:
            click.echo(f"  renamed: {move['from']} -> {move['to']} (vectors reused)")
        for failure in report.failed:
            click.echo(f"  failed: {failure.path}: {failure.error}", err=True)
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
        click.echo(json.dumps(st.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"Index:     {st.index_dir}  ({st.documents} documents, {st.chunks} chunks)")
    click.echo(f"Corpus:    {st.corpus_dir}")
    click.echo(f"Model:     {st.embed_model} (dimension {st.dimension})")
    click.echo(f"Last sync: {st.last_sync or 'never'}")
    if not st.settings_match:
        click.echo("Settings:  the index was built with another model or chunking; run: assistant index --full")
    if st.up_to_date:
        click.echo("Status:    up to date")
    else:
        for kind, paths in st.behind.items():
            for path in paths:
                click.echo(f"Behind:    {kind}: {path}")
        click.echo("Run `assistant index` to update.")


if __name__ == "__main__":
    main()
