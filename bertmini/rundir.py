"""Run directories: one run owns its directory, and nothing a user made is lost.

A run directory (`--out`) holds a model (config.json, model.safetensors, vocab.txt),
metrics.jsonl and checkpoint/ (see train.py). Three rules keep it whole:

- **One owner.** A run holds an `fcntl` lock on the directory while it works. A second run on
  the same directory stops at once, naming the directory and the first run's PID. The kernel
  drops the lock when the process ends, however it ends (even SIGKILL): no stale locks.
- **No silent overwrite.** A new run refuses a directory that already holds a run, unless told
  to continue it (`resume`) or to replace it (`overwrite`).
- **Files appear whole.** Files are written beside their final name and renamed into place
  (`publish_files`), so a reader (or a resumed run) sees the old file or the new one, never half.

`RunStateError` is the error for a directory whose state forbids what was asked (the CLI exits
with status 3 on it, as for any bad data).
"""

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class RunStateError(RuntimeError):
    """The run directory (or a checkpoint in it) does not allow what was asked."""


# The files and folders that say "a run lives here" (and that --overwrite removes).
RUN_FILES = (
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer_config.json",
    "metrics.jsonl",
    "trained_on.json",
    "checkpoint",
    "checkpoint.prev",
    "checkpoint.tmp",
)
PID_FILE = ".bertmini.pid"  # who holds the lock (for the message only; the lock is on the dir)

_held: dict[Path, tuple[int, int]] = {}  # directory -> (descriptor, depth): the lock is re-entrant


@contextmanager
def hold(directory: str | Path | None) -> Iterator[None]:
    """Own `directory` for the duration (created if needed; None: nothing to own).

    Re-entrant within a process (the recipe and the trainer both hold it). Only the first
    process of a torchrun job (RANK 0) takes the lock: the others write nothing.
    Raises RunStateError if another process holds it.
    """
    if directory is None or int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    directory = Path(directory).resolve()
    if directory in _held:
        descriptor, depth = _held[directory]
        _held[directory] = (descriptor, depth + 1)
        try:
            yield
        finally:
            _held[directory] = (descriptor, depth)
        return
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise _busy(directory) from None
    (directory / PID_FILE).write_text(str(os.getpid()))
    for staging in directory.glob(".staging-*"):  # left by a process killed mid-write
        shutil.rmtree(staging, ignore_errors=True)
    _held[directory] = (descriptor, 1)
    try:
        yield
    finally:
        del _held[directory]
        (directory / PID_FILE).unlink(missing_ok=True)
        if created and not any(directory.iterdir()):
            directory.rmdir()  # refused before any work: leave no empty folder behind
        os.close(descriptor)  # releases the lock


def _busy(directory: Path) -> RunStateError:
    try:
        owner = (directory / PID_FILE).read_text().strip() or "unknown"
    except OSError:
        owner = "unknown"
    return RunStateError(
        f"{directory} is in use by another run (PID {owner}): wait for it to finish, stop it, "
        "or choose another --out"
    )


def holds_a_run(directory: str | Path) -> bool:
    """Whether `directory` holds a model, metrics or checkpoints of an earlier run."""
    return any((Path(directory) / name).exists() for name in RUN_FILES)


def check(directory: str | Path, resume: bool, overwrite: bool) -> None:
    """Refuse early, writing nothing, what `hold` and `claim` would refuse later."""
    directory = Path(directory).resolve()
    if not directory.is_dir() or directory in _held or int(os.environ.get("RANK", "0")) != 0:
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(directory) from None
    finally:
        os.close(descriptor)
    if not resume and not overwrite and holds_a_run(directory):
        raise RunStateError(_HOLDS_A_RUN.format(directory=directory))


_HOLDS_A_RUN = (
    "{directory} already holds a run (model, metrics or checkpoint): continue it with "
    "--resume, replace it with --overwrite, or choose another --out"
)


def claim(directory: str | Path, resume: bool, overwrite: bool) -> None:
    """Make `directory` ready for a run: refuse to silently replace an earlier one.

    resume: the earlier run is to be continued (train() checks its checkpoint).
    overwrite (when not resuming): the earlier run is to be replaced: its files are removed now.
    """
    directory = Path(directory)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only the first process owns it
        return
    if resume or not holds_a_run(directory):
        return
    if not overwrite:
        raise RunStateError(_HOLDS_A_RUN.format(directory=directory))
    for name in RUN_FILES:
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def publish_files(directory: str | Path, write: Callable[[Path], object]) -> None:
    """Call `write(folder)` on a fresh folder, then move each file it wrote into `directory`.

    Each file is renamed into place (atomic on POSIX): a process killed at any moment leaves
    every file either as it was or complete.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
    try:
        write(staging)
        for path in staging.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
            os.replace(path, directory / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def differences(saved: dict, given: dict) -> list[str]:
    """'name: saved -> given' for every option whose value differs (both sides known)."""
    return [
        f"{name}: {saved[name]!r} -> {given[name]!r}"
        for name in sorted(saved.keys() & given.keys())
        if _comparable(saved[name]) != _comparable(given[name])
    ]


def _comparable(value):
    return list(value) if isinstance(value, tuple) else value
