"""The index on a real Chroma server (`chroma run`): built by one process, answered by another that has no local
index folder of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from assistant import indexer
from assistant.errors import StoreError
from assistant.settings import Settings
from assistant.store import Store

from conftest import copy_corpus
from faultkit import CHROMA, ChromaServer, free_port

EO = "us_eo_2025-08-07_democratizing_access_alternative_assets_401k.md"
ZH = "marsbit_2025-08-07_crypto_401k_zh.txt"


@pytest.fixture
def chroma_server(tmp_path):
    if not CHROMA.exists():
        pytest.skip(f"no `chroma` command next to {sys.executable}")
    server = ChromaServer(tmp_path / "server").start()
    yield server.url
    server.stop()


def test_index_on_a_server_answers_from_another_process_without_a_local_index(chroma_server, tmp_path):
    corpus = copy_corpus(tmp_path / "corpus", [EO, ZH])
    writer = Settings(corpus_dir=corpus, index_dir=tmp_path / "writer", embed_model="use", chroma_url=chroma_server)
    report = indexer.sync(writer, progress=False)
    assert sorted(report.added) == sorted([EO, ZH]) and report.chunks_total > 0
    assert not (tmp_path / "writer" / "chroma").exists()  # nothing of the index itself is kept locally

    reader_dir = tmp_path / "reader"  # another process, another (empty) folder: only derived data lands there
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(reader_dir), "ASSISTANT_CORPUS_DIR": str(corpus),
           "ASSISTANT_EMBED_MODEL": "use", "ASSISTANT_CHROMA_URL": chroma_server}
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", "--json",
                             "How many days does the Secretary of Labor have to reexamine the guidance?"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["grounded"] and any("180 days" in c["quote"] for c in answer["citations"])
    text = Store.open(writer).document_text(EO)
    assert all(text[c["start"] : c["end"]] == c["quote"] for c in answer["citations"] if c["doc_id"] == EO)
    assert not (reader_dir / "chroma").exists()

    # An edit synced by the writer is seen by a new reader: one index, wherever it is read from.
    (corpus / EO).write_text((corpus / EO).read_text().replace("180 days", "150 days"))
    assert indexer.sync(writer, progress=False).updated == [EO]
    status = subprocess.run([sys.executable, "-m", "assistant.cli", "status", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["up_to_date"]
    again = subprocess.run([sys.executable, "-m", "assistant.cli", "search", "--json", "150 days Secretary"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert any("150 days" in p["text"] for p in json.loads(again.stdout))


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    settings = Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index", embed_model="use",
                        chroma_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StoreError, match="Cannot use the Chroma server at http://127.0.0.1"):
        Store.open(settings)
    env = {**os.environ, "ASSISTANT_CHROMA_URL": settings.chroma_url}
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "status"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "Cannot use the Chroma server" in result.stderr and "Traceback" not in result.stderr


def test_a_serving_process_sees_syncs_made_by_another(chroma_server, tmp_path):
    from assistant import api
    from assistant.api import Assistant

    corpus = copy_corpus(tmp_path / "corpus", [EO])
    writer = Settings(corpus_dir=corpus, index_dir=tmp_path / "writer", embed_model="use", chroma_url=chroma_server)
    indexer.sync(writer, progress=False)
    reader = Assistant.open(writer.model_copy(update={"index_dir": tmp_path / "reader"}))
    assert not any("zebraquux" in p.text for p in reader.search("zebraquux fund", k=3))
    (corpus / "new.md").write_text("# Note\n\nThe zebraquux fund may hold up to five percent in digital assets.\n")
    indexer.sync(writer, progress=False)  # another process, as far as the reader knows
    time.sleep(api.REFRESH_SECONDS + 0.1)
    assert any("zebraquux" in p.text for p in reader.search("zebraquux fund", k=3))
