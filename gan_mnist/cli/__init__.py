"""`gan-mnist`: train a GAN on MNIST or Fashion-MNIST, resume it, sample from it,
walk its latent space and measure it. `parser.py` holds the manual (every flag and
its help), `commands.py` what each command does; this module runs one."""

from __future__ import annotations

import argparse
import sys

from gan_mnist import quiet
from gan_mnist.cli import commands
from gan_mnist.cli.parser import build_parser
from gan_mnist.config import check_seed
from gan_mnist.errors import UserError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A line in a log file as soon as it is printed (Python buffers a file's output).
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    if args.debug:
        quiet.uninstall(everything=True)  # TensorFlow's own log too
    # The whole command's file descriptor 2 through the filter of TensorFlow's
    # harmless lines (its errors, and the last lines of a native abort, still show).
    with quiet.held_back():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command ``args`` names; its exit status."""
    try:
        if getattr(args, "seed", None) is not None:
            check_seed(args.seed)  # sample, interpolate, evaluate, train-evaluator (train too)
        status = commands.BY_NAME[args.command](args)
    except UserError as error:
        print(f"gan-mnist {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        if not hasattr(interrupt, "summary"):  # train's own Interrupted has said where
            print("\ninterrupted.", file=sys.stderr)
        return 130
    except Exception as error:  # a bug or an unforeseen failure: one paragraph, not a trace
        if args.debug:
            raise
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        print(
            f"gan-mnist {args.command}: unexpected error: {type(error).__name__}: {first_line}. "
            "Files already written are intact (every file is replaced atomically). Run "
            f"`gan-mnist --debug {args.command} ...` for the traceback and report it.",
            file=sys.stderr,
        )
        return 1
    return status or 0
