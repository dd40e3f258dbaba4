"""The notebook's own training steps, timed side by side in one process: what the
lesson's speed claims rest on.

It runs the notebook's Part-1 cells that define the two steps (sections 0-8 up to the
training loop, and section 14 up to its compiled step) with ``PRESET = "demo"``, trains
no run, and times each variant for a few seconds per round, alternating their order
each round, so the CPU's bursts fall on all alike:

- ``tutorial``: section 7's step as the notebook runs it (Grappler's remapper off, as
  the setup cell sets it);
- ``tutorial-remapper-on``: the same step run with the remapper on (TensorFlow's
  default), to show what turning it off costs;
- ``final``: section 14's step (XLA, the averaged generator's update);
- ``final-no-xla``: the same step without ``jit_compile``;
- ``package-demo``: `gan-mnist train --preset demo`'s compiled step (gan_mnist.step),
  with the remapper on, as the package runs it.

    python bench/lesson_speed.py [--rounds 4] [--seconds 6]

Prints each round's images a second, each variant's median and its median ratio to its
pair (the remapper: to ``tutorial``; XLA and the package: to ``final``), and appends
one row to bench/results/lesson-speed.jsonl. The matrix-multiply probe before and after
says which state the CPU was in.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from exercises import part1_cells  # noqa: E402  (the same cells, the same way)
from speed import matmul_peak  # noqa: E402

LOG = Path(__file__).with_name("results") / "lesson-speed.jsonl"
# The cells that define the steps: from the first up to section 8's definitions, and
# from section 14's networks up to its compiled step (no training, no pictures).
FIRST_HALF_END = "def train(manager"
FINAL_START, FINAL_END = "def make_infogan_generator", "def final_train_step"
PAIRS = {
    "tutorial-remapper-on": "tutorial",
    "final-no-xla": "final",
    "package-demo": "final",
}


def step_cells() -> str:
    """The notebook's cells that build both steps, as one Python script."""
    from IPython.core.inputtransformer2 import TransformerManager

    sources = part1_cells()
    end = next(i for i, s in enumerate(sources) if FIRST_HALF_END in s)
    start = next(i for i, s in enumerate(sources) if FINAL_START in s)
    stop = next(i for i, s in enumerate(sources) if FINAL_END in s)
    chosen = sources[: end + 1] + sources[start : stop + 1]
    chosen[0] += f'\nPRESET = "demo"\nOUTPUT_DIR = {tempfile.mkdtemp()!r}\n'
    python = TransformerManager().transform_cell
    return "\n\n".join(python(s) for s in chosen)


# TensorFlow reads Grappler's options at each call, not at tracing: the remapper is set
# before each variant's steps. On for the package's step (`gan-mnist train` leaves it
# on), off for the notebook's (its setup cell turns it off on a CPU).
REMAPPER_ON = ("tutorial-remapper-on", "package-demo")


def remapper(name: str) -> None:
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"remapper": name in REMAPPER_ON})


def variants(lesson: dict) -> dict:
    """Each variant as a function that trains one batch of its own data."""
    import tensorflow as tf

    from gan_mnist.config import make_config
    from gan_mnist.data import load_dataset
    from gan_mnist.pipeline import make_dataset
    from gan_mnist.state import TrainingState
    from gan_mnist.step import compile_step

    remapper_on = tf.function(
        lesson["make_train_step"](
            lesson["generator"],
            lesson["discriminator"],
            lesson["generator_optimizer"],
            lesson["discriminator_optimizer"],
        )
    )
    no_xla = tf.function(lesson["final_train_step"].python_function)

    data = load_dataset("mnist")
    state = TrainingState(make_config("demo", seed=0), tempfile.mkdtemp())
    package_step = compile_step(state, len(data.x_train) // 32)
    package_batches = iter(make_dataset(data.x_train, data.y_train, 32, 0).repeat())
    tutorial_batches = iter(lesson["train_dataset"].repeat())
    final_batches = iter(lesson["final_dataset"].repeat())

    def package():
        package_step(package_batches, 1)
        return state.loss_sums

    return {
        "tutorial": lambda: lesson["train_step"](next(tutorial_batches)),
        "tutorial-remapper-on": lambda: remapper_on(next(tutorial_batches)),
        "final": lambda: lesson["final_train_step"](next(final_batches)),
        "final-no-xla": lambda: no_xla(next(final_batches)),
        "package-demo": package,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0, help="per variant per round")
    parser.add_argument("--log", type=Path, default=LOG)
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    peaks = [matmul_peak()]
    # A file, so that inspect and autograph find the functions' source.
    script = Path(tempfile.mkdtemp()) / "part1_steps.py"
    script.write_text(step_cells())
    lesson = runpy.run_path(str(script))
    steps = variants(lesson)
    batch_size = 32  # both halves of the demo, and the package's
    for name, step in steps.items():  # trace, compile and warm up
        remapper(name)
        for _ in range(10):
            step()
    speeds: dict[str, list[float]] = {name: [] for name in steps}
    for round_number in range(args.rounds):
        order = list(steps) if round_number % 2 == 0 else list(steps)[::-1]
        for name in order:
            remapper(name)
            for _ in range(3):  # a changed option makes TensorFlow optimise the graph again
                steps[name]()
            step, images, started = steps[name], 0, time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                out = step()
                images += batch_size
            float(out[0])  # wait for the last step
            speeds[name].append(images / (time.perf_counter() - started))
        print(round_number + 1, {k: round(v[-1]) for k, v in speeds.items()}, flush=True)
    peaks.append(matmul_peak())
    row = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "seconds": args.seconds}
    row["matmul_gflops_before_after"] = [round(p) for p in peaks]
    for name, values in speeds.items():
        row[f"{name}_img_s"] = round(statistics.median(values), 1)
        print(f"{name:22} median {statistics.median(values):7.1f} img/s", end="")
        if name in PAIRS:
            pair = PAIRS[name]
            ratio = statistics.median([x / y for x, y in zip(values, speeds[pair], strict=True)])
            row[f"{name}_over_{pair}"] = round(ratio, 3)
            print(f", {ratio:.3f} x {pair}'s (median ratio of the rounds)", end="")
        print()
    print(f"fp32 matmul GFLOP/s before and after: {peaks[0]:.0f}, {peaks[1]:.0f}")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as log:
        log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
