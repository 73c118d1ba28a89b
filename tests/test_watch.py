"""The corpus watcher on a real folder with real file-system events (watchdog): debounced, bounded syncs.

The sync itself is a recorder here (the watcher is what is under test; the real sync behind a watcher is tested
end to end in test_server.py): each call notes the files it would have seen."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from assistant.errors import DocumentError
from assistant.watch import CorpusWatcher, ignored

SETTLE = 0.3


class Recorder:
    """Stands in for Assistant.sync: counts calls and records the documents each call would have indexed."""

    def __init__(self, folder: Path, delay: float = 0.0, fail_first: bool = False):
        self.folder = folder
        self.delay = delay
        self.fail_first = fail_first
        self.seen: list[set[str]] = []
        self.started = threading.Event()

    def __call__(self):
        self.started.set()
        self.seen.append({p.name for p in self.folder.iterdir() if not p.name.startswith(".")})
        time.sleep(self.delay)
        if self.fail_first and len(self.seen) == 1:
            raise DocumentError("corpus", "simulated failure")

    @property
    def calls(self) -> int:
        return len(self.seen)


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    return folder


def test_a_burst_of_50_files_costs_a_bounded_number_of_syncs(corpus):
    sync = Recorder(corpus)
    with CorpusWatcher(corpus, sync, settle=SETTLE) as watcher:
        for i in range(50):
            (corpus / f"doc{i:02}.md").write_text(f"# Document {i}\n\nParagraph {i}.\n")
        assert wait_for(lambda: sync.calls >= 1)
        time.sleep(SETTLE * 4)  # any further sync would have started by now
    assert 1 <= sync.calls <= 3, sync.calls
    assert len(sync.seen[-1]) == 50  # the last sync saw every file
    assert watcher.syncs == sync.calls


def test_deletions_and_renames_trigger_a_sync(corpus):
    (corpus / "a.md").write_text("# A\n\nText.\n")
    (corpus / "b.md").write_text("# B\n\nText.\n")
    sync = Recorder(corpus)
    with CorpusWatcher(corpus, sync, settle=SETTLE):
        (corpus / "a.md").unlink()
        assert wait_for(lambda: sync.calls == 1)
        assert sync.seen[-1] == {"b.md"}
        (corpus / "b.md").rename(corpus / "c.md")
        assert wait_for(lambda: sync.calls == 2)
        assert sync.seen[-1] == {"c.md"}


def test_hidden_and_temporary_files_are_ignored(corpus):
    sync = Recorder(corpus)
    with CorpusWatcher(corpus, sync, settle=SETTLE):
        (corpus / ".hidden.md").write_text("x")
        (corpus / ".upload-1234.md").write_text("x")  # an upload being written (assistant/server.py)
        (corpus / "draft.md~").write_text("x")
        (corpus / "~$report.docx").write_text("x")
        (corpus / "notes.md.swp").write_text("x")
        (corpus / "big.pdf.part").write_text("x")
        (corpus / ".git").mkdir()
        (corpus / ".git" / "index.md").write_text("x")
        time.sleep(SETTLE * 4)
        assert sync.calls == 0
        (corpus / "real.md").write_text("# Real\n\nText.\n")
        assert wait_for(lambda: sync.calls == 1)


def test_ignored_paths():
    root = Path("/corpus")
    assert not ignored("/corpus/a.md", root)
    assert not ignored("/corpus/sub/a.md", root)
    assert not ignored("/corpus/政策.pdf", root)
    assert ignored("/corpus/.a.md", root)
    assert ignored("/corpus/.cache/a.md", root)
    assert ignored("/corpus/a.md.tmp", root)
    assert ignored("/corpus/.#a.md", root)
    assert ignored("/elsewhere/a.md", root)


def test_a_folder_that_keeps_changing_is_still_synced(corpus):
    """Debouncing must not starve: changes every 0.1 s (shorter than the settle time) for 2 s still get a sync."""
    sync = Recorder(corpus)
    with CorpusWatcher(corpus, sync, settle=0.5, max_wait=1.0):
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 2.0:
            (corpus / f"f{i}.md").write_text("# F\n\nText.\n")
            i += 1
            time.sleep(0.1)
        calls_while_changing = sync.calls
    assert calls_while_changing >= 1


def test_a_failed_sync_does_not_stop_the_watcher(corpus):
    sync = Recorder(corpus, fail_first=True)
    with CorpusWatcher(corpus, sync, settle=SETTLE) as watcher:
        (corpus / "a.md").write_text("# A\n\nText.\n")
        assert wait_for(lambda: sync.calls == 1)
        (corpus / "b.md").write_text("# B\n\nText.\n")
        assert wait_for(lambda: sync.calls == 2)
        assert watcher.running


def test_stop_waits_for_the_running_sync_and_then_nothing_runs(corpus):
    sync = Recorder(corpus, delay=0.6)
    watcher = CorpusWatcher(corpus, sync, settle=0.1).start()
    (corpus / "a.md").write_text("# A\n\nText.\n")
    assert sync.started.wait(5)
    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 5
    assert not watcher.running
    assert watcher.syncs == 1  # the running sync completed
    (corpus / "b.md").write_text("# B\n\nText.\n")
    time.sleep(0.5)
    assert sync.calls == 1
    assert [t.name for t in threading.enumerate() if t.name == "corpus-watcher"] == []


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DocumentError, match="corpus folder not found"):
        CorpusWatcher(tmp_path / "nope", lambda: None).start()
