"""TensorFlow's C++ start-up log, kept out of the output; its errors kept in it.

While its shared libraries load, TensorFlow writes info lines (oneDNN, CUDA probes,
CPU features) straight to file descriptor 2, before absl's logging is initialised,
so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them (it acts only after that, where this
package sets it to 2: info and warnings off, ERROR and FATAL lines shown).
`filtered_stderr` sends file descriptor 2 through a small filter process that drops
those start-up lines and two ERROR lines known to be harmless (`HARMLESS`), and
writes every other line on at once. The filter is a separate process, not a
thread or a temporary file, so that when TensorFlow aborts natively (an
unsupported CPU, a CUDA failure) the last lines it wrote still reach the user: the
filter reads on until the pipe closes. `install` wraps the import of
``tensorflow`` in it; the command line runs each whole command in it.

A program that imports the package (a notebook, a script) has its import of
TensorFlow filtered, and during each `gan_mnist.training.train` the harmless lines
only (`held_back(start_up=False)`): Jupyter's kernel forwards file descriptor 2
into the cell's output, where the remapper line of every traced training step
would otherwise show. TensorFlow's lines outside those (a learner's own training
step in Part 1 of the notebook) reach it as they are. In the command line, and
during `train` called from Python, what goes to file descriptor 2 passes through
the filter process, so with both streams sent to one place (``2>&1``) a line of
stderr can land a moment after a later line of stdout. A user who sets
``TF_CPP_MIN_LOG_LEVEL`` themselves (any value), or passes ``--debug``, sees
everything unfiltered.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
OURS, OURS_ENV = "2", "GAN_MNIST_TF_LOG_LEVEL"  # the level we set, and a note that we did
# absl's info (I) and warning (W) lines ("I0000 00:00:1796 ... port.cc:153] ..."),
# the notice that precedes them and the CPU-feature line's continuation. (At level 2
# TensorFlow writes I and W lines only before its logging starts, during the import.)
START_UP = (
    r"[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*",
    r"WARNING: All log messages before absl::InitializeLog\(\) is called .*",
    r"To enable the following instructions: .*rebuild TensorFlow .*",
)
# ERROR lines held back by name. Grappler's remapper cannot fuse a LeakyReLU's
# gradient into the convolution before it, says so once per traced step and runs
# the graph unfused (the same numbers: a known TensorFlow message); and CUDA's
# cuInit fails on a machine that has no NVIDIA device at all, where running on the
# CPU is the only thing that can happen. With a GPU present, a failed cuInit is the
# reason it is not used, and it shows.
HARMLESS = (
    r"E\d{4} [\d:.]+ +\d+ meta_optimizer\.cc:\d+\] remapper failed: INVALID_ARGUMENT: "
    r"Mutation::Apply error: fanout '[^']*LeakyReluGrad(?:_\d+)?' exist for missing node .*",
)
NO_GPU_HARMLESS = (r"E\d{4} [\d:.]+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit: .*",)

# The filter process: stdin is the pipe, stdout the real file descriptor 2. A line
# is written as soon as it is complete; a partial line (a prompt, a bar) after a
# tenth of a second without more. It ignores Ctrl+C, which reaches the whole
# process group: it stops when every writer has closed the pipe.
FILTER = r"""
import os, re, select, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
noise = re.compile(sys.argv[1].encode())
pending, passing = b"", False
while True:
    if pending and not select.select([0], [], [], 0.1)[0]:
        os.write(1, pending)
        pending, passing = b"", True
        continue
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, pending = (pending + chunk).split(b"\n")
    for line in lines:
        if passing or not noise.fullmatch(line.rstrip(b"\r")):
            os.write(1, line + b"\n")
        passing = False
if pending:
    os.write(1, pending)
