"""Running `hands` verbs for the app: one-line errors, run folders, missing-file messages, safe uploads."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import threading
import time
import zipfile
from pathlib import Path

_VERB_LOCK = threading.Lock()
"""One verb at a time: verbs capture the process's stderr and share the CPU (or GPU)."""


class AppError(Exception):
    """A failed job, as the one line the page shows."""


def run_verb(argv: list[str]) -> object:
    """Run `hands <argv>` in this process and return what its main returns; a verb that stops (a bad input, a
    missing file) raises AppError with its one-line message."""
    from hands.cli import main

    stderr = io.StringIO()
    with _VERB_LOCK:
        try:
            with contextlib.redirect_stderr(stderr):
                return main(argv)
        except SystemExit as stop:
            if stop.code in (0, None):
                return None
            lines = [line for line in stderr.getvalue().splitlines() if line.strip()]
            message = stop.code if isinstance(stop.code, str) else (lines[-1] if lines else f"hands {argv[0]} failed")
            raise AppError(message.removeprefix("error: ")) from None


def new_run_folder(root: str | Path, job: str, name: str) -> Path:
    """A new, empty folder `<root>/<job>/<YYYYmmdd-HHMMSS>_<name>` (a suffix _2, _3, ... when taken)."""
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{safe_name(name)}"
    parent = Path(root) / job
    parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        folder = parent / (stem if k == 1 else f"{stem}_{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise AppError(f"could not make a new run folder in {parent}")


def safe_name(name: str, default: str = "input") -> str:
    """A file stem of letters, digits, '-' and '_' (at most 48 characters) from a user's file name or text."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem).strip("_")[:48]
    return cleaned or default


def copy_upload(upload: str | Path, folder: Path, max_bytes: int) -> Path:
    """Copy an uploaded file into `folder` under a safe name (its suffix kept, lower case); AppError when it is
    missing, empty or larger than `max_bytes`."""
    source = Path(upload)
    if not source.is_file():
        raise AppError("the upload did not arrive; upload the file again")
    size = source.stat().st_size
    if size == 0:
        raise AppError(f"{source.name} is empty")
    if size > max_bytes:
        raise AppError(f"{source.name} is {size / 2 ** 20:.1f} MB; the limit is {max_bytes / 2 ** 20:.0f} MB")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{safe_name(source.name)}{source.suffix.lower()}"
    shutil.copyfile(source, target)
    return target


def missing_file(path: str | Path | None, what: str, flag: str) -> str | None:
    """None when `path` exists, else the sentence saying which file is needed and where it goes."""
    if path and Path(path).exists():
        return None
    return f"{what} is missing: put it at `{path}` (or start the app with `{flag} PATH`)."


def extract_oneshot_zip(archive: str | Path, folder: Path, max_bytes: int) -> Path:
    """Unpack a .zip of OHTA's one-shot layout (`img/<name>.jpg|png`, `mask/<name>.png`, `anno/<name>.pkl`, at
    its top or inside one folder) into `folder` and return the image's path. Members outside those three
    folders, absolute or `..` paths and archives over `max_bytes` unpacked are refused with AppError."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > max_bytes:
                raise AppError(f"{Path(archive).name} unpacks to more than {max_bytes / 2 ** 20:.0f} MB")
            wanted = {}
            for member in members:
                parts = Path(member.filename).parts
                if member.filename.startswith("/") or ".." in parts:
                    raise AppError(f"{Path(archive).name}: refusing the member {member.filename!r}")
                if len(parts) >= 2 and parts[-2] in ("img", "mask", "anno"):
                    wanted[(parts[-2], parts[-1])] = member
            for (kind, name), member in wanted.items():
                target = folder / kind / f"{safe_name(name)}{Path(name).suffix.lower()}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(bundle.read(member))
    except zipfile.BadZipFile as error:
        raise AppError(f"{Path(archive).name} is not a readable .zip ({error})") from None
    images = sorted(p for p in (folder / "img").glob("*") if p.suffix in (".jpg", ".jpeg", ".png")) \
        if (folder / "img").is_dir() else []
    if not images:
        raise AppError(f"{Path(archive).name} holds no img/<name>.jpg (expected img/, mask/ and anno/ folders)")
    return images[0]
