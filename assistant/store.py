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

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from .errors import IndexMissingError, StaleIndexError, StoreError
from .types import Filters

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

_BATCH = 2000  # Chroma caps the records of one call; stay well under it
_DUMMY = [0.0]  # the manifest record carries no meaningful vector


def _current(method):
    """Reads of a generation that a finished rebuild has just dropped raise StaleIndexError (the reader reopens)."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from chromadb.errors import NotFoundError

        try:
            return method(self, *args, **kwargs)
        except NotFoundError:
            raise StaleIndexError("The index was rebuilt while it was being read; reopen it.") from None

    return wrapper


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
    except OSError as exc:
        raise StoreError(f"Cannot open the index folder {settings.index_dir}: {exc.strerror or exc}") from None
    except Exception as exc:  # chromadb raises its own types for a corrupt or incompatible database
        raise StoreError(f"Cannot open the Chroma store in {settings.index_dir}: {exc}") from None


def _server_client(url: str, chroma_settings):
    import chromadb
    from urllib.parse import urlparse

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StoreError(f"Not a Chroma server address: '{url}' (expected http://HOST:PORT)")
    try:
        client = chromadb.HttpClient(host=parsed.hostname, port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                                     ssl=parsed.scheme == "https", settings=chroma_settings)
        client.heartbeat()
        return client
    except Exception as exc:  # connection refused, timeout, or a server of an incompatible version
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise StoreError(f"Cannot use the Chroma server at {url} ({reason.rstrip('.')}); check that `chroma run` is "
                         f"up there, of a version compatible with chromadb {chromadb.__version__}.") from None


class Store:
    def __init__(self, client, name: str, manifest: dict):
        self._client = client
        self._name = name
        self.manifest = manifest
        generation = manifest["generation"]
        self._chunks = client.get_or_create_collection(
            f"{name}-{generation}", configuration={"hnsw": {"space": "cosine"}}
        )
        self._sents = client.get_or_create_collection(
            f"{name}-{generation}-sents", configuration={"hnsw": {"space": "cosine"}}
        )
        self._docs = client.get_or_create_collection(
            f"{name}-{generation}-docs", configuration={"hnsw": {"space": "cosine"}}
        )
        self._llama = None  # llama-index's view of the chunk collection, made on first use

    # --- opening and generations ---

    @classmethod
    def open(cls, settings) -> "Store":
        """The active index, or IndexMissingError when none has been built."""
        if not settings.chroma_url and not settings.chroma_dir.exists():
            raise IndexMissingError(settings.index_dir)
        client = _client(settings)
        manifest = read_manifest(client, settings.collection)
        if manifest is None:
            raise IndexMissingError(settings.chroma_url or settings.index_dir)
        return cls(client, settings.collection, manifest)

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
        pending = read_manifest(client, settings.collection, "pending")
        if pending is not None and all(pending.get(k) == v for k, v in manifest.items()):
            return cls(client, settings.collection, pending)
        generation = time.strftime("%Y%m%d%H%M%S") + f"{time.time_ns() % 1_000_000:06d}"
        manifest = {**manifest, "generation": generation}
        _write_manifest(client, settings.collection, "pending", manifest)
        return cls(client, settings.collection, manifest)

    def activate(self, **updates) -> None:
        """Make this generation the active index (one atomic manifest write), then drop every other generation."""
        self.manifest = {**self.manifest, **updates}
        _write_manifest(self._client, self._name, "active", self.manifest)
        manifest_collection(self._client, self._name).delete(ids=["pending"])
        self.drop_other_generations()

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

    def drop_other_generations(self) -> None:
        active = f"{self._name}-{self.manifest['generation']}"
        keep = {active, f"{active}-sents", f"{active}-docs", f"{self._name}-manifest"}
        for collection in self._client.list_collections():
            name = collection if isinstance(collection, str) else collection.name
            if name.startswith(f"{self._name}-") and name not in keep:
                self._client.delete_collection(name)

    # --- chunks ---

    @_current
    def chunk_metas(self, doc_id: str | None = None) -> dict[str, dict]:
        """id -> metadata of every chunk (of one document)."""
        where = {"doc_id": doc_id} if doc_id else None
        got = self._chunks.get(where=where, include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"]))

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

    def add_chunks(self, ids: list[str], vectors, texts: list[str], metas: list[dict], sentences: bool = False) -> None:
        collection = self._sents if sentences else self._chunks
        for i in range(0, len(ids), _BATCH):
            collection.upsert(
                ids=ids[i : i + _BATCH],
                embeddings=vectors[i : i + _BATCH],
                documents=texts[i : i + _BATCH],
                metadatas=metas[i : i + _BATCH],
            )

    def update_chunk_metas(self, ids: list[str], metas: list[dict]) -> None:
        for i in range(0, len(ids), _BATCH):
            self._chunks.update(ids=ids[i : i + _BATCH], metadatas=metas[i : i + _BATCH])

    def delete_chunks(self, ids: list[str]) -> None:
        """Chunks and their sentences."""
        for i in range(0, len(ids), _BATCH):
            self._sents.delete(where={"chunk_id": {"$in": ids[i : i + _BATCH]}})
            self._chunks.delete(ids=ids[i : i + _BATCH])

    def delete_orphan_sentences(self) -> None:
        """Sentences whose chunk does not exist (left by an interrupted sync)."""
        chunks = set(self._chunks.get(include=[])["ids"])
        got = self._sents.get(include=["metadatas"])
        orphans = [i for i, m in zip(got["ids"], got["metadatas"]) if m["chunk_id"] not in chunks]
        for i in range(0, len(orphans), _BATCH):
            self._sents.delete(ids=orphans[i : i + _BATCH])

    def count_sentences(self) -> int:
        return self._sents.count()

    @_current
    def sentence_vectors(self, chunk_ids: list[str]) -> tuple[list[dict], np.ndarray]:
        """Metadata and vectors of every sentence of these chunks."""
        got = self._sents.get(where={"chunk_id": {"$in": chunk_ids}}, include=["embeddings", "metadatas"])
        if not got["ids"]:
            return [], np.zeros((0, self.manifest["dimension"]), dtype=np.float32)
        return got["metadatas"], np.asarray(got["embeddings"], dtype=np.float32)

    @_current
    def count_chunks(self) -> int:
        return self._chunks.count()

    @_current
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

    @_current
    def query_sentences(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """The sentences nearest to the vector (Chroma directly: llama-index would wrap every hit in a node)."""
        n = min(k, self._sents.count())
        if n == 0:
            return []
        got = self._sents.query(query_embeddings=[vector], n_results=n, where=_chroma_where(filters),
                                include=["documents", "metadatas", "distances"])
        return [
            Hit(id_, 1.0 - float(dist), text, meta)
            for id_, dist, text, meta in zip(got["ids"][0], got["distances"][0], got["documents"][0], got["metadatas"][0])
        ]

    def _vector_store(self):
        if self._llama is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._llama = ChromaVectorStore(chroma_collection=self._chunks)
        return self._llama

    @_current
    def all_chunks(self) -> tuple[list[str], list[str], list[dict]]:
        """Every chunk's id, text and metadata (to build the keyword index)."""
        got = self._chunks.get(include=["documents", "metadatas"])
        return got["ids"], got["documents"], got["metadatas"]

    # --- documents ---

    @_current
    def documents(self) -> dict[str, dict]:
        """doc_id -> metadata of every completely indexed document."""
        got = self._docs.get(include=["metadatas"])
        return dict(zip(got["ids"], got["metadatas"]))

    @_current
    def document_text(self, doc_id: str) -> str | None:
        got = self._docs.get(ids=[doc_id], include=["documents"])
        return got["documents"][0] if got["ids"] else None

    def put_documents(self, records: list[tuple[str, str, dict, np.ndarray]]) -> None:
        """Documents' records (doc_id, full text, metadata, title vector): written last, each marks its document
        complete."""
        for i in range(0, len(records), _BATCH):
            batch = records[i : i + _BATCH]
            self._docs.upsert(ids=[r[0] for r in batch], documents=[r[1] for r in batch],
                              metadatas=[r[2] for r in batch], embeddings=[r[3] for r in batch])

    @_current
    def title_vectors(self) -> dict[str, np.ndarray]:
        got = self._docs.get(include=["embeddings"])
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"])}

    def sample_sentences(self, n: int) -> tuple[list[dict], np.ndarray]:
        """Up to n sentences' metadata and vectors (for calibration)."""
        got = self._sents.get(limit=n, include=["embeddings", "metadatas"])
        if not got["ids"]:
            return [], np.zeros((0, self.manifest["dimension"]), dtype=np.float32)
        return got["metadatas"], np.asarray(got["embeddings"], dtype=np.float32)

    def delete_document(self, doc_id: str) -> None:
        self._docs.delete(ids=[doc_id])


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
