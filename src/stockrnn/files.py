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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError
from .interrupt import raise_if_aborted

# Every folder `atomic_dir` writes (evaluate, backtest, a panel run, fit --save, predict --out,
# explain) holds this file at its top, and may be replaced whole by the next run; any other folder
# with files in it is the user's and is never replaced. A file name of its own, not one of the
# outputs' (metrics.json, forecast.csv, ...): a user's folder may hold one of those, hand-written or
# written there by `predict --out FILE`.
OUTPUT_MARK = ".stockrnn"
DATA_SUFFIXES = (".csv", ".parquet", ".pq")  # the files a data folder is read from (sources.list_folder)
MARK_TEXT = "Written by stockrnn. The next stockrnn run writing to this folder replaces it whole.\n"


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target` in one rename.

    `target` must be new, empty, or an earlier stockrnn output (it holds `OUTPUT_MARK`, which this
    writes): a folder of other files (the input data, say) is refused, as is the current folder or
    one holding it."""
    shown, target = target, check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
        os.chmod(tmp, 0o777 & ~umask())
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot write here ({_why(target, exc)})") from None
    try:
        yield tmp
        (tmp / OUTPUT_MARK).write_text(MARK_TEXT)
        os.chmod(tmp / OUTPUT_MARK, 0o666 & ~umask())
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
    try:
        if target.is_dir():
            raise ConfigError(f"{target}: is a folder, not a file name")
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent)
        os.close(handle)
        os.chmod(name, 0o666 & ~umask())
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write here ({_why(target, exc)})") from None
    tmp = Path(name)
    try:
        yield tmp
        raise_if_aborted()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_target(target: str | Path) -> Path:
    """The output folder `target` as an absolute path ("." and ".." named, not resolved), if
    `atomic_dir` may write it; else a ConfigError. Commands call it before any work."""
    shown, target = target, _absolute(target)
    try:
        if target.is_symlink():  # renaming would replace the link, not the folder; a broken one fails late
            raise ConfigError(f"{shown}: is a link; give the folder itself or a new one")
        if target.exists() and not target.is_dir():
            raise ConfigError(f"{shown}: exists and is not a folder")
        _check_parents(target, shown)
        _check_replaceable(target, shown)
    except OSError as exc:  # a folder on the way that cannot be searched
        raise ConfigError(f"{shown}: cannot write here ({exc.strerror or exc})") from None
    return target


def check_file_target(target: str | Path, data: str | Path, headers: tuple[str, ...]) -> Path:
    """The output file `target` (`predict --out FILE.csv`) as an absolute path, if writing it loses
    nothing: a new file or an earlier output (its first line starts with one of `headers`), not a
    link, and not a table inside the data folder `data`, whose next load would read it as a ticker."""
    shown, target = target, _absolute(target)
    try:
        if target.is_symlink():
            raise ConfigError(f"{shown}: is a link; give the file itself or a new one")
        if target.is_dir():
            raise ConfigError(f"{shown}: is a folder, not a file name")
        _check_parents(target, shown)
        if target.exists():
            with open(target, encoding="utf-8", errors="replace") as handle:
                first = handle.readline(200)
            if not first.startswith(headers):
                raise ConfigError(
                    f"{shown}: exists and is not a forecast stockrnn wrote (it begins {first.strip()[:40]!r}); "
                    "give a new file name"
                )
        folder = Path(data)
        inside = folder.is_dir() and target.resolve().parent == folder.resolve()
        if inside and target.suffix.lower() in DATA_SUFFIXES and not target.name.startswith("."):
            raise ConfigError(
                f"{shown}: is in the data folder {data}, whose next load would read it as a ticker; write it elsewhere"
            )
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot write here ({exc.strerror or exc})") from None
    return target


def check_apart(target: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is one of `inputs` or holds one: writing it would replace them (a data
    folder kept inside an earlier output folder, `predict --out` naming the model or the data file).
    An input that is not a path on disk (the embedded dataset's name) cannot be hit."""
    real = _absolute(target).resolve()
    for source in inputs:
        if source is None or not Path(source).exists():
            continue
        path = Path(source).resolve()
        if path == real or real in path.parents:
            what = "is" if path == real else "holds"
            raise ConfigError(f"{target}: {what} the input {source} and would be replaced; write the outputs elsewhere")


def _absolute(target: str | Path) -> Path:
    if not str(target).strip():
        raise ConfigError("an output path is empty")
    return Path(os.path.abspath(target))


def _check_parents(target: Path, shown: str | Path) -> None:
    """The folders above `target` must lead, through no broken link and no file, to a writable one."""
    for parent in target.parents:
        if parent.is_symlink() and not parent.exists():
            raise ConfigError(f"{shown}: cannot write here ({parent} is a broken link)")
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{shown}: cannot write here ({parent} is a file, not a folder)")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"{shown}: cannot write here ({parent} is not writable)")
            return


def _check_replaceable(target: Path, shown: str | Path) -> None:
    """Refuse a target whose replacement would delete what stockrnn did not write."""
    real, here = target.resolve(), Path.cwd().resolve()
    if real == here or real in here.parents:
        raise ConfigError(f"{shown}: is the current folder or holds it; write the outputs to a new folder")
    if not target.is_dir():
        return
    try:
        names = sorted(p.name for p in target.iterdir())
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the folder ({exc.strerror or exc})") from None
    if names and OUTPUT_MARK not in names:
        listed = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise ConfigError(
            f"{shown}: holds files ({listed}) but no {OUTPUT_MARK} mark of a stockrnn output, and would be "
            "replaced: give a new or empty folder (an older stockrnn's output: delete it)"
        )


def _why(target: Path, exc: OSError) -> str:
    """An OSError's reason; for a parent that is a file, say so (the OS says 'File exists')."""
    parent = next((p for p in target.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        return f"{parent} is a file, not a folder"
    return str(exc.strerror or exc)


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
