"""Errors of the board driver: each says what went wrong and what to do about it."""

from __future__ import annotations


class BoardError(RuntimeError):
    """Something about the board, its bitstream or a kernel run that the driver cannot continue with."""


class BitstreamError(BoardError):
    """The bitstream or its hwh is missing, or does not match bitstreams/manifest.json."""


class KernelTimeout(BoardError):
    """A kernel was started and did not report done within the timeout."""


class KernelError(BoardError):
    """A kernel finished with an error code in its ap_return register."""
