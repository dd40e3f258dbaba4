"""Quality over seeds: named configurations, each trained on the real MNIST over several
seeds, measured with `gan-mnist evaluate`'s metrics and summarised as mean ± spread.

A configuration is a preset, a model family and settings on top (or networks built
here, for an ablation that is not a flag). By default each trains for its preset's
epochs; ``--minutes M`` trains for M minutes of wall-clock instead (the 20-minute runs).

    python bench/quality.py --list
    python bench/quality.py demo-dcgan demo-infogan-nets --seeds 1 2 3
    python bench/quality.py fast-infogan-nets --seeds 1 --minutes 20

Each run's row is printed as it ends and appended to ``--log`` (JSON lines), so
configurations can run in separate processes (one TensorFlow thread each:
TF_NUM_INTRAOP_THREADS=1) and be summarised together with ``--summarise LOG``, which
prints one Markdown table: per configuration the mean and the spread (half the range
over its seeds) of each metric, and how many seeds. A change is adopted only when it
beats the spread. The minutes column is training wall-clock; it compares only runs
made side by side in one process.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gan_mnist  # noqa: F401  (quiets TensorFlow's start-up logs before it loads)
from gan_mnist.config import make_config
from gan_mnist.evaluator import TrainingEvaluation

METRICS = TrainingEvaluation.METRICS  # the headline metrics, as training logs them

RESULTS = Path(__file__).with_name("results")


@dataclass(frozen=True)
class Setup:
    """One configuration: what it is, its preset and settings, and networks if built here."""

    about: str
    preset: str
    settings: dict = field(default_factory=dict)
    networks: str | None = None  # a function of this module that builds GanModels


def infogan_nets_without_d_batchnorm(config):
    """The InfoGAN paper's networks with BatchNorm taken out of the discriminator."""
    from gan_mnist.models.base import GanModels
    from gan_mnist.models.infogan_nets import build_discriminator, build_generator

    return GanModels.of(
        build_generator(config.noise_dim, config.base_filters),
        build_discriminator(config.base_filters, config.dropout, batchnorm=False),
        family="infogan-nets",
    )


def infogan_nets_conditional(config):
    """The InfoGAN paper's networks made class-conditional as `cdcgan` is: the one-hot
    class joins G's noise; D's logit gains a projection term and a class head."""
    from gan_mnist.models import FAMILIES
    from gan_mnist.models.base import GanModels
    from gan_mnist.models.cdcgan import CLASS_LOSS_WEIGHT, build_discriminator, build_generator
    from gan_mnist.models.infogan_nets import feature_layers, generator_layers

    f = config.base_filters
    return GanModels(
        build_generator(config.noise_dim, f, body=generator_layers(f)),
        build_discriminator(f, config.dropout, body=feature_layers(f, config.dropout)),
        FAMILIES["cdcgan"],
        config.noise_dim,
        CLASS_LOSS_WEIGHT,
    )


