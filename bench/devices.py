"""Images/s of the same training on one device and on N replicas (MirroredStrategy
over N logical CPU devices), alternated in one run; on a GPU machine, pass
--gpus to compare one GPU with all of them.

    python bench/devices.py                  # demo model, 2 logical CPUs, 3 rounds
    python bench/devices.py --rounds 5 --replicas 2

Each measurement is a fresh `gan-mnist train` process (the CPU is split before
TensorFlow starts); the figure is the images/s of its second epoch (the first
includes compiling). Prints each round and the median ratio (replicas / one).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def images_per_second(strategy: str, args, env: dict) -> float:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "gan_mnist", "train", "--preset", args.preset]
        command += ["--epochs", "2", "--limit", str(args.images), "--seed", "0", "--quiet"]
        command += ["--strategy", strategy, "--out", out, "--checkpoint-every", "10"]
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, **env})
        with open(Path(out) / "history.csv", newline="") as f:
            return float(list(csv.DictReader(f))[-1]["images_per_sec"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--images", type=int, default=6400, help="images per epoch")
    parser.add_argument("--gpus", action="store_true", help="compare real GPUs instead")
    args = parser.parse_args()

    split = {} if args.gpus else {"GAN_MNIST_CPU_DEVICES": str(args.replicas)}
    speeds = {"one": [], "mirrored": []}
    for round_number in range(1, args.rounds + 1):
        for strategy in ("one", "mirrored"):
            speed = images_per_second(strategy, args, split if strategy == "mirrored" else {})
            speeds[strategy].append(speed)
            print(f"round {round_number} {strategy:8} {speed:7.1f} img/s", flush=True)
    ratios = [m / o for m, o in zip(speeds["mirrored"], speeds["one"], strict=True)]
    what = "GPUs" if args.gpus else f"{args.replicas} logical CPU devices"
    print(
        f"\nmedian images/s: one device {statistics.median(speeds['one']):.0f}, mirrored over "
        f"{what} {statistics.median(speeds['mirrored']):.0f}; median ratio "
        f"{statistics.median(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
