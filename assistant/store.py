"""The vector store: the only module that talks to Chroma.

Layout inside one Chroma database:
- ``<name>-<generation>``: one record per chunk (vector, text, metadata: doc_id, span, locator, text_hash...);
- ``<name>-<generation>-sents``: one record per sentence of each chunk (vector, span, chunk_id): retrieval scores
  a chunk by its best sentences, which finds a fact inside a long passage far better than the chunk's own vector;
- ``<name>-<generation>-docs``: one record per indexed document (full text for citation checks, metadata, content
  hash), written only after all its chunks are in place, so it marks the document as complete;
- ``<name>-manifest``: a single record naming the active generation, the embedding model and dimension, the
  chunking settings and the time of the last sync.

A full rebuild writes a new generation beside the active one and switches the manifest when it is complete: the
old index answers queries until then, and a rebuild killed half-way is resumed by the next rebuild with the same
settings (or dropped by the next incremental sync of the active generation). Everything the index needs lives in Chroma, so a Chroma server holds the whole index too.

Searching the chunks goes through llama-index's Chroma integration (ChromaVectorStore with MetadataFilters).
Writing goes to chromadb directly: llama-index writes whole nodes (the node serialized again into every record's
metadata) and re-embeds a changed document's every node, while incremental sync needs vectors looked up by text hash
for reuse, metadata-only updates when spans shift, and per-document completion records (docs/design.md).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AssistantError, IndexMissingError, StaleIndexError, StoreError, StoreUnavailableError
from .types import Filters

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

_BATCH = 2000  # Chroma caps the records of one call; stay well under it
# A document's full text is stored in pieces of this many characters: Chroma rewrites a collection of large
# records slowly (one document record of 7 KB took 0.45 s to rewrite among 7.5 MB of texts, at 20,000 chunks; in
# pieces, ~10 ms), and every sync rewrites the records of the documents it changed (docs/scale.md).
_TEXT_PIECE = 2000
_DUMMY = [0.0]  # the manifest record carries no meaningful vector


_CONNECT_TIMEOUT = 3.0  # seconds to reach a Chroma server: a stopped server is reported at once, not waited for
_READ_TIMEOUT = 30.0  # seconds for one Chroma server call (chromadb itself waits forever)
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/[^\s'\"]+")


def _guarded(method):
    """Failures of the store become StoreErrors that say what happened and what to do, never Chroma's internals (the
    CLI prints them on one line, the HTTP API answers 503): a generation dropped by a finished rebuild is
    StaleIndexError (the reader reopens), an unreachable Chroma server StoreUnavailableError, a full disk or a
    read-only folder a StoreError naming the index folder."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            raise _store_error(exc, self._place, self._folder) from None

    return wrapper


def _store_error(exc: Exception, place: str, folder: Path | None = None) -> Exception:
    """The StoreError for a failure of Chroma (or of the disk under it); other exceptions are returned unchanged."""
    import httpx
    from chromadb.errors import ChromaError, NotFoundError

    if isinstance(exc, AssistantError):
        return exc
    if isinstance(exc, NotFoundError):
        return StaleIndexError("The index was rebuilt while it was being read; reopen it.")
    if isinstance(exc, httpx.HTTPError):
        return StoreUnavailableError(
            f"The Chroma server holding the index is not answering ({_reason(exc)}); questions work again as soon "
            f"as it is back.")
    # chromadb raises a bare Exception with the server's reply when that reply is not one of its errors
    if not isinstance(exc, (ChromaError, OSError)) and type(exc) is not Exception:
        return exc
    text = f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
    lowered = text.lower()
    if ("readonly" in lowered or "read-only" in lowered or getattr(exc, "errno", None) == errno.EROFS
            or (folder is not None and _read_only(folder))):
        return StoreError(f"Cannot write to {place}: it is read-only. The index as it was still answers; make "
                          f"the folder writable, then run `assistant index` again.")
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    # SQLite's "disk I/O error" or "database or disk is full", a file it cannot create, or Chroma failing to apply
    # its write log to the metadata segment ("compaction"), which is what a full disk looks like from here
    if full or any(sign in lowered for sign in ("disk", "full", "i/o", "unable to open database file", "compaction")):
        return StoreError(f"Cannot write to {place}: the disk is full or refused the write ({_reason(exc)}). The "
                          f"index as it was still answers; free some space, then run `assistant index` again.")
    return StoreError(f"{place[0].upper()}{place[1:]} failed: {_reason(exc)}.")