NETS = "infogan-nets"
# The demo until 2026-12-01, spelled out: the `demo` preset now trains half width on all
# the images, so the configurations measured on the old one name its settings.
FULL_WIDTH_DEMO = {"model": NETS, "base_filters": 64, "limit": 20000, "epochs": 4}
B64 = {**FULL_WIDTH_DEMO, "batch_size": 64, "epochs": 5}  # the paper's batch, 5 x 20,000
# `fast` until 2026-12-01, spelled out (it now trains half width for 16 epochs).
FULL_WIDTH_FAST = {"model": NETS, "base_filters": 64, "epochs": 8, "ema": 0.999}
SETUPS: dict[str, Setup] = {
    "demo-dcgan": Setup(
        "the demo before: half-width tutorial DCGAN, batch 32", "demo", {"model": "dcgan"}
    ),
    "demo-dcgan-bf16": Setup(
        "the same in bfloat16", "demo", {"model": "dcgan", "mixed_precision": "bfloat16"}
    ),
    "demo-infogan-nets": Setup(
        "the demo of 2026-11-30: InfoGAN paper's networks, batch 32, 4 epochs",
        "demo",
        FULL_WIDTH_DEMO,
    ),
    "demo-infogan-nets-b64": Setup("InfoGAN paper's networks, batch 64, 5 epochs", "demo", B64),
    "demo-infogan-nets-b32-e5": Setup(
        "the same with batch 32, 5 epochs", "demo", {**B64, "batch_size": 32}
    ),
    "demo-infogan-nets-no-d-bn": Setup(
        "batch 64, 5 epochs, without BatchNorm in D",
        "demo",
        B64,
        networks="infogan_nets_without_d_batchnorm",
    ),
    "demo-infogan-nets-glr4e-4": Setup(
        "batch 64, 5 epochs, G lr 4e-4", "demo", {**B64, "gen_lr": 4e-4}
    ),
    "demo-infogan-nets-conditional": Setup(
        "the demo's networks, class-conditional (cdcgan's projection + class head)",
        "demo",
        {
            "model": "cdcgan",
            "noise_dim": 62,
            "base_filters": 64,
            "batch_size": 32,
            "epochs": 4,
            "gen_lr": 1e-3,
            "disc_lr": 2e-4,
            "num_examples": 10,
            "jit_compile": "on",
        },
        networks="infogan_nets_conditional",
    ),
    # The averaged generator's decay, bias-corrected from the first step (step.py), at
    # the demo's 2,500 steps: windows of about 250, 500 and 1,000 steps.
    **{
        f"demo-ema-{ema}": Setup(
            f"the demo of 2026-11-30, --ema {ema} (bias-corrected)",
            "demo",
            {**FULL_WIDTH_DEMO, "ema": ema},
        )
        for ema in (0.996, 0.998, 0.999)
    },
    "fast-dcgan": Setup(
        "the fast before: the demo's DCGAN on all images", "fast", {"model": "dcgan"}
    ),
    # Half the width (--base-filters 32: dense layers of 512, convolutions of 32 and 64)
    # trains 3.5x the images per second of the paper's width on this CPU, so in the
    # demo's minutes it sees three times the images: all 60,000 for 4 epochs, or the
    # first 20,000 twelve times (the same 7,500 steps).
    # (`limit` 60,000, not None: a None setting means "not given" to make_config, and
    # the first runs named demo-f32-60k-4 trained the first 20,000 for 4 epochs.)
    "demo-f32-4": Setup(
        "half width, the first 20,000 images, 4 epochs (the demo's 2,500 steps)",
        "demo",
        {**FULL_WIDTH_DEMO, "base_filters": 32},
    ),
    "demo-f32-60k-4": Setup(
        "half width, all 60,000 images, 4 epochs",
        "demo",
        {"base_filters": 32, "limit": 60000, "epochs": 4},
    ),
    "demo-f32-20k-12": Setup(
        "half width, the first 20,000 images, 12 epochs",
        "demo",
        {**FULL_WIDTH_DEMO, "base_filters": 32, "epochs": 12},
    ),
    "fast-f32-16": Setup(
        "half width, all 60,000 images, 16 epochs (inside 20 minutes)",
        "fast",
        {"base_filters": 32, "epochs": 16, "ema": 0.999},
    ),
    "fast-f32-16-ema-0.9999": Setup(
        "the same with --ema 0.9999 (a window of a third of its 30,000 steps)",
        "fast",
        {"base_filters": 32, "epochs": 16, "ema": 0.9999},
    ),
    # --lr-decay linear: both learning rates fall to 0 over the run.
    "demo-lr-linear": Setup(
        "the demo (half width, 4 epochs of all 60,000), --lr-decay linear",
        "demo",
        {"lr_decay": "linear"},
    ),
    "fast-f32-16-lr-linear": Setup(
        "half width, all 60,000 images, 16 epochs, --lr-decay linear",
        "fast",
        {"base_filters": 32, "epochs": 16, "ema": 0.999, "lr_decay": "linear"},
    ),
    "fast-6-lr-linear": Setup(
        "the paper's width, 6 epochs of all 60,000 images, --lr-decay linear",
        "fast",
        {**FULL_WIDTH_FAST, "epochs": 6, "lr_decay": "linear"},
    ),
    # Batch 64 at half width: 1.25x the images a second of batch 32 (docs/results.md,
    # "The demo's recipe search"), so 5 epochs take about the demo's 4 epochs' time.
    "demo-f32-b64-5": Setup(
        "half width, batch 64, 5 epochs of all 60,000 (about the demo's time)",
        "demo",
        {"batch_size": 64, "epochs": 5},
    ),
    "fast-f32-16-ema-0.9998": Setup(
        "half width, all 60,000 images, 16 epochs, --ema 0.9998 (a window of a sixth)",
        "fast",
        {"base_filters": 32, "epochs": 16, "ema": 0.9998},
    ),
    "fast-6-epochs": Setup(
        "the fast until 2026-12-01 (full width), 6 epochs of all 60,000 images",
        "fast",
        {**FULL_WIDTH_FAST, "epochs": 6},
    ),
    "fast-infogan-nets": Setup(
        "the fast until 2026-12-01: the paper's width, 8 epochs of all images",
        "fast",
        FULL_WIDTH_FAST,
    ),
}


