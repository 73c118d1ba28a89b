"""Optional second-stage ranking with a cross-encoder: the only module that imports sentence-transformers'
CrossEncoder.

A cross-encoder reads the question and a sentence together, which ranks better than comparing two vectors, but it
is too slow to read the whole corpus: it rescores the sentences of the passages the hybrid search ranked highest.
No cross-encoder ships inside a PyPI package, so it is off unless a user configures one
(``ASSISTANT_RERANKER=<hub name or local folder>``, e.g. a bge-reranker they have downloaded).
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from .errors import ModelUnavailableError


class Reranker:
    def __init__(self, model: str):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # fail at once offline instead of retrying for a minute
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as exc:
            raise ModelUnavailableError("A reranker needs sentence-transformers: pip install sentence-transformers") from exc
        try:
            self._model = CrossEncoder(model, device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"Cannot load the cross-encoder reranker '{model}': {exc}. Give a local model folder, or a hub name "
                "already in the Hugging Face cache (downloads are off: set HF_HUB_OFFLINE=0 to allow them), or unset "
                "ASSISTANT_RERANKER."
            ) from None
        self.name = model

    def scores(self, question: str, texts: list[str]) -> np.ndarray:
        """One relevance score per text (higher is better; the scale is the model's own)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self._model.predict([(question, t) for t in texts], show_progress_bar=False),
                          dtype=np.float32).reshape(len(texts))


@lru_cache(maxsize=2)
def load_reranker(model: str) -> Reranker | None:
    """The configured reranker, loaded once per process; None when none is configured."""
    return Reranker(model) if model else None
