"""What keeps a run's folder safe: one writer at a time, signals that stop a run
cleanly, a check for diverged (NaN/Inf) training, and fault points for the tests."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from gan_mnist import runfolder
from gan_mnist.errors import UserError
from gan_mnist.files import CHECKPOINT_DIR, CONFIG_NAME, DAMAGED_DIR, LOCK_NAME

FAULT_ENV = "GAN_MNIST_FAULT"  # tests: "POINT[@N][:SIGNAL]" kills or signals the run there


@contextlib.contextmanager
def run_lock(out_dir: Path) -> Iterator[None]:
    """Hold the folder's write lock while the block runs; refuse if another process has it.

    `flock` locks belong to the open file: the operating system drops them when the
    process ends, however it ends, so a crashed run never leaves a stale lock.
    """
    path = Path(out_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(
                f"{out_dir} is being written by another `gan-mnist train` (process {other}). "
                "Wait for it to finish or stop it (Ctrl-C in its terminal, or "
                f"`kill {other}`), or train into another --out folder. Reading the folder "
                "(`gan-mnist sample`, `evaluate`) is fine meanwhile."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def refuse_foreign_folder(out_dir: Path) -> None:
    """Train writes only into a folder that holds nothing yet or a run of ours:
    anything else could be the user's files (which a run's cleanup might replace) or
    other runs (whose temporaries it might remove). A run whose checkpoints were all
    set aside as damaged stays refused until the user deletes or moves them, so
    nothing restarts it silently."""
    kind = runfolder.holds(out_dir)
    if kind == runfolder.DAMAGED:
        checkpoints = Path(out_dir) / CHECKPOINT_DIR
        raise UserError(
            f"no intact checkpoint is left in {checkpoints}: the damaged ones are set aside "
            f"in {checkpoints / DAMAGED_DIR}, and this run will not start again by itself. "
            f"Train into a new --out folder, or delete {checkpoints} to start this run "
            "again from epoch 1."
        )
    if kind in (runfolder.NOTHING, runfolder.RUN):
        return
    if kind == runfolder.RUNS:
        raise UserError(
            f"{out_dir} holds other runs, each in a folder of its own, and is not a run "
            "itself, so a run will not write there. Give one run's folder (--out "
            f"{Path(out_dir) / 'NAME'}), or leave --out out: gan-mnist then names one in "
            "runs/ after the settings."
        )
    foreign = runfolder.others_files(out_dir)
    shown = ", ".join(foreign[:4]) + (", ..." if len(foreign) > 4 else "")
    mark = ""
    if (Path(out_dir) / CONFIG_NAME).exists():
        mark = f" (its {CONFIG_NAME} is not one this package wrote)"
    elif (Path(out_dir) / CHECKPOINT_DIR).is_dir():
        mark = f" (its {CHECKPOINT_DIR}/ holds checkpoints that are not a run of ours)"
    raise UserError(
        f"{out_dir} holds other files ({shown}) and no run of ours{mark}, so a run will not "
        "write there. Train into a new or empty folder (--out runs/NAME; without --out, "
        "gan-mnist picks a folder in runs/ named from the settings)."
    )


class StopRequest:
    """SIGINT (Ctrl-C, a notebook's stop button) and SIGTERM (schedulers, `docker stop`)
    ask the training loop to stop after the current step; it then checkpoints.

    A second signal of the same kind acts at once, as without this handler. Only the
    main thread can install handlers; elsewhere the request simply never arrives.
    """

    EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str | None:
        """ "SIGINT" or "SIGTERM" once one has arrived."""
        return None if self.signal is None else signal.Signals(self.signal).name

    @property
    def exit_status(self) -> int:
        return self.EXIT_STATUS.get(self.signal, 1)

    def __enter__(self) -> StopRequest:
        if _in_main_thread():
            for number in self.EXIT_STATUS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number, frame) -> None:
        if self.signal == number:  # the second time: stop now
            previous = self._previous.get(number, signal.SIG_DFL)
            signal.signal(number, previous)
            if callable(previous):
                previous(number, frame)
            else:
                os.kill(os.getpid(), number)
            return
        self.signal = number
        name = self.name
        again = "Ctrl-C" if number == signal.SIGINT else name
        print(
            f"\n{name}: stopping after this step and saving a checkpoint "
            f"({again} again to quit at once, losing the work since the last checkpoint).",
            file=sys.stderr,
            flush=True,
        )


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class TrainingDiverged(UserError):
    """A loss became NaN or infinite: the weights are broken and must not be saved."""

    @staticmethod
    def advice(config, out_dir: Path, kept: bool) -> str:
        """What to do, the same wherever the divergence is caught; ``kept``: a good
        checkpoint is there to continue from."""
        rates = f"--gen-lr {config.gen_lr:g}, --disc-lr {config.disc_lr:g}"
        # Without --out the learning rates are part of the folder's name: the rerun
        # must name this folder, or it would start a new run elsewhere.
        again = f"--out {out_dir} --gen-lr 1e-4 --disc-lr 1e-4"
        then = (
            "the run continues from its last good checkpoint with them"
            if kept
            else "no checkpoint was written, so the run starts again from its beginning"
        )
        return (
            f"The likely cause: learning rates too high ({rates}; the presets use 1e-4 to "
            f"1e-3). Run the same command again with lower ones and this folder (for "
            f"example {again}): {then}."
        )


def fault_point(name: str) -> None:
    """For the fault-injection tests: at the named point, when ``$GAN_MNIST_FAULT`` is
    ``name``, ``name@N`` (the N-th time it is reached) or ``name@N:SIGNAL``, send
    this process SIGKILL (or SIGNAL, e.g. SIGINT, through its real handler)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    where, _, signal_name = wanted.partition(":")
    point, _, count = where.partition("@")
    if point != name:
        return
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] == int(count or 1):
        sys.stdout.flush()
        os.kill(os.getpid(), getattr(signal, signal_name or "SIGKILL"))


_FAULT_COUNTS: dict[str, int] = {}


def remove_stale_temporaries(out_dir: Path) -> list[Path]:
    """Delete what a killed writer left: `atomic_path` temporaries of dead processes
    and TensorFlow's half-written checkpoint folders. Call while holding the lock."""
    removed = []
    for path in Path(out_dir).rglob(".tmp*"):
        pid = path.name[4:].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)) and path.is_file():
            path.unlink()
            removed.append(path)
    for path in Path(out_dir).glob(f"{CHECKPOINT_DIR}/*_temp*"):
        import shutil

        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