def run(name: str, seed: int, minutes: float | None, n: int, mnist, evaluator) -> dict:
    """Train one configuration with one seed and measure it."""
    from gan_mnist.evaluator import evaluate_run
    from gan_mnist.training import train

    setup = SETUPS[name]
    settings = {**setup.settings, "seed": seed}
    if minutes is not None:  # the clock, not the epochs, ends the run
        settings.update(epochs=10_000, checkpoint_every=10_000)
    config = make_config(setup.preset, **settings)
    models = globals()[setup.networks](config) if setup.networks else None
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        summary = train(
            config,
            run_dir,
            data=mnist,
            models=models,
            quiet=True,
            progress="none",
            max_minutes=minutes,
        )
        seconds = time.perf_counter() - started
        result = evaluate_run(Path(run_dir), n=n, seed=0, data=mnist, evaluator=evaluator)
    images = len(mnist.x_train) if config.limit is None else config.limit
    return {
        "config": name,
        "seed": seed,
        "epochs": round(summary.images_trained / images, 2),
        "train_seconds": round(sum(row["seconds"] for row in summary.history), 1),
        "wall_seconds": round(seconds, 1),
        "n": n,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        **{k: result["generated"][k] for k in METRICS},
        **({"class_accuracy": result["class_accuracy"]} if "class_accuracy" in result else {}),
    }


def cell(values: list[float], digits: int) -> str:
    """mean ± half the range, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    spread = (max(values) - min(values)) / 2
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def summarise(rows: list[dict]) -> str:
    """One Markdown row per configuration, in the order first seen."""
    header = [
        "configuration",
        "seeds",
        "epochs",
        "Fréchet distance",
        "classifier score",
        "digits",
        "precision",
        "recall",
        "training min",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in dict.fromkeys(row["config"] for row in rows):
        mine = [row for row in rows if row["config"] == name]
        about = SETUPS[name].about if name in SETUPS else ""
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{name}` ({about})",
                    ", ".join(str(row["seed"]) for row in mine),
                    cell([row["epochs"] for row in mine], 1),
                    cell([row["frechet_distance"] for row in mine], 2),
                    cell([row["classifier_score"] for row in mine], 2),
                    cell([row["digits_covered"] for row in mine], 1),
                    cell([row["precision"] for row in mine], 3),
                    cell([row["recall"] for row in mine], 3),
                    cell([row["train_seconds"] / 60 for row in mine], 1),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", help="configurations to run (see --list)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--minutes", type=float, help="train for M minutes, not the epochs")
    parser.add_argument("--n", type=int, default=10_000, help="digits measured per run")
    parser.add_argument("--log", type=Path, default=RESULTS / "quality-runs.jsonl")
    parser.add_argument("--summarise", type=Path, metavar="LOG", help="print LOG's table")
    parser.add_argument("--list", action="store_true", help="list the configurations")
    args = parser.parse_args()
    if args.list:
        for name, setup in SETUPS.items():
            print(f"{name:32} {setup.about}")
        return
    if args.summarise:
        rows = [json.loads(line) for line in args.summarise.read_text().splitlines() if line]
        print(summarise(rows))
        return
    unknown = [name for name in args.configs if name not in SETUPS]
    if unknown or not args.configs:
        parser.error(f"choose configurations from: {', '.join(SETUPS)} (got {unknown})")

    from gan_mnist.data import load_mnist
    from gan_mnist.evaluator import Evaluator

    mnist, evaluator = load_mnist(), Evaluator.load()
    rows = []
    # Seed by seed, alternating the configurations' order, so that the CPU's fast and
    # throttled spells fall on all of them alike.
    for i, seed in enumerate(args.seeds):
        for name in args.configs if i % 2 == 0 else reversed(args.configs):
            rows.append(run(name, seed, args.minutes, args.n, mnist, evaluator))
            print(json.dumps(rows[-1]), flush=True)
            args.log.parent.mkdir(parents=True, exist_ok=True)
            with args.log.open("a") as log:
                log.write(json.dumps(rows[-1]) + "\n")
    print(f"\n{platform.node()}, n={args.n}, {time.strftime('%Y-%m-%d')}\n")
    print(summarise(rows))


if __name__ == "__main__":
    main()
