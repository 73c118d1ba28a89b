"""Bring the index in line with the corpus: added, changed, renamed and removed files, incrementally.

The sync reconciles desired state (the corpus, chunked) with stored state (the store's chunk ids) per document:
chunks whose text is unchanged keep their id and vector (only their span metadata is updated when it moved), new
chunk texts are embedded unless a stored vector for the same text exists (renames, moved passages), and vanished
chunks are deleted. A document's record is written last, so a sync killed at any point leaves an index that still
answers, and the next sync finds the unfinished documents (their record is missing or has the old hash) and
completes them.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from . import documents as docs
from .chunking import chunk_document
from .errors import DocumentError, IndexMismatchError
from .settings import Settings
from .store import Store
from .types import Chunk, Document, FailedFile, IndexStatus, SyncReport

_EMBED_GROUP = 64  # chunks gathered across documents per embedding call (and per crash-safe write step)


def wanted_manifest(settings: Settings, embedder) -> dict:
    return {"embed_model": embedder.name, "dimension": embedder.dim, **settings.chunking_signature()}


def _mismatch(manifest: dict, wanted: dict) -> list[str]:
    return [f"{key}: index has {manifest.get(key)!r}, settings ask {value!r}"
            for key, value in wanted.items() if manifest.get(key) != value]


@dataclass
class _Pending:
    doc: Document
    chunks: list[Chunk]
    structure_json: str
    is_new: bool


def sync(settings: Settings, full: bool = False, progress: bool | None = None, embedder=None) -> SyncReport:
    """Update the index from the corpus. Raises IndexMismatchError when the index was built with another model or
    chunking (rebuild with full=True); every other problem with a file is reported in SyncReport.failed."""
    from .embeddings import load_embedder

    embedder = embedder or load_embedder(settings.embed_model)
    wanted = wanted_manifest(settings, embedder)
    active = Store.open_or_none(settings)
    if active is not None and not full and (problems := _mismatch(active.manifest, wanted)):
        raise IndexMismatchError(
            "The index was built with other settings (" + "; ".join(problems) + "). "
            "Rebuild it with: assistant index --full"
        )
    rebuilt = active is None or full
    store = Store.new_generation(settings, wanted) if rebuilt else active

    corpus = settings.corpus_dir
    if not corpus.is_dir():
        raise DocumentError(str(corpus), "corpus folder not found (set --corpus or ASSISTANT_CORPUS_DIR)")
    stored = store.documents()
    files = {docs.doc_id_for(p, corpus): p for p in docs.discover(corpus)}
    stored_hash = {doc_id: meta["content_hash"] for doc_id, meta in stored.items()}

    failed: list[FailedFile] = []
    to_load: list[tuple[str, Path]] = []
    unchanged = 0
    for doc_id, path in files.items():
        try:
            digest = docs.content_hash(path)
        except OSError as exc:
            failed.append(FailedFile(doc_id, f"cannot read file ({exc.strerror or exc})"))
            continue
        if stored_hash.get(doc_id) == digest:
            unchanged += 1
        else:
            to_load.append((doc_id, path))

    removed_ids = [doc_id for doc_id in stored if doc_id not in files]
    # Chunks left by a sync killed before a document's record was written, of files gone since.
    orphan_ids = sorted({m["doc_id"] for m in store.chunk_metas().values()} - set(files) - set(stored))

    pending: list[_Pending] = []
    for doc_id, path in to_load:
        try:
            doc = docs.load(path, corpus, int(settings.max_file_mb * 1e6))
        except DocumentError as exc:
            failed.append(FailedFile(doc_id, exc.reason))  # an already indexed version stays as it was
            continue
        chunks, structure = chunk_document(doc, settings.chunk_chars, settings.chunk_overlap)
        pending.append(_Pending(doc, chunks, json.dumps(structure.to_json()), doc_id not in stored))

    embedded = 0
    bar = _progress(sum(len(p.chunks) for p in pending), progress)
    group: list[_Pending] = []
    for item in pending:
        group.append(item)
        if sum(len(p.chunks) for p in group) >= _EMBED_GROUP:
            embedded += _write_group(store, embedder, group, settings, bar)
            group = []
    if group:
        embedded += _write_group(store, embedder, group, settings, bar)
    if bar is not None:
        bar.close()

    for doc_id in orphan_ids + removed_ids:
        store.delete_chunks(list(store.chunk_metas(doc_id)))
        store.delete_document(doc_id)

    added = sorted(p.doc.id for p in pending if p.is_new)
    removed = sorted(removed_ids)
    by_hash_removed = {stored_hash[d]: d for d in removed}
    renamed = [{"from": by_hash_removed[p.doc.content_hash], "to": p.doc.id}
               for p in pending if p.is_new and p.doc.content_hash in by_hash_removed]
    store.activate(last_sync=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return SyncReport(
        added=added,
        updated=sorted(p.doc.id for p in pending if not p.is_new),
        removed=removed,
        renamed=renamed,
        unchanged=unchanged,
        chunks_embedded=embedded,
        chunks_total=store.count_chunks(),
        failed=sorted(failed, key=lambda f: f.path),
        rebuilt=rebuilt,
    )


def _write_group(store: Store, embedder, group: list[_Pending], settings: Settings, bar) -> int:
    """Embed what is new in these documents (reusing stored vectors of identical text), then write each document:
    new chunks, moved spans, deleted chunks, and finally its record."""
    plans = []
    need: dict[str, str] = {}  # text_hash -> text to embed
    for item in group:
        existing = store.chunk_metas(item.doc.id)
        records = _chunk_records(item.doc, item.chunks)
        new = [r for r in records if r[0] not in existing]
        moved = [r for r in records if r[0] in existing and _differs(existing[r[0]], r[2])]
        gone = [id_ for id_ in existing if id_ not in {r[0] for r in records}]
        for _, text, meta in new:
            need[meta["text_hash"]] = text
        plans.append((item, new, moved, gone))

    vectors = store.vectors_for_hashes(list(need))
    missing = [h for h in need if h not in vectors]
    if missing:
        fresh = embedder.embed_passages([need[h] for h in missing], batch_size=settings.embed_batch)
        vectors.update(zip(missing, fresh))
    for item, new, moved, gone in plans:
        if new:
            store.add_chunks(
                [r[0] for r in new],
                [vectors[r[2]["text_hash"]] for r in new],
                [r[1] for r in new],
                [r[2] for r in new],
            )
        if moved:
            store.update_chunk_metas([r[0] for r in moved], [r[2] for r in moved])
        if gone:
            store.delete_chunks(gone)
        store.put_document(item.doc.id, item.doc.text, _doc_meta(item.doc, len(item.chunks), item.structure_json))
        if bar is not None:
            bar.update(len(item.chunks))
    return len(missing)


def _chunk_records(doc: Document, chunks: list[Chunk]) -> list[tuple[str, str, dict]]:
    """(id, text, metadata) per chunk. The id is the chunk's content key; repeated passages get a suffix."""
    seen: dict[str, int] = defaultdict(int)
    records = []
    for chunk in chunks:
        key = chunk.key
        seen[key] += 1
        id_ = key if seen[key] == 1 else f"{key}-{seen[key]}"
        meta = {
            "doc_id": doc.id,
            "path": doc.path,
            "title": doc.title,
            "date": doc.date,
            "issuer": doc.issuer,
            "language": doc.language,
            "start": chunk.start,
            "end": chunk.end,
            "ordinal": chunk.ordinal,
            "locator": chunk.locator,
            "text_hash": hashlib.sha1(chunk.text.encode()).hexdigest(),
        }
        records.append((id_, chunk.text, meta))
    return records


