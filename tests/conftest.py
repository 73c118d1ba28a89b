"""Every test runs against its own corpus and index folders; nothing touches the repo's index/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("ASSISTANT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(tmp_path / "corpus"))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "index"))
    # The fast bundled model (USE, real) for mechanics; end-to-end quality tests ask for the default explicitly.
    monkeypatch.setenv("ASSISTANT_EMBED_MODEL", "use")


@pytest.fixture
def settings(tmp_path):
    from assistant.settings import Settings

    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", embed_model="use")


def copy_corpus(dest: Path, names: list[str] | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(CORPUS.iterdir()):
        if path.name != "README.md" and (names is None or path.name in names):
            shutil.copy(path, dest / path.name)
    return dest