"""


def has_a_gpu_device() -> bool:
    """Whether the machine shows an NVIDIA device node (/dev/nvidia0, 1, ...; WSL's
    /dev/dxg), whatever TensorFlow makes of it."""
    return any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/dxg").exists()


def noise_pattern(start_up: bool = True) -> str:
    """The lines `filtered_stderr` drops, as one regular expression: the harmless
    ERROR lines, and with ``start_up`` the start-up log too."""
    held = (START_UP if start_up else ()) + HARMLESS
    if not has_a_gpu_device():
        held += NO_GPU_HARMLESS
    return "|".join(f"(?:{pattern})" for pattern in held)


@contextlib.contextmanager
def filtered_stderr(start_up: bool = True) -> Iterator[None]:
    """File descriptor 2 through the filter process while the block runs (nested
    blocks share the outer one's), dropping `noise_pattern(start_up)`; afterwards
    the filter has written everything."""
    if _FILTERING:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (a daemon, some IDEs)
        yield
        return
    read_end, write_end = os.pipe()
    try:
        if not sys.executable:
            raise OSError("no Python interpreter to start the filter")
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", FILTER, noise_pattern(start_up)],
            stdin=read_end,
            stdout=saved,
            stderr=saved,  # the filter's own failure, if any, is seen
        )
    except (OSError, ValueError, subprocess.SubprocessError):  # unfiltered, then
        for fd in (read_end, write_end, saved):
            os.close(fd)
        yield
        return
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    _FILTERING.append(child)
    try:
        yield
    finally:
        _FILTERING.remove(child)
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # our last writer of the pipe is gone: the filter ends
        os.close(saved)
        try:
            child.wait(timeout=5)  # at once, unless a process we started still holds it
        except subprocess.TimeoutExpired:
            child.kill()  # that process's later lines are lost rather than printed late
            child.wait()
        except KeyboardInterrupt:  # Ctrl-C while waiting: the caller's to handle
            child.kill()
            child.wait()
            raise


_FILTERING: list[subprocess.Popen] = []


def held_back(start_up: bool = True) -> contextlib.AbstractContextManager:
    """`filtered_stderr(start_up)`, unless the user asked to see TensorFlow's whole
    log: their own ``TF_CPP_MIN_LOG_LEVEL``, or ``--debug`` in this process
    (`uninstall(everything=True)`, which lasts for the process as the log level it
    drops does)."""
    if chosen_by_user() or _FINDER.show_all:
        return contextlib.nullcontext()
    return filtered_stderr(start_up)


class _QuietLoader(importlib.abc.Loader):
    """The real loader of ``tensorflow``, run with `filtered_stderr`."""

    def __init__(self, real):
        self.real = real

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            with filtered_stderr():
                self.real.exec_module(module)
                # CUDA's start (a failed cuInit is logged then) inside the filter too.
                with contextlib.suppress(AttributeError):  # a stand-in without config
                    module.config.list_physical_devices()
        finally:
            module.__loader__ = module.__spec__.loader = self.real

    def __getattr__(self, name):
        return getattr(self.real, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, with its loader wrapped."""

    set_level = False  # whether `install` set TF_CPP_MIN_LOG_LEVEL in this process
    show_all = False  # --debug: `uninstall(everything=True)` was called

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        uninstall()  # once: the other finders below find the real module
        for finder in sys.meta_path:
            spec = getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


_FINDER = _QuietFinder()


def chosen_by_user() -> bool:
    """Whether TensorFlow's log level is the user's own (not one this package set in
    this process or a parent process)."""
    return LEVEL_ENV in os.environ and os.environ[LEVEL_ENV] != os.environ.get(OURS_ENV)


def install() -> None:
    """Quiet TensorFlow's start-up (once, before it is imported), unless the user
    chose a log level: then set TF_CPP_MIN_LOG_LEVEL to 2 for the rest of its log."""
    if chosen_by_user() or "tensorflow" in sys.modules:
        return
    os.environ[LEVEL_ENV] = os.environ[OURS_ENV] = OURS
    _FINDER.set_level = True
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall(everything: bool = False) -> None:
    """Stop filtering the start-up; ``everything`` (``--debug``): also drop the log
    level `install` chose, if TensorFlow is not imported yet."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    _FINDER.show_all = _FINDER.show_all or everything
    if everything and _FINDER.set_level:
        os.environ.pop(LEVEL_ENV, None)
        os.environ.pop(OURS_ENV, None)
