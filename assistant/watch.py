"""Watch the corpus folder and sync once changes have settled.

File events (created, changed, moved, deleted) only mark the corpus dirty; a worker thread waits until no event has
arrived for `settle` seconds (or `max_wait` seconds have passed since the first unsynced one, so a folder that never
stops changing is still synced), then runs one sync. Events during a sync start another round afterwards. A burst
of 50 files therefore costs one or two syncs, not 50. Hidden files and folders (including uploads being written) and
editor or download temporaries are ignored.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from .errors import DocumentError

log = logging.getLogger(__name__)

TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", ".swo", ".swx", "~")
TEMP_PREFIXES = ("~$", ".#", "#")


def ignored(path: str | Path, root: Path) -> bool:
    """True for changes that cannot matter to the index: hidden files or folders, editor and download temporaries."""
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        return True
    if not rel.parts:
        return False
    if any(part.startswith(".") for part in rel.parts):
        return True
    name = rel.name.lower()
    return name.endswith(TEMP_SUFFIXES) or name.startswith(TEMP_PREFIXES)


class CorpusWatcher:
    """Run `on_change` (usually `Assistant.sync`) after the corpus folder changes, debounced.

    `with CorpusWatcher(folder, assistant.sync): ...` or `start()` / `stop()`. Errors raised by `on_change` are
    logged and the watcher keeps going. `syncs` counts the completed calls."""

    def __init__(self, folder: Path, on_change: Callable[[], object], settle: float = 1.0, max_wait: float | None = None):
        self.folder = Path(folder).resolve()
        self.on_change = on_change
        self.settle = settle
        self.max_wait = max_wait if max_wait is not None else max(10 * settle, 5.0)
        self.syncs = 0
        self._cond = threading.Condition()
        self._dirty_since: float | None = None  # first unsynced event (monotonic)
        self._last_event = 0.0
        self._stopping = False
        self._observer = None
        self._worker: threading.Thread | None = None

    # --- lifecycle

    def start(self) -> "CorpusWatcher":
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        if not self.folder.is_dir():
            raise DocumentError(str(self.folder.name), "corpus folder not found; create it before watching")
        watcher = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                watcher._event(event)

        self._stopping = False
        self._observer = Observer()
        self._observer.schedule(_Handler(), str(self.folder), recursive=True)
        self._observer.daemon = True
        self._observer.start()
        self._worker = threading.Thread(target=self._run, name="corpus-watcher", daemon=True)
        self._worker.start()
        return self

    def stop(self, timeout: float | None = 60.0) -> None:
        """Stop watching. A sync already running is waited for; changes not yet synced are left to the next one."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def __enter__(self) -> "CorpusWatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- events and the debounced sync

    def _event(self, event) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads change nothing
        if event.is_directory and event.event_type in ("modified", "closed"):
            return  # a folder's own timestamp; the files inside report their own events
        paths = [event.src_path] + ([event.dest_path] if getattr(event, "dest_path", "") else [])
        if all(ignored(p, self.folder) for p in paths):
            return
        with self._cond:
            now = time.monotonic()
            self._last_event = now
            if self._dirty_since is None:
                self._dirty_since = now
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._dirty_since is None and not self._stopping:
                    self._cond.wait()
                while not self._stopping:
                    now = time.monotonic()
                    due = min(self._last_event + self.settle, self._dirty_since + self.max_wait)
                    if now >= due:
                        break
                    self._cond.wait(due - now)
                if self._stopping:
                    return
                self._dirty_since = None  # events from here on start the next round
            try:
                self.on_change()
            except Exception:  # a failed sync must not end the watcher; the next change retries
                log.exception("Sync after a corpus change failed")
            self.syncs += 1
