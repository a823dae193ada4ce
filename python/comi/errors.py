"""The one exception hierarchy of comi.

Every failure the package raises on purpose is a comi.Error; the subclasses
also derive from the built-in exception a caller would catch for the same
kind of trouble:

    Error                                   any failure (status, status_name, message)
    +-- InputError(Error, ValueError)       bad input: an argument, text or file content
    +-- LimitError(Error, MemoryError)      over a resource limit (comi.set_limits), or
    |                                       out of memory
    +-- FileError(Error, OSError)           a file could not be read or written
    |   +-- MissingFileError(FileError, FileNotFoundError)   ... because it does not exist
    +-- NotSupportedError(Error, NotImplementedError)        valid input this build cannot handle

Wrong argument types raise the built-in TypeError, as Python functions do.
ComiError is the old name of Error.
"""

import os
from typing import Optional

__all__ = ["Error", "ComiError", "InputError", "LimitError", "FileError", "MissingFileError",
           "NotSupportedError", "STATUS_NAMES", "error_for_status"]

STATUS_NAMES = {
    0: "ok",
    1: "invalid argument",
    2: "i/o error",
    3: "malformed input",
    4: "unsupported",
    5: "out of memory",
    6: "limit exceeded",
    7: "internal error",
    8: "cancelled",
}

# comi_status codes (include/comi.h)
INVALID_ARG, IO, FORMAT, UNSUPPORTED, NOMEM, LIMIT, INTERNAL = 1, 2, 3, 4, 5, 6, 7


class Error(Exception):
    """A failure reported by comi.

    Attributes: status (the library's comi_status code, int; 1 "invalid
    argument" for problems found before calling it), status_name (e.g.
    "invalid argument") and message (naming the field or value at fault)."""

    status: int
    status_name: str
    message: str

    def __init__(self, status: int, message: str = "") -> None:
        self.status = int(status)
        self.status_name = STATUS_NAMES.get(self.status, "unknown status")
        self.message = message
        text = "%s: %s" % (self.status_name, message) if message else self.status_name
        Exception.__init__(self, text)

    def __str__(self) -> str:
        return "%s: %s" % (self.status_name, self.message) if self.message else self.status_name

    def __reduce__(self):
        return (_rebuild, (type(self), self.status, self.message))


ComiError = Error


class InputError(Error, ValueError):
    """Bad input: an argument out of range, text that is not valid, a
    malformed file or request (COMI_ERR_INVALID_ARG, COMI_ERR_FORMAT)."""

    def __init__(self, message: str, status: int = INVALID_ARG) -> None:
        Error.__init__(self, status, message)


class LimitError(Error, MemoryError):
    """A call that would go over a resource limit (COMI_ERR_LIMIT, see
    comi.set_limits; raised before the large allocations) or ran out of
    memory (COMI_ERR_NOMEM)."""

    def __init__(self, message: str, status: int = LIMIT) -> None:
        Error.__init__(self, status, message)


class FileError(Error, OSError):
    """A file could not be opened, read or written (COMI_ERR_IO)."""

    def __init__(self, message: str, status: int = IO, filename: Optional[str] = None) -> None:
        Error.__init__(self, status, message)
        self.filename = filename


class MissingFileError(FileError, FileNotFoundError):
    """A file that does not exist (COMI_ERR_IO on a missing path)."""


class NotSupportedError(Error, NotImplementedError):
    """Valid input this build of comi cannot handle (COMI_ERR_UNSUPPORTED)."""

    def __init__(self, message: str, status: int = UNSUPPORTED) -> None:
        Error.__init__(self, status, message)


def _rebuild(cls, status, message):
    if cls is Error:
        return Error(status, message)
    return cls(message, status)


def error_for_status(status: int, message: str, path: Optional[str] = None) -> Error:
    """The exception for a library status. path: the file the call read,
    when there is one, so that an i/o failure on a missing file becomes a
    MissingFileError."""
    if status in (INVALID_ARG, FORMAT):
        return InputError(message, status)
    if status in (LIMIT, NOMEM):
        return LimitError(message, status)
    if status == UNSUPPORTED:
        return NotSupportedError(message, status)
    if status == IO:
        if path is not None and not os.path.exists(path):
            return MissingFileError(message, status, path)
        return FileError(message, status, path)
    return Error(status, message)
