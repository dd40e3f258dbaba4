"""A `gan-mnist` that has already imported TensorFlow: the tests' command runner.

`import tensorflow` takes about five seconds of a CPU core, and the tests run the
command line over a hundred times. This process imports the package, TensorFlow and
Keras once (as `python -m gan_mnist` does, through the package's start-up filter),
runs no TensorFlow op (so no thread pool or device exists yet), and then forks a
copy of itself for each command a test asks for. The copy takes the test's
arguments, environment, working folder and stdin from /dev/null, writes its
stdout and stderr into the files the test names, runs `gan_mnist.cli.main` and exits
through Python's normal shutdown, with the command's exit status. What differs from
a fresh `python -m gan_mnist` is only that the import happened before the fork:
the tests about start-up itself (TensorFlow's log, `--debug`) take a fresh process
(`run_cli(..., fresh=True)`), as do those that signal a process (they start it).

Protocol, over a Unix socket at the path given as the only argument: a test connects
and sends one JSON line {argv, cwd, env, stdout, stderr, timeout}; the answers are
a JSON line {"pid": N} (the command's process, which a test may signal), then one
{"returncode": N} (negative: killed by that signal) or {"timeout": true}. Each
connection is served by its own forked waiter, so commands may overlap.
The server prints "ready" on stdout once it listens, and stops when stdin closes
(the test process that started it has ended).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import tempfile
import time

# The package first (its start-up filter wraps the import of TensorFlow, as in
# `python -m gan_mnist`), then the modules the commands import, and with them
# TensorFlow and Keras.
import gan_mnist
from gan_mnist import app, evaluator, sampling, training  # noqa: F401
from gan_mnist.cli import main

assert {"tensorflow", "keras"} <= set(sys.modules), "the commands' imports changed"

MAIN_PATH = os.path.join(os.path.dirname(gan_mnist.__file__), "__main__.py")


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
        runner = os.fork()
        if runner == 0:
            stream.close()
            connection.close()
            run_command(request)
        stream.write(json.dumps({"pid": runner}).encode() + b"\n")
        stream.flush()
        deadline = time.monotonic() + request["timeout"]
        while True:
            done, status = os.waitpid(runner, os.WNOHANG)
            if done:
                answer = {"returncode": os.waitstatus_to_exitcode(status)}
                break
            if time.monotonic() > deadline:
                os.kill(runner, signal.SIGKILL)
                os.waitpid(runner, 0)
                answer = {"timeout": True}
                break
            time.sleep(0.02)
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
        if 0 in readable and not os.read(0, 1024):
            return  # the test process that started this one has ended
        if listener not in readable:
            continue
        connection, _ = listener.accept()
        sys.stderr.flush()
        if os.fork() == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this waiter waits for its runner
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
