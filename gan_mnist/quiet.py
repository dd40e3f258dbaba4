"""TensorFlow's C++ start-up log, kept out of the output.

While its shared libraries load, TensorFlow writes info lines (oneDNN, CUDA probes,
CPU features) straight to file descriptor 2, before absl's logging is initialised,
so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them (it acts only after that, where
this package sets it to 3). `install` wraps the import of ``tensorflow``: file
descriptor 2 goes to a temporary file while the module runs, and afterwards every
line but those info and warning lines is written back, so a real error still shows.

A user who sets ``TF_CPP_MIN_LOG_LEVEL`` themselves, or passes ``--debug``, sees
everything.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import re
import sys
import tempfile
from collections.abc import Iterator

LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
OURS, OURS_ENV = "3", "GAN_MNIST_TF_LOG_LEVEL"  # the level we set, and a note that we did
# absl's info (I) and warning (W) lines ("I0000 00:00:1796 ... port.cc:153] ..."),
# the notice that precedes them and the CPU-feature line's continuation.
NOISE = re.compile(
    r"^(?:[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called .*"
    r"|To enable the following instructions: .*rebuild TensorFlow .*)$"
)


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Hold back what is written to file descriptor 2 in the block, then write back
    every line that is not TensorFlow's start-up info."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (a daemon, some IDEs)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [
                line
                for line in held.read().decode(errors="replace").splitlines(keepends=True)
                if not NOISE.match(line.rstrip("\n"))
            ]
            if kept:
                os.write(2, "".join(kept).encode())


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
        finally:
            module.__loader__ = module.__spec__.loader = self.real

    def __getattr__(self, name):
        return getattr(self.real, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, with its loader wrapped."""

    set_level = False  # whether `install` set TF_CPP_MIN_LOG_LEVEL in this process

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


def install() -> None:
    """Quiet TensorFlow's start-up (once, before it is imported), unless the user
    chose a log level: then set TF_CPP_MIN_LOG_LEVEL to 3 for the rest of its log."""
    if os.environ.get(LEVEL_ENV, OURS) != os.environ.get(OURS_ENV, OURS):
        return  # the user's own level (not one this package set in a parent process)
    if "tensorflow" in sys.modules:
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
    if everything and _FINDER.set_level:
        os.environ.pop(LEVEL_ENV, None)
        os.environ.pop(OURS_ENV, None)
