"""Finding the image files in a folder: the one scanner restore, datasets and evaluation use.

Rules: an image is a regular file (or a link to one) whose extension is in
:data:`READABLE_EXTENSIONS` (the content is not checked); names starting with "." are
skipped, files and folders alike; results are sorted. With ``recursive`` sub-folders are
searched too, including folders reached through symbolic links, each real folder once, so
a link back up the tree cannot loop. Entries that cannot be used (a link loop, a broken
link, a folder that cannot be listed) come back as ``(path, reason)`` instead of raising.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .base import READABLE_EXTENSIONS


def is_image_name(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has an image extension (the content is not checked)."""
    return Path(path).suffix.lower() in READABLE_EXTENSIONS


def scan_images(folder: str | os.PathLike[str], recursive: bool = False) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files under ``folder`` and the entries skipped with a one-line reason.

    Returns:
        ``(found, skipped)``: ``found`` sorted paths (``folder`` joined with the relative
        path, links not resolved); ``skipped`` sorted ``(path, reason)`` pairs, e.g.
        ``(photos/a.jpg, "symbolic link loop")``. A ``folder`` that is not a folder is
        reported in ``skipped``, so this never raises for a bad path.
    """
    root = Path(folder)
    found: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    try:
        st = root.stat()
    except OSError as e:
        return [], [(root, _reason(e, root))]
    if not stat.S_ISDIR(st.st_mode):
        return [], [(root, "not a folder")]
    seen = {(st.st_dev, st.st_ino)}
    pending = [root]
    while pending:
        _scan_one(pending.pop(), recursive, seen, pending, found, skipped)
    return sorted(found), sorted(skipped)


def _scan_one(
    folder: Path,
    recursive: bool,
    seen: set[tuple[int, int]],
    pending: list[Path],
    found: list[Path],
    skipped: list[tuple[Path, str]],
) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError as e:
        skipped.append((folder, f"cannot list folder: {_reason(e, folder)}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        wanted = is_image_name(entry.name)
        try:
            st = entry.stat()  # follows links
        except OSError as e:
            # A link that leads nowhere matters only where it could have been an image or,
            # recursively, a folder.
            if wanted or (recursive and entry.is_symlink()):
                skipped.append((path, _reason(e, path)))
            continue
        if stat.S_ISDIR(st.st_mode):
            if not recursive:
                continue
            key = (st.st_dev, st.st_ino)
            if key in seen:
                if entry.is_symlink():
                    skipped.append((path, "symbolic link to a folder already searched (loop or duplicate)"))
                continue
            seen.add(key)
            pending.append(path)
        elif wanted:
            if stat.S_ISREG(st.st_mode):
                found.append(path)
            else:
                skipped.append((path, "not a regular file"))


def link_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the symbolic link ``path`` leads nowhere ("symbolic link loop", "broken symbolic
    link", ...), or None when it is not a link or its target exists."""
    p = Path(path)
    if not p.is_symlink():
        return None
    try:
        p.stat()
    except OSError as e:
        return _reason(e, p)
    return None


def _reason(e: OSError, path: Path) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if e.errno == errno.ENOENT:
        return "broken symbolic link" if path.is_symlink() else "no such file or folder"
    return e.strerror or str(e)
