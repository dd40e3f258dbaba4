"""What each `gan-mnist` command does, once its flags are parsed (`parser.py`): the
checks that need no TensorFlow first, then the work, loaded only when it is needed."""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
from pathlib import Path

from gan_mnist import files, runfolder
from gan_mnist.config import (
    PRESET_FIELDS,
    TrainConfig,
    check_eval_samples,
    flag_name,
    make_config,
    measured_models,
    resumed_config,
    run_config,
)
from gan_mnist.errors import UserError, check_run_dir, write_failure
from gan_mnist.files import METRICS_NAME, RUNS_DIR
from gan_mnist.guards import refuse_foreign_folder


def cmd_app(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be 1-65535, got {args.port}.")
    for run_dir in args.run_dirs:
        check_run_dir(run_dir)  # before Gradio and TensorFlow load: a quick, quiet error
    from gan_mnist import app

    app.import_gradio()
    app.launch(args.run_dirs, host=args.host, port=args.port, announce=True)


def cmd_train(args: argparse.Namespace) -> None:
    overrides = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.metadata["flag"]
    }
    if overrides.get("data"):  # as make_config stores it: found again from anywhere
        overrides["data"] = str(Path(overrides["data"]).resolve())
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise UserError(f"--max-minutes must be > 0, got {args.max_minutes}.")
    out = Path(args.out) if args.out else None
    previous = _run_in(out) if out is not None else None
    if previous is None:  # a new run (or one found by its settings' name, below)
        config = make_config(args.preset or "tutorial", **overrides)  # bad values fail early
        if out is None:
            out = runfolder.run_folder(config, RUNS_DIR)
            previous = _run_in(out)
    if previous is not None:  # a run continues with its own settings
        differ = _preset_differs(args.preset, previous, overrides)
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
        images = f"the first {config.limit:,}" if config.limit else "all the"
        print(
            f"training {config.model} on {config.dataset} (--preset {args.preset or 'tutorial'}): "
            f"{config.epochs} epoch{'s' if config.epochs != 1 else ''} of {images} training "
            f"images, batch {config.batch_size}"
        )
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


def _run_in(out: Path) -> TrainConfig | None:
    """The settings of the run that ``out`` holds, or None for a new run; a folder that
    is not ours is refused (before TensorFlow loads, as a rule: a quick, quiet error)."""
    refuse_foreign_folder(out)
    return run_config(out, say=False) if runfolder.checkpoint_prefixes(out) else None


