"""Bring the index in line with the corpus: added, changed, renamed and removed files, incrementally.

The sync reconciles desired state (the corpus, chunked) with stored state (the store's chunk ids) per document:
chunks whose text is unchanged keep their id and vector (only their span metadata is updated when it moved), new
chunk texts are embedded unless a stored vector for the same text exists (renames, moved passages), and vanished
chunks are deleted. A document's record is written last, so a sync killed at any point leaves an index that still
answers, and the next sync finds the unfinished documents (their record is missing or has the old hash) and
completes them.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

import numpy as np
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import documents as docs
from .chunking import chunk_document
from .errors import DocumentError, IndexMismatchError
from .keywords import ChunkChanges, fingerprint, keyword_index, text_key
from .lexicon import update_lexicon
from .settings import Settings
from .store import Store, sentence_spans
from .textnorm import script_language
from .types import Chunk, Document, FailedFile, IndexStatus, SyncReport

RECALIBRATE_SHARE = 0.05  # of the index's sentences embedded afresh in one sync
# Chunks gathered across documents per embedding call and crash-safe write step: 16 in a sync's first group,
# doubling up to 256. Small first groups keep a short sync's steps fine-grained; large ones later because each
# group rewrites its documents' records and Chroma's cost per write call grew with the collection: a 5,000-chunk
# build spent 66 s writing in groups of 16, 38 s in groups of 256 (measured before documents' texts were stored in
# pieces, which removed most of that growth; embedding unchanged).
_EMBED_GROUP = 16
_EMBED_GROUP_MAX = 256


def wanted_manifest(settings: Settings, embedder) -> dict:
    return {"embed_model": embedder.name, "dimension": embedder.dim, **settings.chunking_signature()}


def _mismatch(manifest: dict, wanted: dict) -> list[str]:
    return [f"{key}: index has {manifest.get(key)!r}, settings ask {value!r}"
            for key, value in wanted.items() if manifest.get(key) != value]


@dataclass
class _Pending:
    doc: Document
    records: list["_ChunkRecord"]
    structure_json: str
    is_new: bool


class _KnownVectors:
    """Vectors a sync can reuse instead of embedding: of texts it embedded itself (kept only for texts that occur
    again later in it), and of texts already in the store. The store is asked only when it held sentences before
    the sync: a build into an empty index would otherwise query a growing collection once per group (164 s of a
    20,000-chunk build, docs/scale.md)."""

    def __init__(self, store: Store, pending: list[_Pending]):
        self._store = store
        self._ask_store = store.count_sentences() > 0
        self._repeats = Counter(m["text_hash"] for p in pending for r in p.records for _, _, m in r.sentences)
        self._kept: dict[str, np.ndarray] = {}

    def find(self, text_hashes: list[str]) -> dict[str, np.ndarray]:
        found = {h: self._kept[h] for h in text_hashes if h in self._kept}
        rest = [h for h in text_hashes if h not in found]
        if rest and self._ask_store:
            found.update(self._store.vectors_for_hashes(rest, sentences=True))
        return found

    def keep(self, vectors: dict[str, np.ndarray], group: list[_Pending]) -> None:
        """After a group is embedded: remember the vectors of texts the rest of the sync will meet again."""
        for h, n in Counter(m["text_hash"] for p in group for r in p.records for _, _, m in r.sentences).items():
            self._repeats[h] -= n
            if self._repeats[h] <= 0:
                self._kept.pop(h, None)
            elif h in vectors:
                self._kept[h] = vectors[h]


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
    # A sync that was killed part-way left the index marked dirty: this one sweeps what it may have left behind
    # and rebuilds everything derived, whatever it finds to do itself.
    was_dirty = bool(store.manifest.get("dirty"))
    # The derived indexes follow this sync's own changes, from the state they describe now (unless rebuilt).
    changes = ChunkChanges(fingerprint(store.manifest, store.count_chunks()))
    if to_load or removed_ids or was_dirty:
        store.mark_dirty()

    pending: list[_Pending] = []
    for doc_id, path in to_load:
        try:
            doc = docs.load(path, corpus, int(settings.max_file_mb * 1e6))
        except DocumentError as exc:
            failed.append(FailedFile(doc_id, exc.reason))  # an already indexed version stays as it was
            continue
        chunks, structure = chunk_document(doc, settings.chunk_chars, settings.chunk_overlap)
        records = [_ChunkRecord.of(doc, chunk, id_) for chunk, id_ in zip(chunks, _chunk_ids(chunks))]
        pending.append(_Pending(doc, records, json.dumps(structure.to_json()), doc_id not in stored))

    embedded = sentences_embedded = 0
    languages: set[str] = set()
    bar = _progress(sum(len(p.records) for p in pending), progress)
    known = _KnownVectors(store, pending)
    groups: list[list[_Pending]] = [[]]
    size = _EMBED_GROUP
    for item in pending:
        if groups[-1] and sum(len(p.records) for p in groups[-1]) >= size:
            groups.append([])
            size = min(2 * size, _EMBED_GROUP_MAX)
        groups[-1].append(item)
    # Against a Chroma server, group N is written while group N+1 is read and embedded: the server's process does
    # the writing (about 1 ms a record, Chroma's floor) on the other core while this one embeds (a 5,000-chunk build
    # with `use`: 124 s -> 104 s). Chroma's embedded client holds Python's GIL for the whole of a write, so a writer
    # thread there overlaps nothing and made the same build slower (127 s -> 144 s): there groups go in turn.
    writer = _WriteBehind(store, background=bool(settings.chroma_url))
    try:
        # The sync's own state (known vectors, changes, counts, the progress bar) is touched only here, in the
        # calling thread; the writer only calls the store.
        for group in (g for g in groups if g):
            written = writer.submit(_plan_group(store, embedder, group, settings, known))
            if written is not None:
                written.account(changes, bar)
        if (written := writer.wait()) is not None:
            written.account(changes, bar)
    finally:
        writer.close()
    for plan in writer.done:
        embedded += plan.embedded_chunks
        sentences_embedded += plan.sentences_embedded
        languages |= plan.languages
    if bar is not None:
        bar.close()

    for doc_id in removed_ids:
        metas = store.chunk_metas(doc_id)
        store.delete_chunks(list(metas))
        store.delete_document(doc_id)
        changes.removed += [(id_, meta["text_hash"]) for id_, meta in metas.items()]
    # Chunks whose document has no record: a new file whose first sync was killed before its record, and which
    # is gone or unreadable since. Sentences whose chunk is gone: a sync killed between the two writes. Both can
    # only follow a sync that did not finish (the index is still marked dirty) or a resumed rebuild, so a plain
    # sync does not read every chunk's metadata for them (seconds at 20,000 chunks).
    orphans = []
    if was_dirty or rebuilt:
        recorded = set(store.documents())
        orphans = [id_ for id_, meta in store.chunk_metas().items() if meta["doc_id"] not in recorded]
    if orphans:
        store.delete_chunks(orphans)
    if was_dirty:
        store.delete_orphans()

    added = sorted(p.doc.id for p in pending if p.is_new)
    removed = sorted(removed_ids)
    by_hash_removed = {stored_hash[d]: d for d in removed}
    renamed = [{"from": by_hash_removed[p.doc.content_hash], "to": p.doc.id}
               for p in pending if p.is_new and p.doc.content_hash in by_hash_removed]
    changed = bool(pending or removed_ids or orphans) or rebuilt or was_dirty
    updates = {"last_sync": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dirty": False}
    if changed:  # a new sync id tells derived indexes (keywords, lexicon) and serving processes to reload
        updates["sync_id"] = uuid.uuid4().hex
    # Calibration describes the corpus as a whole: a few edited sentences do not move it, but a new language does.
    calibrated = store.manifest.get("calibration") or {}
    pairs = {pair for stats in calibrated.values() for pair in stats}
    big_change = (rebuilt or removed_ids or was_dirty or not calibrated
                  or any(f"en>{lang}" not in pairs for lang in languages)
                  or sentences_embedded >= RECALIBRATE_SHARE * max(store.count_sentences(), 1))
    if big_change:
        updates["calibration"] = calibrate(store, embedder)
    store.activate(**updates)
    # Derived indexes brought up to date now, so the first question does not pay for them: by this sync's changes,
    # or rebuilt from the store when it started a new index or followed an interrupted sync.
    if rebuilt or was_dirty or orphans:
        changes = ChunkChanges.everything(*store.all_chunks(metadata=False)[:2])
    keyword_index(settings, store, changes)
    update_lexicon(settings, store, embedder, changes).close()
    return SyncReport(
        added=added,
        updated=sorted(p.doc.id for p in pending if not p.is_new),
        removed=removed,
        renamed=renamed,
        unchanged=unchanged,
        chunks_embedded=embedded,
        sentences_embedded=sentences_embedded,
        chunks_total=store.count_chunks(),
        failed=sorted(failed, key=lambda f: f.path),
        rebuilt=rebuilt,
    )


class _WriteBehind:
    """Writes groups in order, one at a time: in one background thread while the caller prepares the next group,
    or (background=False) right away in the caller's thread. A failed background write is raised by the next
    submit() or wait(), so it surfaces one group later at most, and nothing is written after it: a group is handed
    over only once the one before it is written."""

    def __init__(self, store: Store, background: bool):
        self._store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-writer") if background else None
        self._in_flight: tuple[Future, _GroupPlan] | None = None
        self.done: list[_GroupPlan] = []

    def submit(self, plan: "_GroupPlan") -> "_GroupPlan | None":
        """Wait for the group being written (raising its error), then start writing this one; returns the group
        written meanwhile (in the caller's thread: this one), if any."""
        if self._pool is None:
            plan.write(self._store)
            self.done.append(plan)
            return plan
        written = self.wait()
        self._in_flight = (self._pool.submit(plan.write, self._store), plan)
        return written

    def wait(self) -> "_GroupPlan | None":
        if self._in_flight is None:
            return None
        future, plan = self._in_flight
        self._in_flight = None
        future.result()
        self.done.append(plan)
        return plan

    def close(self) -> None:
        """On any way out of the sync: let a write in flight finish (a group is never left half-written by the
        sync itself) before the caller goes on, e.g. to the next sync."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


@dataclass
class _GroupPlan:
    """One group's writes, fully computed (vectors included), in the order they must happen; what the sync
    records about them is applied by the calling thread once they are written."""
    sentences: list[tuple[str, np.ndarray, str, dict]]
    new: list[tuple[str, np.ndarray, str, dict]]
    moved: list[tuple[str, dict]]
    gone: list[str]
    records: list[tuple[str, str, dict, np.ndarray]]
    added: list[tuple[str, str]]  # (chunk id, text) for the derived indexes
    removed: list[tuple[str, str]]  # (chunk id, text hash)
    chunks: int
    embedded_chunks: int
    sentences_embedded: int
    languages: set[str]

    def write(self, store: Store) -> None:
        """Sentences before their chunks (a chunk that exists always has its sentences; a moved chunk keeps its
        text, so its sentence records keep their ids and are rewritten in place with their new spans), then new
        chunks, moved spans, deleted chunks, and the documents' records last, so a kill before them leaves these
        documents unfinished, to be completed by the next sync. One call per kind for the whole group: each Chroma
        call costs ~30 ms, whatever its size."""
        if self.sentences:
            store.add_chunks(*map(list, zip(*self.sentences)), sentences=True)
        if self.new:
            store.add_chunks(*map(list, zip(*self.new)))
        if self.moved:
            store.update_chunk_metas(*map(list, zip(*self.moved)))
        if self.gone:
            store.delete_chunks(self.gone)
        store.put_documents(self.records)

    def account(self, changes: ChunkChanges, bar) -> None:
        changes.added += self.added
        changes.removed += self.removed
        if bar is not None:
            bar.update(self.chunks)


def _plan_group(store: Store, embedder, group: list[_Pending], settings: Settings,
                known: _KnownVectors) -> _GroupPlan:
    """Embed what is new in these documents (reusing vectors of identical sentences) and compute their writes:
    new chunks and their sentences, moved spans, deleted chunks, and finally their records.

    Only sentences and titles are embedded: retrieval scores a chunk by its sentences, and a chunk's own vector
    (for candidate search) is the normalized mean of its sentences' vectors, which costs nothing more. The store is
    only read here (these documents' chunks, stored vectors): a group being written meanwhile holds other
    documents, and a text it shares with this one is among the vectors the sync keeps."""
    plans = []
    existing_hash: dict[str, str] = {}  # chunk id -> text_hash of the stored chunks going away
    need: dict[str, str] = {}  # sentence text_hash -> text to embed
    for item in group:
        existing = store.chunk_metas(item.doc.id)
        wanted = {r.id for r in item.records}
        new = [r for r in item.records if r.id not in existing]
        moved = [r for r in item.records if r.id in existing and _differs(existing[r.id], r.meta)]
        gone = [id_ for id_ in existing if id_ not in wanted]
        for r in new + moved:
            for _, text, meta in r.sentences:
                need[meta["text_hash"]] = text
        plans.append((item, new, moved, gone))
        existing_hash.update((id_, existing[id_]["text_hash"]) for id_ in gone)

    vectors = known.find(list(need))
    missing = [h for h in need if h not in vectors]
    titles = [item.doc.title for item in group]
    fresh = embedder.embed_passages([need[h] for h in missing] + titles, batch_size=settings.embed_batch)
    vectors.update(zip(missing, fresh[: len(missing)]))
    known.keep(vectors, group)
    title_vectors = fresh[len(missing) :]

    gone = [id_ for _, _, _, ids in plans for id_ in ids]
    moved = [r for _, _, records, _ in plans for r in records]
    new = [r for _, records, _, _ in plans for r in records]
    sentences = [s for r in new + moved for s in r.sentences]
    fresh_hashes = set(missing)
    return _GroupPlan(
        sentences=[(id_, vectors[meta["text_hash"]], text, meta) for id_, text, meta in sentences],
        new=[(r.id, _mean([vectors[s[2]["text_hash"]] for s in r.sentences]), r.text, r.meta) for r in new],
        moved=[(r.id, r.meta) for r in moved],
        gone=gone,
        records=[(item.doc.id, item.doc.text, _doc_meta(item.doc, len(item.records), item.structure_json),
                  title_vector) for (item, _, _, _), title_vector in zip(plans, title_vectors)],
        added=[(r.id, r.text) for r in new],
        removed=[(id_, existing_hash[id_]) for id_ in gone],
        chunks=sum(len(item.records) for item in group),
        embedded_chunks=sum(1 for r in new if any(m["text_hash"] in fresh_hashes for _, _, m in r.sentences)),
        sentences_embedded=len(missing),
        languages={meta["lang"] for _, _, meta in sentences},
    )


def _mean(vectors: list[np.ndarray]) -> np.ndarray:
    mean = np.mean(vectors, axis=0)
    return mean / (np.linalg.norm(mean) or 1.0)


def calibrate(store: Store, embedder, sample: int = 3000) -> dict:
    """Per model, the mean and deviation of generic questions' cosines against the indexed sentences, for each
    (question language, sentence language) pair: see calibration.py for why."""
    from .calibration import QUESTIONS_EN, QUESTIONS_ZH

    metas, vectors = store.sample_sentences(sample)
    if not metas:
        return {}
    langs = np.array([m.get("lang", "en") for m in metas])
    questions = {"en": embedder.embed_queries(QUESTIONS_EN), "zh": embedder.embed_queries(QUESTIONS_ZH)}
    stats: dict = {}
    for name, part, weight in embedder.parts:
        stats[name] = {}
        for qlang, qvecs in questions.items():
            for slang in ("en", "zh"):
                rows = vectors[langs == slang]
                if len(rows) == 0:
                    continue
                sims = (qvecs[:, part] @ rows[:, part].T) / weight
                stats[name][f"{qlang}>{slang}"] = [float(sims.mean()), float(max(sims.std(), 1e-3))]
    return stats


def _chunk_ids(chunks: list[Chunk]) -> list[str]:
    """A chunk's id is its content key; a passage repeated within a document gets a suffix."""
    seen: dict[str, int] = defaultdict(int)
    ids = []
    for chunk in chunks:
        seen[chunk.key] += 1
        ids.append(chunk.key if seen[chunk.key] == 1 else f"{chunk.key}-{seen[chunk.key]}")
    return ids


@dataclass(frozen=True)
class _ChunkRecord:
    id: str
    text: str
    meta: dict
    sentences: list[tuple[str, str, dict]]  # (id, text, metadata) of each sentence

    @classmethod
    def of(cls, doc: Document, chunk: Chunk, id_: str) -> "_ChunkRecord":
        shared = {"doc_id": doc.id, "language": doc.language, "date_int": _date_int(doc.date)}
        meta = {
            **shared,
            "path": doc.path,
            "title": doc.title,
            "date": doc.date,
            "issuer": doc.issuer,
            "start": chunk.start,
            "end": chunk.end,
            "ordinal": chunk.ordinal,
            "locator": chunk.locator,
            "text_hash": text_key(chunk.text),
            "sentences": len(chunk.sentences),  # its sentences' ids are "<chunk id>/0" ... "/<n-1>": read by id
        }
        sentences = []
        for i, (start, end) in enumerate(chunk.sentences):
            text = doc.text[start:end]
            sentences.append((f"{id_}/{i}", text, {**shared, "chunk_id": id_, "start": start, "end": end,
                                                   "text_hash": text_key(text), "lang": script_language(text)}))
        # Retrieval reads a candidate's sentences by id; with their spans here it needs only their vectors.
        meta["sentence_spans"] = sentence_spans([(m["start"], m["end"], m["lang"]) for _, _, m in sentences])
        return cls(id_, chunk.text, meta, sentences)


def _date_int(date: str) -> int:
    """YYYYMMDD as a number: Chroma compares numbers, not strings, in range filters."""
    digits = date[:10].replace("-", "")
    return int(digits) if len(digits) == 8 and digits.isdigit() else 0


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
        index_dir=settings.chroma_url or str(settings.index_dir),
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