def _differs(old: dict, new: dict) -> bool:
    return any(old.get(k) != v for k, v in new.items())


def _doc_meta(doc: Document, n_chunks: int, structure_json: str) -> dict:
    return {
        "path": doc.path,
        "title": doc.title,
        "date": doc.date,
        "issuer": doc.issuer,
        "source_url": doc.source_url,
        "language": doc.language,
        "format": doc.format,
        "content_hash": doc.content_hash,
        "chunks": n_chunks,
        "structure": structure_json,
        "indexed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def status(settings: Settings) -> IndexStatus:
    """What the index holds and how far it is behind the corpus (without loading the embedding model)."""
    store = Store.open(settings)
    stored = store.documents()
    files = {docs.doc_id_for(p, settings.corpus_dir): p for p in docs.discover(settings.corpus_dir)} \
        if settings.corpus_dir.is_dir() else {}
    changed = []
    for doc_id, path in files.items():
        if doc_id in stored:
            try:
                if docs.content_hash(path) != stored[doc_id]["content_hash"]:
                    changed.append(doc_id)
            except OSError:
                changed.append(doc_id)
    from .embeddings import describe

    manifest = store.manifest
    wanted = {"embed_model": describe(settings.embed_model), **settings.chunking_signature()}
    settings_match = not _mismatch(manifest, wanted)
    return IndexStatus(
        documents=len(stored),
        chunks=store.count_chunks(),
        embed_model=manifest.get("embed_model", ""),
        dimension=manifest.get("dimension", 0),
        corpus_dir=str(settings.corpus_dir),
        index_dir=str(settings.index_dir),
        last_sync=manifest.get("last_sync", ""),
        behind={
            "added": sorted(d for d in files if d not in stored),
            "changed": sorted(changed),
            "removed": sorted(d for d in stored if d not in files),
        },
        settings_match=settings_match,
    )


def _progress(total: int, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="indexing", file=sys.stderr)
