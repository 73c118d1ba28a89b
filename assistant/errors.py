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


class StoreUnavailableError(StoreError):
    """The Chroma server holding the index cannot be reached (stopped, restarting, or not answering in time)."""


class StaleIndexError(StoreError):
    """The generation this process was reading was replaced (a full rebuild finished meanwhile): reopen and retry."""


class QueryError(AssistantError):
    """A question or filter the assistant cannot take (empty, unknown filter...)."""


class AccessDeniedError(AssistantError):
    """The server refused an admin request: no admin token sent, a wrong one, or admin requests are switched off."""


class NotFoundError(AssistantError):
    """The server has no such document or endpoint."""


class UploadError(AssistantError):
    """The server refused an upload: no file, an unusable name, or an unsupported type."""


class UploadTooLargeError(UploadError):
    """An uploaded file is over the server's size limit."""


class IndexUnavailableError(IndexMissingError):
    """The server has no index to answer from yet (HTTP 503); caught by `except IndexMissingError` as well."""

    def __init__(self, message: str):
        AssistantError.__init__(self, message)


class ServerUnavailableError(AssistantError):
    """The assistant's server cannot be reached, did not answer in time, or failed unexpectedly."""