def _preset_differs(preset: str | None, previous: TrainConfig, overrides: dict) -> list[str]:
    """The flags in which ``--preset`` (given again to a run that continues with its own
    settings) would differ from them, where no flag of the command sets them."""
    if not preset:
        return []
    if previous.model not in measured_models(preset):
        return [f"--model ({previous.model})"]
    recipe = make_config(preset, model=previous.model)
    return [
        flag_name(k)
        for k in PRESET_FIELDS
        if overrides.get(k) is None and getattr(previous, k) != getattr(recipe, k)
    ]


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
    """--class (or --digit) as a class id: a class's name, else its number, checked
    against the run."""
    if value is None:
        return None
    names = config.classes
    if not models.conditional:
        raise UserError(
            f"--class needs a conditional run, but this run's model is {config.model}, "
            "which draws every class at random. Train one with --model cdcgan."
        )
    lowered = [n.lower() for n in names]
    if value.lower() in lowered:
        return lowered.index(value.lower())
    if value.isdigit() and 0 <= int(value) < len(names):
        return int(value)
    shown = ", ".join(repr(n) for n in names[:12]) + (", ..." if len(names) > 12 else "")
    raise UserError(
        f"--class {value!r} is not a class of this run: give one of {shown} (or its "
        f"number, 0-{len(names) - 1})."
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
    from gan_mnist.checkpoint_files import load_generator
    from gan_mnist.sampling import sample

    models, config, source = load_generator(Path(args.run_dir))
    label = _class_id(args.digit, config, models)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    images, labels = sample(models, args.n, seed, label=label)
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels}

    def write():
        with files.atomic_path(out) as tmp:
            np.savez_compressed(tmp, **arrays)
        if args.grid:
            artifacts.save_grid(images[:GRID_MAX], args.grid)

    _write_or_explain(write, out)
    what = "images" if label is None else f"images of class {config.classes[label]!r}"
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
            "--walk classes goes through every class at fixed noise, so --class (--digit) "
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
    from gan_mnist.checkpoint_files import load_generator
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
    check_eval_samples(args.n, "--n")
    check_run_dir(args.run_dir)
    from gan_mnist.data import load_dataset
    from gan_mnist.evaluator import evaluate_run, format_table

    config = run_config(Path(args.run_dir))
    dataset = config.dataset if config else "mnist"
    data = load_dataset(dataset, args.data) if args.data else None
    result = evaluate_run(
        Path(args.run_dir), n=args.n, seed=args.seed, data=data, classifier=args.classifier
    )
    text = json.dumps(result, indent=2) + "\n"

    def write():
        with files.atomic_path(Path(args.run_dir) / METRICS_NAME) as tmp:
            tmp.write_text(text)

    _write_or_explain(write, Path(args.run_dir) / METRICS_NAME)
    if args.json:
        print(text, end="")
    else:
        compared = (
            "the folder's held-out images"
            if result["dataset"] == "images"
            else f"the {result['dataset']} test images"
        )
        print(
            f"{result['generator']}: {result['n']} generated images vs as many of "
            f"{compared}, measured by {result['classifier']}\n"
        )
        print(format_table(result))
        print(f"\nwritten to {Path(args.run_dir) / METRICS_NAME}")


def cmd_train_evaluator(args: argparse.Namespace) -> None:
    if args.epochs is not None and args.epochs <= 0:
        raise UserError(f"--epochs must be a positive whole number, got {args.epochs}.")
    from gan_mnist.data import IMAGES, is_image_folder, load_dataset
    from gan_mnist.evaluator import (
        check_measurable,
        folder_classifier,
        train_classifier,
        weights_path,
    )

    folder = args.data is not None and is_image_folder(args.data)
    dataset = args.dataset or (IMAGES if folder else "mnist")
    out = Path(args.out) if args.out else None
    if out is not None and not out.name.endswith(".weights.h5"):
        raise UserError(f"--out {out}: the file name must end in .weights.h5 (Keras' rule).")
    data = load_dataset(dataset, args.data)
    if dataset == IMAGES:
        check_measurable(data)
        out = out or folder_classifier(data)
    out = out or Path(weights_path(dataset).name)
    model, accuracy = train_classifier(data, epochs=args.epochs, seed=args.seed)
    tested = len(data.x_test)

    def write():
        out.parent.mkdir(parents=True, exist_ok=True)
        with files.atomic_path(out) as tmp:
            model.save_weights(tmp)
        if dataset == IMAGES:
            about = {"accuracy": accuracy, "test_images": tested, "classes": data.class_names}
            with files.atomic_path(out.with_suffix("").with_suffix(".json")) as tmp:
                tmp.write_text(json.dumps({**about, "train_images": len(data.x_train) - tested}))

    _write_or_explain(write, out)
    print(f"test accuracy {accuracy:.4f} on {tested:,} test images; weights written to {out}")
    if dataset == IMAGES and out == folder_classifier(data):
        print(f"`gan-mnist evaluate` and --eval-every use it for runs of {args.data}.")
    elif out.resolve() != weights_path(dataset).resolve():
        print(f"measure runs with them: gan-mnist evaluate RUN --classifier {out}")


BY_NAME = {
    "train": cmd_train,
    "sample": cmd_sample,
    "interpolate": cmd_interpolate,
    "evaluate": cmd_evaluate,
    "train-evaluator": cmd_train_evaluator,
    "app": cmd_app,
}
