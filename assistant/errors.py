"""Errors a user can act on. Each message says what went wrong and how to fix it."""

from __future__ import annotations


class AssistantError(Exception):
    """Base class: the CLI prints the message on one line and exits non-zero."""

    exit_code = 2


class DocumentError(AssistantError):
    """One source file could not be read; the others are unaffected."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexMissingError(AssistantError):
    def __init__(self, index_dir):
        super().__init__(f"No index at {index_dir}. Build it with: assistant index")


class IndexMismatchError(AssistantError):
    """The index was built with another embedding model or chunking; vectors must never mix."""


class ModelUnavailableError(AssistantError):
    """An embedding model cannot be loaded (not installed, wrong platform, not found offline)."""


class StoreError(AssistantError):
    """The vector store cannot be opened or written."""


class QueryError(AssistantError):
    """A question or filter the assistant cannot take (empty, unknown filter...)."""
