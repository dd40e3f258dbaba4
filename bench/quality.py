"""Quality for equal wall-clock budgets: the classic tutorial settings against our presets.

Each configuration trains on the real MNIST (offline path) for exactly the same
minutes of training on this machine, then `gan-mnist evaluate`'s metrics are
computed on N generated digits, beside N real training digits (the ceiling).

    python bench/quality.py                     # budgets 5 and 20 minutes (~80 min)
    python bench/quality.py --budgets 1 --n 2000 --presets demo   # a quick look

Prints one Markdown table and writes it to bench/results/quality.md (README quotes it).
The `smoke` preset is left out by default: it trains on 256 images for tests, and a
time budget would only make it write thousands of one-second epochs.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import gan_mnist  # noqa: F401  (quiets TensorFlow's start-up logs before it loads)
from gan_mnist.config import make_config
from gan_mnist.data import load_mnist
from gan_mnist.evaluator import Evaluator, evaluate_run
from gan_mnist.training import train

RESULTS = Path(__file__).with_name("results") / "quality.md"
LABELS = {"tutorial": "tutorial (the seeds' classic TF tutorial settings)"}


def metric_cells(scores: dict) -> list[str]:
    """The table's metric columns for one row of `Evaluator.score` results."""
    return [
        f"{scores['frechet_distance']:.2f}",
        f"{scores['classifier_score']:.2f}",
        f"{scores['digits_covered']}",
        f"{scores['precision']:.3f}",
        f"{scores['recall']:.3f}",
    ]


def raw_generator_scores(run_dir: Path, config, evaluator, args, mnist) -> dict | None:
    """For a run with an averaged generator (--ema): the raw generator's metrics."""
    if not config.ema:
        return None
    import tensorflow as tf

    from gan_mnist.checkpoints import newest_intact_checkpoint
    from gan_mnist.models import build_models
    from gan_mnist.sampling import generate_images

    latest, _ = newest_intact_checkpoint(run_dir)
    models = build_models(config)
    tf.train.Checkpoint(generator=models.generator).restore(latest).expect_partial()
    reference, _ = evaluator.predict(mnist.x_test)
    return evaluator.score(generate_images(models, args.n, args.seed), reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[5, 20], metavar="MIN")
    parser.add_argument("--presets", nargs="+", default=["tutorial", "demo", "fast"])
    parser.add_argument("--n", type=int, default=10_000, help="digits measured per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    mnist = load_mnist()
    evaluator = Evaluator.load()
    rows, ceiling = [], None
    for budget in args.budgets:
        for preset in args.presets:
            # A huge epoch count: the time budget, not the preset's epochs, ends the run.
            config = make_config(preset, epochs=10_000, seed=args.seed, checkpoint_every=10_000)
            with tempfile.TemporaryDirectory() as run_dir:
                started = time.perf_counter()
                summary = train(config, run_dir, data=mnist, quiet=True, max_minutes=budget)
                wall = time.perf_counter() - started
                result = evaluate_run(
                    Path(run_dir), n=args.n, seed=args.seed, data=mnist, evaluator=evaluator
                )
                raw = raw_generator_scores(Path(run_dir), config, evaluator, args, mnist)
            images = len(mnist.x_train) if config.limit is None else config.limit
            ceiling = result["real_data_ceiling"]
            epochs = f"{summary.images_trained / images:.1f}"
            label = LABELS.get(preset, preset)
            if raw is not None:  # the same run's raw generator, beside its average
                rows.append(
                    [f"{budget:g} min", f"{label}, raw generator", epochs]
                    + metric_cells(raw)
                    + [f"{wall / 60:.1f}"]
                )
                label += f", averaged generator (ema {config.ema})"
            rows.append(
                [f"{budget:g} min", label, epochs]
                + metric_cells(result["generated"])
                + [f"{wall / 60:.1f}"]
            )
            print("\n".join(" | ".join(row) for row in rows[-1 - (raw is not None) :]), flush=True)
    ceiling_label = f"real MNIST training digits (ceiling, n={args.n})"
    rows.append(["-", ceiling_label, "-"] + metric_cells(ceiling) + ["-"])
    header = [
        "budget",
        "configuration",
        "epochs reached",
        "Fréchet distance (classifier)",
        "classifier score",
        "digits covered",
        "precision",
        "recall",
        "wall-clock min (train + artifacts)",
    ]
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(row) + " |" for row in rows]
    )
    text = (
        f"Measured by `python bench/quality.py` on {platform.node() or 'this machine'} "
        f"({platform.processor() or platform.machine()}, CPU only), n={args.n} generated "
        f"digits per run, seed {args.seed}, {time.strftime('%Y-%m-%d')}.\n\n{table}\n"
    )
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
