# SPDX-License-Identifier: MIT
"""SluiceError and its subclasses. Names and messages come from libsluice
(sluice_errname, sluice_strerror); only the choice of Python base class per
name lives here."""

from ._native import lib


def errname(code):
    """The C name of an error code, e.g. "EPERM" ("EUNKNOWN" if unknown)."""
    return lib.sluice_errname(int(code)).decode()


def strerror(code):
    """The message of an error code ("unknown error" if unknown)."""
    return lib.sluice_strerror(int(code)).decode()


class SluiceError(Exception):
    """A libsluice error: .code (the stable number), .name ("EINVAL"),
    .message (sluice_strerror), and what the binding was doing."""

    def __init__(self, code, context=None):
        self.code = int(code)
        self.name = errname(self.code)
        self.message = strerror(self.code)
        self.context = context
        text = "%s (%s %d)" % (self.message, self.name, self.code)
        if context:
            text = "%s: %s" % (context, text)
        super().__init__(text)


class InvalidArgumentError(SluiceError, ValueError):
    """EINVAL."""


class NotFoundError(SluiceError, LookupError):
    """ENOENT: e.g. an unknown rollout in stage()."""


class TooBigError(SluiceError, ValueError):
    """ETOOBIG: a value or name did not fit."""


class TimedOutError(SluiceError, TimeoutError):
    """ETIMEDOUT: e.g. wait_revision() ran out of time."""


class UnavailableError(SluiceError, ConnectionError):
    """EUNAVAIL: no server reachable."""


class ClosedError(SluiceError):
    """ECLOSED: the client or view was closed."""


class CorruptError(SluiceError):
    """ECORRUPT: data corrupted."""


class OutOfMemoryError(SluiceError, MemoryError):
    """ENOMEM."""


class InternalError(SluiceError):
    """EINTERNAL: e.g. the updater thread could not start."""


_BY_NAME = {
    "EINVAL": InvalidArgumentError,
    "ENOENT": NotFoundError,
    "ETOOBIG": TooBigError,
    "ETIMEDOUT": TimedOutError,
    "EUNAVAIL": UnavailableError,
    "ECLOSED": ClosedError,
    "ECORRUPT": CorruptError,
    "ENOMEM": OutOfMemoryError,
    "EINTERNAL": InternalError,
}


def error(code, context=None):
    """The exception for a C error code: the subclass for its name, or
    SluiceError itself."""
    return _BY_NAME.get(errname(code), SluiceError)(code, context)


def code_of(name):
    """The number of an error name ("EPERM" -> 9), looked up through
    sluice_errname over the code range; None if unknown."""
    return _CODES.get(name)


def _codes():
    out = {}
    # Numbers are small and never reused (sluice.h); scan until a long run
    # of unknown codes so that new codes appear without a change here.
    misses = 0
    code = 0
    while misses < 64:
        name = errname(code)
        if name == "EUNKNOWN":
            misses += 1
        else:
            out[name] = code
            misses = 0
        code += 1
    return out


_CODES = _codes()
