"""Writes that never leave a half-written file and never replace an output unless asked to."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator


class OutputExistsError(FileExistsError):
    """The target exists and `overwrite` was not given."""


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def apply_umask(path: str | Path, directory: bool = False) -> None:
    """Give a file made by mkstemp/mkdtemp (0600/0700) the permissions an ordinary write would (0666/0777 minus
    the umask: 0644/0755 under the common 022), so that outputs are readable by others like any tool's."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Return `path` as a Path; raise OutputExistsError if it exists and `overwrite` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    return path


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive lock (fcntl; released when the process dies) on the file `path`, created when missing."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _explained(path: Path) -> Iterator[None]:
    """OS errors of writing `path` as one line that says what to do: a full disk, a folder that is read-only or is
    a file."""
    try:
        yield
    except OSError as error:
        if isinstance(error, OutputExistsError):
            raise
        if error.errno == errno.ENOSPC:
            raise OSError(f"no space left on the device of {path.parent} (writing {path.name}); nothing was replaced") from None
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PermissionError(f"cannot write {path}: {path.parent} is not writable") from None
        if error.errno in (errno.ENOTDIR, errno.EEXIST) and not path.parent.is_dir():
            raise NotADirectoryError(f"cannot write {path}: {path.parent} is a file, not a folder") from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error delete it.

    The temporary name keeps the suffix so writers that dispatch on it (cv2.imwrite, np.savez) still work.
    """
    path = check_writable(path, overwrite)
    with _explained(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _explained(path):
            yield tmp
            if tmp.is_file():
                apply_umask(tmp)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes, overwrite: bool = False) -> Path:
    """Write `data` to `path` atomically."""
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_with(path: str | Path, writer: Callable[[Path], object], overwrite: bool = False) -> Path:
    """Call `writer(tmp_path)` and atomically move the result to `path`."""
    with atomic_path(path, overwrite) as tmp:
        writer(tmp)
    return Path(path)


@contextlib.contextmanager
def atomic_directory(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` (an existing one only with
    `overwrite`), on error it is deleted."""
    import shutil

    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        apply_umask(tmp, directory=True)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