def _read_only(folder: Path) -> bool:
    """The folder is on a read-only mount or not writable by this process (SQLite then says only that it cannot
    open a file)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    except OSError:
        return False


def _reason(exc: Exception) -> str:
    """The first line of an exception's message, without host paths or Chroma's wrapping."""
    text = f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
    text = (text.splitlines() or [""])[0]
    text = re.sub(r"^(Query error: )?(Database error: )?(error returned from database: )?(\(code: \d+\) )?", "", text)
    text = _ABSOLUTE_PATH.sub("<path>", text).strip().rstrip(".")
    return text[:200] or type(exc).__name__


def _place(settings) -> str:
    """Where the index lives, as the user configured it (the folder's name, never a host path)."""
    if settings.chroma_url:
        return f"the Chroma server at {settings.chroma_url}"
    return f"the index folder '{Path(settings.index_dir).name or settings.index_dir}'"


def _folder(settings) -> Path | None:
    return None if settings.chroma_url else settings.chroma_dir


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # similarity: higher is nearer
    text: str
    meta: dict


def _client(settings):
    """The embedded store under the index folder, or a Chroma server when `chroma_url` is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        return _server_client(settings.chroma_url, chroma_settings)
    try:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except Exception as exc:  # a read-only or full disk; chromadb's own types for a corrupt or incompatible database
        error = _store_error(exc, _place(settings), settings.chroma_dir)
        if not str(error).startswith("Cannot write"):
            error = StoreError(f"Cannot open the Chroma store in {_place(settings)}: {_reason(exc)}.")
        raise error from None


def _server_client(url: str, chroma_settings):
    import chromadb
    import httpx
    from urllib.parse import urlparse

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StoreError(f"Not a Chroma server address: '{url}' (expected http://HOST:PORT)")
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    try:
        # chromadb's client calls the server as it is made, with no timeout: a quick heartbeat first, so a stopped or
        # hung server is reported within seconds.
        httpx.get(f"{parsed.scheme}://{parsed.hostname}:{port}/api/v2/heartbeat",
                  timeout=httpx.Timeout(_CONNECT_TIMEOUT)).raise_for_status()
        client = chromadb.HttpClient(host=parsed.hostname, port=port, ssl=parsed.scheme == "https",
                                     settings=chroma_settings)
        _set_timeouts(client)
        return client
    except Exception as exc:  # connection refused, timeout, or a server of an incompatible version
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise StoreUnavailableError(
            f"Cannot use the Chroma server at {url} ({reason.rstrip('.')}); check that `chroma run` is up there, of "
            f"a version compatible with chromadb {chromadb.__version__}.") from None


def _set_timeouts(client) -> None:
    """chromadb's HTTP session waits forever; a stopped or hung server must fail a request within seconds instead
    (connect) and a slow call within _READ_TIMEOUT. The session is shared by every client of the same server."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(_READ_TIMEOUT, connect=_CONNECT_TIMEOUT)


class Store:
    def __init__(self, client, name: str, manifest: dict, place: str = "the index", folder: Path | None = None):
        self._client = client
        self._name = name
        self._place = place  # where the index lives, for error messages
        self._folder = folder  # the embedded store's folder (None on a server)
        self.manifest = manifest
        self._open_collections()
        self._llama = None  # llama-index's view of the chunk collection, made on first use

    @_guarded
    def _open_collections(self) -> None:
        generation = self.manifest["generation"]
        client, name = self._client, self._name
        self._chunks = client.get_or_create_collection(
            f"{name}-{generation}", configuration={"hnsw": {"space": "cosine"}}
        )
        self._sents = client.get_or_create_collection(
            f"{name}-{generation}-sents", configuration={"hnsw": {"space": "cosine"}}
        )
        self._docs = client.get_or_create_collection(
            f"{name}-{generation}-docs", configuration={"hnsw": {"space": "cosine"}}
        )
        self._pieces = client.get_or_create_collection(  # documents' texts, in pieces (never searched)
            f"{name}-{generation}-texts", configuration={"hnsw": {"space": "cosine"}}
        )

    # --- opening and generations ---

    @classmethod
    def open(cls, settings) -> "Store":
        """The active index, or IndexMissingError when none has been built."""
        if not settings.chroma_url and not settings.chroma_dir.exists():
            raise IndexMissingError(settings.index_dir)
        client = _client(settings)
        try:
            manifest = read_manifest(client, settings.collection)
        except Exception as exc:
            raise _store_error(exc, _place(settings), _folder(settings)) from None
        if manifest is None:
            raise IndexMissingError(settings.chroma_url or settings.index_dir)
        return cls(client, settings.collection, manifest, _place(settings), _folder(settings))

    @classmethod
    def open_or_none(cls, settings) -> "Store | None":
        try:
            return cls.open(settings)
        except IndexMissingError:
            return None

    @classmethod
    def new_generation(cls, settings, manifest: dict) -> "Store":
        """An empty index beside the active one; it becomes active with activate(). A rebuild that was killed
        before it finished, with the same settings, is resumed rather than started again."""
        client = _client(settings)
        try:
            pending = read_manifest(client, settings.collection, "pending")
            if pending is not None and all(pending.get(k) == v for k, v in manifest.items()):
                return cls(client, settings.collection, pending, _place(settings), _folder(settings))
            generation = time.strftime("%Y%m%d%H%M%S") + f"{time.time_ns() % 1_000_000:06d}"
            manifest = {**manifest, "generation": generation}
            _write_manifest(client, settings.collection, "pending", manifest)
        except Exception as exc:
            raise _store_error(exc, _place(settings), _folder(settings)) from None
        return cls(client, settings.collection, manifest, _place(settings), _folder(settings))

    @_guarded
    def activate(self, **updates) -> None:
        """Make this generation the active index (one atomic manifest write), then drop every other generation."""
        self.manifest = {**self.manifest, **updates}
        _write_manifest(self._client, self._name, "active", self.manifest)
        manifest_collection(self._client, self._name).delete(ids=["pending"])
        self.drop_other_generations()

    @_guarded
    def mark_dirty(self) -> None:
        """Record, before the first write of a sync, that the index is being changed (cleared by activate)."""
        if self.manifest.get("dirty"):
            return
        self.manifest = {**self.manifest, "dirty": True}
        current = read_manifest(self._client, self._name)
        if current is not None and current.get("generation") == self.manifest["generation"]:
            _write_manifest(self._client, self._name, "active", {**current, "dirty": True})
        else:
            _write_manifest(self._client, self._name, "pending", self.manifest)

    @_guarded
    def drop_other_generations(self) -> None:
        active = f"{self._name}-{self.manifest['generation']}"
        keep = {active, f"{active}-sents", f"{active}-docs", f"{active}-texts", f"{self._name}-manifest"}
        for collection in self._client.list_collections():
            name = collection if isinstance(collection, str) else collection.name
            if name.startswith(f"{self._name}-") and name not in keep:
                self._client.delete_collection(name)

    # --- chunks ---

    @_guarded
    def chunk_metas(self, doc_id: str | None = None) -> dict[str, dict]:
        """id -> metadata of every chunk (of one document)."""
        where = {"doc_id": doc_id} if doc_id else None
        got = self._chunks.get(where=where, include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"]))

    @_guarded
    def vectors_for_hashes(self, text_hashes: list[str], sentences: bool = False) -> dict[str, np.ndarray]:
        """Stored vectors of chunks (or sentences) whose text has one of these hashes, for reuse without
        re-embedding."""
        collection = self._sents if sentences else self._chunks
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(text_hashes), 500):
            got = collection.get(
                where={"text_hash": {"$in": text_hashes[i : i + 500]}}, include=["embeddings", "metadatas"]
            )
            for vector, meta in zip(got["embeddings"], got["metadatas"]):
                found[meta["text_hash"]] = np.asarray(vector, dtype=np.float32)
        return found

    @_guarded
    def add_chunks(self, ids: list[str], vectors, texts: list[str], metas: list[dict], sentences: bool = False) -> None:
        collection = self._sents if sentences else self._chunks
        for i in range(0, len(ids), _BATCH):
            collection.upsert(
                ids=ids[i : i + _BATCH],
                embeddings=vectors[i : i + _BATCH],
                documents=texts[i : i + _BATCH],
                metadatas=metas[i : i + _BATCH],
            )

    @_guarded
    def update_chunk_metas(self, ids: list[str], metas: list[dict]) -> None:
        for i in range(0, len(ids), _BATCH):
            self._chunks.update(ids=ids[i : i + _BATCH], metadatas=metas[i : i + _BATCH])

    @_guarded
    def delete_chunks(self, ids: list[str]) -> None:
        """Chunks and their sentences."""
        for i in range(0, len(ids), _BATCH):
            self._sents.delete(where={"chunk_id": {"$in": ids[i : i + _BATCH]}})
            self._chunks.delete(ids=ids[i : i + _BATCH])

    @_guarded
    def delete_orphans(self) -> None:
        """What an interrupted sync can leave behind: sentences whose chunk does not exist, and pieces of texts
        that no document record points to."""
        chunks = set(self._chunks.get(include=[])["ids"])
        got = self._sents.get(include=["metadatas"])
        orphans = [i for i, m in zip(got["ids"], got["metadatas"]) if m["chunk_id"] not in chunks]
        for i in range(0, len(orphans), _BATCH):
            self._sents.delete(ids=orphans[i : i + _BATCH])
        docs = self._docs.get(include=["metadatas"])
        wanted = {i for doc_id, meta in zip(docs["ids"], docs["metadatas"]) if "text_pieces" in meta
                  for i in _piece_ids(doc_id, meta)}
        orphans = [i for i in self._pieces.get(include=[])["ids"] if i not in wanted]
        for i in range(0, len(orphans), _BATCH):
            self._pieces.delete(ids=orphans[i : i + _BATCH])

    @_guarded
    def count_sentences(self) -> int:
        return self._sents.count()

    @_guarded
    def sentence_vectors(self, chunk_ids: list[str], chunk_metas: dict[str, dict] | None = None
                         ) -> tuple[list[dict], np.ndarray]:
        """Metadata and vectors of every sentence of these chunks. With the chunks' own metadata (the caller's copy),
        a chunk that lists its sentences' spans costs a read of their vectors only, by id: about a third of reading
        their metadata too on a large index (docs/scale.md). Chunks indexed before that read their sentences by id
        (when their number is known) or by a metadata filter."""
        chunk_metas = chunk_metas or {}
        listed, by_id, rest = [], [], []
        for c in chunk_ids:
            meta = chunk_metas.get(c, {})
            (listed if "sentence_spans" in meta else by_id if "sentences" in meta else rest).append(c)
        metas = [{"chunk_id": c, "start": int(start), "end": int(end), "lang": lang}
                 for c in listed for start, end, lang in _spans(chunk_metas[c]["sentence_spans"])]
        vectors = []
        if metas:
            got = self._sents.get(ids=[f"{c}/{i}" for c in listed for i in range(chunk_metas[c]["sentences"])],
                                  include=["embeddings"])
            if len(got["ids"]) != len(metas):  # the chunk is being rewritten by a sync: read what is there
                return self.sentence_vectors(chunk_ids, {c: m for c, m in chunk_metas.items()
                                                         if "sentence_spans" not in m})
            order = {id_: n for n, id_ in enumerate(got["ids"])}
            vectors = [got["embeddings"][order[f"{c}/{i}"]] for c in listed
                       for i in range(chunk_metas[c]["sentences"])]
        reads = []
        if by_id:
            reads.append(self._sents.get(ids=[f"{c}/{i}" for c in by_id for i in range(chunk_metas[c]["sentences"])],
                                         include=["embeddings", "metadatas"]))
        if rest:
            reads.append(self._sents.get(where={"chunk_id": {"$in": rest}}, include=["embeddings", "metadatas"]))
        metas += [m for got in reads for m in got["metadatas"]]
        vectors += [v for got in reads for v in got["embeddings"]]
        if not metas:
            return [], np.zeros((0, self.manifest["dimension"]), dtype=np.float32)
        return metas, np.asarray(vectors, dtype=np.float32)

    @_guarded
    def count_chunks(self) -> int:
        return self._chunks.count()

    @_guarded
    def query(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """The chunks nearest to the vector, through llama-index's Chroma integration (its metadata filters and
        query translation); their ids are what retrieval needs."""
        from llama_index.core.vector_stores.types import VectorStoreQuery

        n = min(k, self.count_chunks())
        if n == 0:
            return []
        result = self._vector_store().query(
            VectorStoreQuery(query_embedding=vector.tolist(), similarity_top_k=n, filters=_llama_filters(filters))
        )
        # The integration's similarity is exp(-distance): monotone in the cosine, used for order only.
        return [Hit(node.node_id, float(similarity), node.get_content(), node.metadata)
                for node, similarity in zip(result.nodes, result.similarities)]

    @_guarded
    def query_sentences(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """The sentences nearest to the vector (Chroma directly: llama-index would wrap every hit in a node)."""
        if k <= 0:
            return []
        got = self._sents.query(query_embeddings=[vector], n_results=k, where=_chroma_where(filters),
                                include=["distances"])
        # A sentence's id is "<chunk id>/<n>": its chunk is all retrieval needs (reading metadata costs more).
        return [Hit(id_, 1.0 - float(dist), "", {"chunk_id": id_.rsplit("/", 1)[0]})
                for id_, dist in zip(got["ids"][0], got["distances"][0])]

    def _vector_store(self):
        if self._llama is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._llama = ChromaVectorStore(chroma_collection=self._chunks)
        return self._llama

    @_guarded
    def all_chunks(self, metadata: bool = True) -> tuple[list[str], list[str], list[dict]]:
        """Every chunk's id, text and metadata (metadata=False: an empty list instead, for the derived indexes)."""
        got = self._chunks.get(include=["documents", "metadatas"] if metadata else ["documents"])
        return got["ids"], got["documents"], got["metadatas"] if metadata else []

    # --- documents ---

    @_guarded
    def documents(self) -> dict[str, dict]:
        """doc_id -> metadata of every completely indexed document."""
        got = self._docs.get(include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"]))

    @_guarded
    def document_text(self, doc_id: str) -> str | None:
        got = self._docs.get(ids=[doc_id], include=["documents", "metadatas"])
        if not got["ids"]:
            return None
        meta = got["metadatas"][0]
        if "text_pieces" not in meta:  # indexed before texts were stored in pieces
            return got["documents"][0]
        ids = _piece_ids(doc_id, meta)
        pieces = self._pieces.get(ids=ids, include=["documents"])
        text_of = dict(zip(pieces["ids"], pieces["documents"]))
        return "".join(text_of[i] for i in ids) if len(text_of) == len(ids) else None

    @_guarded
    def put_documents(self, records: list[tuple[str, str, dict, np.ndarray]]) -> None:
        """Documents' records (doc_id, full text, metadata, title vector): their texts' pieces first, then the
        records, which mark each document complete; then the pieces of the versions they replace."""
        before = self._docs.get(ids=[r[0] for r in records], include=["metadatas"])
        replaced = {i for doc_id, meta in zip(before["ids"], before["metadatas"]) if "text_pieces" in meta
                    for i in _piece_ids(doc_id, meta)}
        ids, texts, metas, written = [], [], [], []
        for doc_id, text, meta, _ in records:
            pieces = [text[i : i + _TEXT_PIECE] for i in range(0, len(text), _TEXT_PIECE)] or [""]
            written.append({**meta, "text_pieces": len(pieces)})
            ids += _piece_ids(doc_id, written[-1])
            texts += pieces
            metas += [{"doc_id": doc_id}] * len(pieces)
        for i in range(0, len(ids), _BATCH):
            self._pieces.upsert(ids=ids[i : i + _BATCH], documents=texts[i : i + _BATCH],
                                metadatas=metas[i : i + _BATCH], embeddings=[[1.0]] * len(ids[i : i + _BATCH]))
        for i in range(0, len(records), _BATCH):
            batch = list(zip(records, written))[i : i + _BATCH]
            # documents="": a record written before texts were stored in pieces drops its copy of the text
            self._docs.upsert(ids=[r[0] for r, _ in batch], documents=[""] * len(batch),
                              metadatas=[m for _, m in batch], embeddings=[r[3] for r, _ in batch])
        gone = sorted(replaced - set(ids))
        for i in range(0, len(gone), _BATCH):
            self._pieces.delete(ids=gone[i : i + _BATCH])

    @_guarded
    def title_vectors(self) -> dict[str, np.ndarray]:
        got = self._docs.get(include=["embeddings"])
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])}

    @_guarded
    def sample_sentences(self, n: int) -> tuple[list[dict], np.ndarray]:
        """Up to n sentences' metadata and vectors (for calibration)."""
        got = self._sents.get(limit=n, include=["embeddings", "metadatas"])
        if not got["ids"]:
            return [], np.zeros((0, self.manifest["dimension"]), dtype=np.float32)
        return got["metadatas"], np.asarray(got["embeddings"], dtype=np.float32)

    @_guarded
    def delete_document(self, doc_id: str) -> None:
        """Its record, then its text's pieces (a sync killed between leaves pieces that delete_orphans sweeps)."""
        self._docs.delete(ids=[doc_id])
        self._pieces.delete(where={"doc_id": doc_id})


def _piece_ids(doc_id: str, meta: dict) -> list[str]:
    """A text version's pieces are named by its content hash, so a new version never overwrites the pieces that
    the record still in place points to."""
    return [f"{doc_id}@{meta['content_hash'][:16]}/{n}" for n in range(meta["text_pieces"])]


def sentence_spans(sentences: list[tuple[int, int, str]]) -> str:
    """A chunk's sentences (start, end, language) in one metadata value: "start:end:lang;..." (offsets in the
    document's text)."""
    return ";".join(f"{start}:{end}:{lang}" for start, end, lang in sentences)


def _spans(value: str) -> list[list[str]]:
    return [part.split(":") for part in value.split(";") if part]


def manifest_collection(client, name: str):
    return client.get_or_create_collection(f"{name}-manifest")


def read_manifest(client, name: str, which: str = "active") -> dict | None:
    got = manifest_collection(client, name).get(ids=[which], include=["documents"])
    return json.loads(got["documents"][0]) if got["ids"] else None


def _write_manifest(client, name: str, which: str, manifest: dict) -> None:
    manifest_collection(client, name).upsert(
        ids=[which], embeddings=[_DUMMY], documents=[json.dumps(manifest)], metadatas=[{"v": 1}]
    )


def _chroma_where(filters: Filters | None) -> dict | None:
    if filters is None:
        return None
    clauses = []
    if filters.doc_ids:
        clauses.append({"doc_id": {"$in": list(filters.doc_ids)}})
    if filters.language:
        clauses.append({"language": {"$eq": filters.language}})
    if filters.date_from:
        clauses.append({"date_int": {"$gte": filters.date_from}})
    if filters.date_to:
        clauses.append({"date_int": {"$lte": filters.date_to}})
    return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _llama_filters(filters: Filters | None):
    """The same restriction as llama-index metadata filters (the integration translates them for Chroma)."""
    if filters is None:
        return None
    from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

    parts = []
    if filters.doc_ids:
        parts.append(MetadataFilter(key="doc_id", value=list(filters.doc_ids), operator=FilterOperator.IN))
    if filters.language:
        parts.append(MetadataFilter(key="language", value=filters.language, operator=FilterOperator.EQ))
    if filters.date_from:
        parts.append(MetadataFilter(key="date_int", value=filters.date_from, operator=FilterOperator.GTE))
    if filters.date_to:
        parts.append(MetadataFilter(key="date_int", value=filters.date_to, operator=FilterOperator.LTE))
    return MetadataFilters(filters=parts) if parts else None


class FrozenView:
    """The store as some documents were before a sync in this process rewrites them, for the questions answered
    meanwhile from the index as it was.

    A sync rewrites a changed document in place: its moved chunks' sentences get their new spans, its vanished
    chunks are deleted and its text replaced, while the serving retriever still holds the old chunks until it is
    swapped at the end. Read live, such a document's citations would no longer check out (and be dropped). This
    view keeps those documents' sentences (spans and vectors) and texts as they were, taken before the sync starts,
    and passes every other read to the store."""

    def __init__(self, store: Store, doc_ids: list[str]):
        self._store = store
        chunk_ids = [id_ for doc_id in doc_ids for id_ in store.chunk_metas(doc_id)]
        metas, vectors = store.sentence_vectors(chunk_ids) if chunk_ids else ([], None)
        self._chunks = set(chunk_ids)
        self._metas = metas
        self._vectors = vectors
        self._rows: dict[str, list[int]] = {}
        for row, meta in enumerate(metas):
            self._rows.setdefault(meta["chunk_id"], []).append(row)
        self._texts = {doc_id: store.document_text(doc_id) for doc_id in doc_ids}
        self._sentence_ids = [f"{m['chunk_id']}/frozen{row}" for row, m in enumerate(metas)]

    def __getattr__(self, name):
        return getattr(self._store, name)

    def document_text(self, doc_id: str) -> str | None:
        return self._texts[doc_id] if doc_id in self._texts else self._store.document_text(doc_id)

    def sentence_vectors(self, chunk_ids: list[str], chunk_metas: dict[str, dict] | None = None
                         ) -> tuple[list[dict], np.ndarray]:
        live = [c for c in chunk_ids if c not in self._chunks]
        metas, vectors = self._store.sentence_vectors(live, chunk_metas) if live else ([], None)
        rows = [row for c in chunk_ids if c in self._chunks for row in self._rows.get(c, [])]
        if not rows:
            return (metas, vectors) if vectors is not None else ([], np.zeros((0, self.manifest["dimension"]),
                                                                             dtype=np.float32))
        frozen = self._vectors[rows]
        return list(metas) + [self._metas[r] for r in rows], (np.vstack([vectors, frozen]) if len(metas) else frozen)

    def query_sentences(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """Live hits outside the frozen documents, merged with the frozen documents' own nearest sentences."""
        hits = [h for h in self._store.query_sentences(vector, k, filters) if h.meta["chunk_id"] not in self._chunks]
        if self._metas:
            sims = self._vectors @ np.asarray(vector, dtype=np.float32) / (
                np.linalg.norm(self._vectors, axis=1) * (np.linalg.norm(vector) or 1.0) + 1e-12)
            for row in np.argsort(-sims)[:k]:
                meta = self._metas[row]
                if filters is None or filters.matches(meta):
                    hits.append(Hit(self._sentence_ids[row], float(sims[row]), "", meta))
        return sorted(hits, key=lambda h: -h.score)[:k]
