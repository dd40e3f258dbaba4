"""The anchor: the classic TensorFlow tutorial settings trained for their full 50 epochs.

What users of the classic DCGAN notebooks get after a full run, measured with the
project's evaluator at epochs 10, 20, ..., 50 (n generated digits each). The run
trains in steps of 10 epochs into one folder (each step resumes the last checkpoint,
bit for bit the uninterrupted run), so a stopped anchor run continues where it was.

    python bench/anchor.py                       # ~2 h on 2 CPU cores (~142 s/epoch)
    python bench/anchor.py --out runs/anchor --every 10 --epochs 50

Writes bench/results/anchor.md after every measured epoch (docs/results.md quotes it).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from quality import metric_cells  # bench/quality.py, beside this script

import gan_mnist  # noqa: F401  (quiets TensorFlow's start-up logs before it loads)
from gan_mnist.config import make_config
from gan_mnist.data import load_mnist
from gan_mnist.evaluator import Evaluator, evaluate_run
from gan_mnist.records import read_history
from gan_mnist.training import train

RESULTS = Path(__file__).with_name("results") / "anchor.md"
HEADER = [
    "epoch",
    "training minutes (sum of epochs)",
    "Fréchet distance (classifier)",
    "classifier score",
    "digits covered",
    "precision",
    "recall",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/anchor"))
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--n", type=int, default=10_000, help="digits measured per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    mnist = load_mnist()
    evaluator = Evaluator.load()
    measured = measured_rows(args.results)
    rows = []
    for epoch in range(args.every, args.epochs + 1, args.every):
        history = args.out / "history.csv"
        trained = len(read_history(history, args.epochs)) if history.exists() else 0
        if trained > epoch:  # a resumed anchor run: this epoch's checkpoint is gone
            if str(epoch) in measured:
                rows.append(measured[str(epoch)])
            else:
                print(f"epoch {epoch}: the run is already at epoch {trained}; not measured")
            continue
        config = make_config("tutorial", epochs=epoch, seed=args.seed, checkpoint_every=1)
        if train(config, args.out, data=mnist, quiet=True).last_epoch < epoch:
            raise SystemExit(f"stopped before epoch {epoch}: run the same command to go on")
        minutes = sum(float(r["seconds"]) for r in read_history(history, epoch))
        result = evaluate_run(args.out, n=args.n, seed=args.seed, data=mnist, evaluator=evaluator)
        rows.append([str(epoch), f"{minutes / 60:.1f}", *metric_cells(result["generated"])])
        print(" | ".join(rows[-1]), flush=True)
        table = "\n".join(
            ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
            + ["| " + " | ".join(row) + " |" for row in rows]
        )
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(
            f"Measured by `python bench/anchor.py` on {platform.node() or 'this machine'} "
            f"(CPU only), preset `tutorial` (batch 256, all 60,000 images, Adam 1e-4), seed "
            f"{args.seed}, n={args.n} generated digits per row, {time.strftime('%Y-%m-%d')}. "
            f"Training minutes exclude evaluation; the CPU alternates between full speed "
            f"and half speed, so they are about.\n\n{table}\n"
        )


def measured_rows(results: Path) -> dict[str, list[str]]:
    """The rows of an earlier results table, by epoch (a resumed anchor keeps them)."""
    if not results.exists():
        return {}
    rows = {}
    for line in results.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == len(HEADER) and cells[0].isdigit():
            rows[cells[0]] = cells
    return rows


if __name__ == "__main__":
    main()
