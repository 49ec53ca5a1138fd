"""Atomic file writes: a temporary file beside the target, flushed to disk (fsync), then renamed over it, so
a reader (or a run resumed after ``kill -9``) sees the old file or the new one, never half of one. A full disk
is reported in one line and leaves only the old file."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from omniseg.errors import WriteError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: files get the permissions a plain ``open(..., "w")`` gives, whatever mode a library created the temporary with
FILE_MODE = 0o666 & ~_umask()


def temporary_name(path: Path) -> Path:
    """The hidden temporary name ``path`` is written under before its rename: the same folder (so the same file
    system) and the same suffixes (libraries that pick the format by them, ``.png`` or ``.nii.gz``, still do)."""
    suffixes = "".join(path.suffixes)
    return path.with_name(f".{path.name[: len(path.name) - len(suffixes)]}.{os.getpid()}.tmp{suffixes}")


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: fsync the directory; a no-op where that is refused)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def commit(temporary: Path, path: Path) -> None:
    """Make the written ``temporary`` the file ``path``: flushed to disk, given a plain file's permissions, renamed."""
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.chmod(temporary, FILE_MODE)
    os.replace(temporary, path)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path`` through: written in the ``with`` block (by any library that takes a
    file name), then fsynced and renamed over ``path``. An error removes the temporary file; ``OSError`` s such
    as a full disk become a one-line :class:`WriteError`."""
    path = Path(path)
    temporary = temporary_name(path)
    try:
        yield temporary
        commit(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, WriteError):
            raise
        reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
        raise WriteError(f"cannot write {path}: {reason}; free space (or fix the folder's permissions) and run again; "
                         "the previous file, if any, is unchanged") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete the temporaries in ``folder`` that a process no longer running left (killed mid-write); those of
    live processes (another rank writing beside this one) are kept. Returns how many were removed."""
    removed = 0
    for temporary in Path(folder).glob(".*.tmp*"):
        match = re.match(r"^\..*\.(\d+)\.tmp", temporary.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:  # another user's live process
            alive = True
        if not alive:
            temporary.unlink(missing_ok=True)
            removed += 1
    return removed


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_with(path: str | Path, save: Callable[[Path], object]) -> None:
    """Write ``path`` atomically with ``save(temporary_path)`` (e.g. ``image.save``, ``safetensors`` ``save_file``)."""
    with atomic_path(path) as temporary:
        save(temporary)
