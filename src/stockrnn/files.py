"""Writing outputs so that a crash leaves either the previous complete output or none.

Everything is written under a hidden temporary name beside the target (`.NAME.tmp-PID-...`) and
renamed into place at the end, with the permissions a plain `mkdir` or `open` would give (the
umask applies; tempfile's private 0700/0600 would not). A run killed outright (SIGKILL, power
loss) cannot clean up after itself, so the next write to the same target removes what a dead
process left behind, and puts back a previous output that was moved aside (`.NAME.old-PID-...`)
but not yet replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError
from .interrupt import raise_if_aborted


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target` in one rename."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target}: exists and is not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
        os.chmod(tmp, 0o777 & ~umask())
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write here ({exc.strerror or exc})") from None
    try:
        yield tmp
        raise_if_aborted()  # a second Ctrl-C: nothing is renamed into place
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}-{tmp.name.rsplit('-', 1)[-1]}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside `target`; on success it replaces `target` (os.replace)."""
    target = Path(target)
    if target.is_dir():
        raise ConfigError(f"{target}: is a folder, not a file name")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent)
        os.close(handle)
        os.chmod(name, 0o666 & ~umask())
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write here ({exc.strerror or exc})") from None
    tmp = Path(name)
    try:
        yield tmp
        raise_if_aborted()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def umask() -> int:
    """The process umask (reading it means setting it, so it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def clean_stale(target: Path) -> None:
    """Remove the temporary leftovers of dead processes beside `target`; restore a moved-aside output."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(tmp|old)-(\d+)-.+")
    for path in sorted(target.parent.glob(f".{target.name}.*")):
        match = pattern.fullmatch(path.name)
        if match is None or _alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not target.exists():
            path.rename(target)  # killed between moving the old output aside and renaming the new one in
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
