"""Where an upload lives while its request is served: BentoML writes each uploaded file to a
folder of its own per request and empties it when the request ends, but a killed process leaves
its files behind. The entry keeps them in a private folder (``reid-uploads-<pid>``, mode 0700)
that it removes on exit; at start-up it removes those of processes no longer running.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "reid-uploads-"


def private_upload_folder(parent: Path | None = None) -> Path:
    """Make this process's temporary files (BentoML's uploads among them) go to a private
    folder under ``parent`` (default: the system's temporary folder), after removing the
    folders of dead processes; the folder is removed when the process exits."""
    parent = Path(parent or tempfile.gettempdir())
    removed = remove_abandoned(parent)
    folder = parent / f"{PREFIX}{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)  # a dead process's, whose pid this one reuses
    folder.mkdir(mode=0o700)
    tempfile.tempdir = str(folder)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    if removed:
        import logging

        logging.getLogger("reid").info("removed the uploads of %d stopped processes", removed)
    return folder


def remove_abandoned(parent: Path) -> int:
    """Remove the upload folders under ``parent`` of processes no longer running; how many."""
    removed = 0
    for folder in parent.glob(f"{PREFIX}*"):
        pid = folder.name.removeprefix(PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
