"""Text normalization for matching only (embedding and keyword search); cited text is never normalized."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=1)
def _t2s():
    try:
        import opencc
    except ImportError:  # optional: without it, traditional and simplified script match less well
        return None
    return opencc.OpenCC("t2s")


def for_matching(text: str) -> str:
    """NFKC (full-width forms to ASCII) and traditional Chinese to simplified, so either script matches the other."""
    text = unicodedata.normalize("NFKC", text)
    converter = _t2s()
    return converter.convert(text) if converter is not None and _has_cjk(text) else text


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def script_language(text: str) -> str:
    """"zh" when Chinese characters outnumber Latin words (about five letters each), else "en"."""
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return "zh" if cjk and cjk >= latin / 5 else "en"
