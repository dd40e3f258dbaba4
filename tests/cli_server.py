"""A `gan-mnist` that has already imported TensorFlow: the tests' command runner.

`import tensorflow` takes about five seconds of a CPU core, and the tests run the
command line over a hundred times. This process imports the package, TensorFlow and
Keras once (as `python -m gan_mnist` does, through the package's start-up filter),
starts no TensorFlow runtime (no op runs, so no thread pool or device exists yet),
and then forks a copy of itself for each command a test asks for. The copy takes the
test's arguments, environment (and TMPDIR) and working folder, stdin from /dev/null,
writes its stdout and stderr into the files the test names, runs `gan_mnist.cli.main`
and exits through Python's normal shutdown with the command's exit status.

What is not as in a fresh `python -m gan_mnist`: the imports happened before the
fork, so TensorFlow's C++ log level is the one set at that import (the tests of
start-up itself, TensorFlow's log and `--debug`, start a fresh interpreter:
`run_cli(..., fresh=True)`), the warnings of those imports went to this process's
stderr, `sys.path[0]` is tests/ and every command shares one hash seed.

Protocol, over a Unix socket at the path given as the only argument: a test connects
and sends one JSON line {argv, cwd, env, stdout, stderr, timeout}; the answers are
a JSON line {"pid": N} (the command's process, which a test may signal), then one
{"returncode": N} (negative: killed by that signal) or {"timeout": true}. Each
connection is served by its own forked waiter, so commands may overlap. The server
prints "ready" on stdout once it listens, and stops when stdin closes (the test
process that started it has ended), removing the socket's folder; a waiter whose
server has gone, and a command whose waiter has gone, are killed by the kernel
(PR_SET_PDEATHSIG), so no command outlives the tests.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile

# The package first (its start-up filter wraps the import of TensorFlow, as in
# `python -m gan_mnist`), then the modules the commands import, and with them
# TensorFlow and Keras.
import gan_mnist
from gan_mnist import app, evaluator, sampling, training  # noqa: F401
from gan_mnist.cli import main

assert {"tensorflow", "keras"} <= set(sys.modules), "the commands' imports changed"

MAIN_PATH = os.path.join(os.path.dirname(gan_mnist.__file__), "__main__.py")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent ends (or already has)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def run_command(request: dict) -> None:
    """In the forked runner: become `python -m gan_mnist ARGV` and exit with its status."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # chosen again from this command's TMPDIR
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = [MAIN_PATH, *request["argv"]]
    try:
        status = main(request["argv"])
    except SystemExit as done:  # argparse's usage errors and --help
        status = done.code
    sys.exit(status)


def serve_one(connection: socket.socket) -> None:
    """In the forked waiter: run one command in a fork of its own and answer its status."""
    with connection, connection.makefile("rwb") as stream:
        request = json.loads(stream.readline())
        waiter = os.getpid()
        runner = os.fork()
        if runner == 0:
            die_with_parent(waiter)
            stream.close()
            connection.close()
            run_command(request)
        stream.write(json.dumps({"pid": runner}).encode() + b"\n")
        stream.flush()
        ended = os.pidfd_open(runner)  # readable once the runner has ended
        in_time = select.select([ended], [], [], request["timeout"])[0]
        if not in_time:
            os.kill(runner, signal.SIGKILL)
        status = os.waitpid(runner, 0)[1]
        os.close(ended)
        answer = {"returncode": os.waitstatus_to_exitcode(status)} if in_time else {"timeout": True}
        stream.write(json.dumps(answer).encode() + b"\n")
        stream.flush()


def serve(path: str) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the waiters are reaped by the kernel
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([listener, 0], [], [])
        if 0 in readable and not os.read(0, 1024):  # the tests' process has ended
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
            return
        if listener not in readable:
            continue
        connection, _ = listener.accept()
        sys.stderr.flush()
        server = os.getpid()
        if os.fork() == 0:
            die_with_parent(server)
            # This waiter waits for its runner; a Ctrl-C of the tests stops the runner
            # (the same process group), and the waiter reports how it ended.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            listener.close()
            waiter = os.getpid()
            try:
                serve_one(connection)
            finally:
                if os.getpid() == waiter:  # the runner's SystemExit ends it as Python ends
                    os._exit(0)
        connection.close()


if __name__ == "__main__":
    serve(sys.argv[1])
