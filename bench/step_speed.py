"""The compiled training step's speed for variants of a preset, side by side in one
process: each variant's state is built and compiled once, then the variants take turns
(the order reversed every round) training for a few seconds each, so the CPU's bursts
fall on all of them alike. Only the step: no per-epoch images, checkpoints or compiles.

    python bench/step_speed.py ema=0.0 batch_size=64 base_filters=32 jit_compile=off
    python bench/step_speed.py --preset demo --rounds 6 --seconds 8 steps_per_call=8

Each argument is a variant, KEY=VALUE[,KEY=VALUE] on top of the preset. Prints each
round's images/s, then each variant's median images/s and its median ratio to the
preset itself ("base").
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import gan_mnist  # noqa: F401  (quiets TensorFlow's start-up logs before it loads)
from gan_mnist.config import make_config
from gan_mnist.data import load_dataset
from gan_mnist.pipeline import make_dataset
from gan_mnist.state import TrainingState
from gan_mnist.step import compile_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", metavar="KEY=VALUE[,KEY=VALUE]")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0, help="per variant per round")
    args = parser.parse_args()

    data = load_dataset("mnist")
    base = make_config(args.preset, seed=0)
    runs = {}
    for name in ["base", *args.variants]:
        changes = dict(kv.split("=", 1) for kv in name.split(",")) if name != "base" else {}
        config = dataclasses.replace(
            base, **{k: type(getattr(base, k))(v) for k, v in changes.items()}
        )
        state = TrainingState(config, tempfile.mkdtemp())
        step = compile_step(state, len(data.x_train) // config.batch_size)
        n = config.steps_per_call or 1
        batches = iter(make_dataset(data.x_train, data.y_train, config.batch_size, 0).repeat())
        for _ in range(20 // n + 1):  # compile and warm up
            step(batches, n)
        state.loss_sums.numpy()
        runs[name] = (config, state, step, batches, n)
    speeds = {name: [] for name in runs}
    for round_number in range(args.rounds):
        order = list(runs) if round_number % 2 == 0 else list(runs)[::-1]
        for name in order:
            config, state, step, batches, n = runs[name]
            images, started = 0, time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                step(batches, n)
                images += n * config.batch_size
            state.loss_sums.numpy()  # wait for the last step
            speeds[name].append(images / (time.perf_counter() - started))
        print(round_number + 1, {k: round(v[-1]) for k, v in speeds.items()}, flush=True)
    for name, values in speeds.items():
        ratios = [x / y for x, y in zip(values, speeds["base"], strict=True)]
        print(
            f"{name:40} median {statistics.median(values):7.1f} img/s, "
            f"ratio to base {statistics.median(ratios):.3f}"
        )


if __name__ == "__main__":
    main()
