"""Atomic file writes: a file is either its old self or completely new, never half written.

Every file the project writes for a user (run folders, weights, gradient archives, checkpoints in the
authors' format, the dataset cache) goes through :func:`atomic_write`:

1. a temporary file is created **in the target folder** with :func:`tempfile.mkstemp` (exclusive
   creation, ``O_EXCL``, under an unpredictable name, so a symlink planted at a guessable name cannot
   redirect the write);
2. the caller writes into it; the data are flushed and ``fsync``-ed;
3. :func:`os.replace` puts it in place (atomic on POSIX within one file system);
4. on any failure (full disk, read-only folder, Ctrl-C) the temporary file is removed and the error is
   raised as :class:`WriteError`, naming the target path; the old file is untouched.

Application layer (no engine module imports this).
"""
from __future__ import annotations

import os
import signal
import tempfile
from typing import Callable

#: Temporary files being written now, which a command that ends at once on Ctrl-C removes first
#: (:func:`remove_unfinished`).  Added and removed with SIGINT and SIGTERM blocked, so a signal never finds
#: a temporary file that is not listed here.
_UNFINISHED: set[str] = set()
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def remove_unfinished() -> None:
    """Delete the temporary files of the writes in progress (for a signal handler that ends the process
    at once): their targets stay their old selves, as after any failed write."""
    for tmp in list(_UNFINISHED):
        try:
            os.unlink(tmp)
        except OSError:
            pass


class WriteError(OSError):
    """A file could not be written (full disk, read-only or missing folder, permissions)."""


def end_at_once(signum=None, frame=None) -> None:
    """A signal handler for work that keeps nothing half done: remove the temporary files of writes in
    progress (their targets stay as they were, :func:`remove_unfinished`), say
    ``interrupted`` and end the process with exit code 130.  Unlike a ``KeyboardInterrupt``, it cannot be
    dropped in a C callback of Numba, PyTorch or JAX, nor abort the process there."""
    remove_unfinished()
    end_process(130, b"\ninterrupted\n")


def end_process(code: int, message: bytes = b"") -> None:
    """Flush what was said, write ``message`` to stderr and end the process now with ``code``, without
    Python's shutdown (where a signal could still end it with another code and no word)."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001  (a closed pipe, or a signal that came inside a write to it)
            pass
    if message:
        os.write(2, message)
    os._exit(code)


def atomic_write(path, write: Callable, mode: int = 0o644) -> str:
    """Write ``path`` atomically: ``write(fh)`` fills a binary file object, which then replaces ``path``.

    Parameters
    ----------
    path : str or os.PathLike, the target file (its folder must exist)
    write : callable taking one binary file object open for writing
    mode : permission bits of the new file (``mkstemp`` creates 0600; we widen it like ``open`` would)

    Returns
    -------
    str, the path written.

    Raises
    ------
    WriteError
        When the folder does not exist or the file cannot be written; nothing is left behind.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise WriteError(f"cannot write {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise WriteError(f"cannot write {path}: it is a folder")
    fd = tmp = None
    try:
        with signals_held():  # a signal held here is sent again as the block ends: inside the try below,
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
            _UNFINISHED.add(tmp)  # which then removes the temporary file it made
        with os.fdopen(fd, "wb") as fh:
            fd = None  # closed with fh from here on
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode & ~_umask())
        with signals_held():
            os.replace(tmp, path)
            _UNFINISHED.discard(tmp)
            tmp = None  # in place: nothing to remove, even when a held signal is sent again below
    except BaseException as err:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            _UNFINISHED.discard(tmp)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            raise WriteError(f"cannot write {path}: {err.strerror or err}") from None
        raise
    return path


class signals_held:
    """Hold SIGINT and SIGTERM while a few steps that must not be cut run (a temporary file's listing, a
    run's undoing); a signal that came meanwhile is sent again when the block ends, to the handler that
    was there.  A Python handler that records it is installed for the block: blocking the signal in this
    thread would not do, since one of NumPy's or Numba's threads may take it and Python then runs the
    handler here all the same.  Outside the main thread, where handlers cannot be set, it blocks them."""

    def __enter__(self):
        import threading

        self._got, self._old = [], {}
        if threading.current_thread() is not threading.main_thread():
            self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
            return self
        self._mask = None
        for sig in _SIGNALS:
            if signal.getsignal(sig) is not None:  # None: a handler not set from Python, left alone
                self._old[sig] = signal.signal(sig, lambda signum, frame: self._got.append(signum))
        return self

    def __exit__(self, *exc):
        if self._mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
            return False
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        if self._got:
            os.kill(os.getpid(), self._got[0])
        return False


def atomic_write_bytes(path, blob: bytes) -> str:
    """Write ``blob`` to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(blob))


def atomic_write_text(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_savez(path, arrays: dict, compressed: bool = False, comment: bytes = b"") -> str:
    """``numpy.savez`` (or ``savez_compressed``) of ``arrays`` to ``path`` atomically.

    ``path`` is used as given (no ``.npz`` is appended, unlike ``numpy.savez`` with a file name).
    ``comment`` becomes the zip archive's comment, which ``numpy.load`` ignores: a command marks the files
    it writes with it, to know them again (:func:`zip_comment`) without adding an array to them.
    """
    import io
    import zipfile

    import numpy as np

    save = np.savez_compressed if compressed else np.savez
    if not comment:
        return atomic_write(path, lambda fh: save(fh, **arrays))
    buf = io.BytesIO()
    save(buf, **arrays)
    with zipfile.ZipFile(buf, "a") as z:
        z.comment = comment
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def zip_comment(path) -> bytes:
    """The archive comment of the zip file ``path`` (b"" when it has none or is no zip); reads its end only."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return z.comment
    except (zipfile.BadZipFile, OSError, ValueError):
        return b""


def temporary_pattern(names) -> str:
    """A regular expression that matches exactly the temporary files :func:`atomic_write` makes for the
    targets ``names`` (``.weights.npz.k3j_x9ab.tmp``), and the ``.<name>.prev`` links of
    :func:`keep_previous`: what a killed process (SIGKILL, power loss) can leave behind."""
    import re

    alternatives = "|".join(re.escape(n) for n in names)
    return rf"\.(?:{alternatives})\.(?:[a-z0-9_]{{8}}\.tmp|prev)"


def previous_path(path) -> str:
    """Where :func:`keep_previous` keeps the file ``path``: ``.<name>.prev`` beside it."""
    path = os.fspath(path)
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.prev")


def keep_previous(path) -> bool:
    """Hard-link ``path`` to :func:`previous_path` before atomic writes replace it (no data is copied:
    the link keeps the old file), so that :func:`put_back` can undo a group of writes that did not all
    succeed.  False when there is no such file or the file system has no hard links."""
    prev = previous_path(path)
    try:
        if os.path.lexists(prev):
            os.unlink(prev)
        if not os.path.isfile(path):
            return False
        os.link(path, prev)
        return True
    except OSError:
        return False


def put_back(path) -> None:
    """Put the file :func:`keep_previous` kept back in place of ``path`` (atomically)."""
    try:
        os.replace(previous_path(path), path)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
