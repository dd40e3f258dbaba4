"""The notebook's exercises, measured: each of Part 1's exercises (section 13) applied
to the notebook's own cells, Part 1 trained with them, and its generator measured; and
the seed's effect at the length of Part 2's exercises (section 19).

Part 1 mode (the default) takes the notebook's Part-1 code cells as they are committed,
applies one exercise's edit (each edit must match its cell exactly once, so an edit of
the notebook that moves a line fails here, loudly), sets the parameters (``PRESET``,
``SEED``, a private ``OUTPUT_DIR``), runs the cells as a Python script in a fresh
process, and measures the trained generator on 10,000 samples with the package's MNIST
classifier (`Evaluator.score`, the metrics of `gan-mnist evaluate`):

    python bench/exercises.py --seeds 1 2                 # every exercise and the baseline
    python bench/exercises.py bn-in-d --seeds 1 2 --jobs 2
    python bench/exercises.py --part2 --seeds 1 2 3       # section 19's seed spread
    python bench/exercises.py --summarise                 # mean ± half-range per row

Rows are appended to ``--log`` (JSON lines) as each run ends; ``--summarise`` prints
one Markdown table. ``--jobs 2`` runs two trainings side by side with one TensorFlow
thread each (quality does not depend on that; their seconds compare only with each
other).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "GAN_MNIST_Notebook.ipynb"
LOG = Path(__file__).with_name("results") / "exercises.jsonl"
METRICS = ("frechet_distance", "classifier_score", "digits_covered", "precision", "recall")


@dataclass(frozen=True)
class Edit:
    """One exercise: in the Part-1 cell that contains ``cell``, replace ``pattern`` (a
    regular expression, matched ``count`` times exactly) by ``replacement``."""

    about: str
    cell: str
    pattern: str
    replacement: str
    count: int = 1


EXERCISES = {
    "baseline": None,
    "bn-in-d": Edit(
        "1. BatchNorm in the discriminator",
        "def make_discriminator_model",
        r'( *)(layers\.Conv2D\(2 \* f, 5, strides=2, padding="same"\),  # \(batch, 7, 7, 2f\)\n)',
        r"\1\2\1layers.BatchNormalization(),\n",
    ),
    "label-smoothing": Edit(
        "2. one-sided label smoothing (real label 0.9)",
        "def discriminator_loss",
        r"cross_entropy\(tf\.ones_like\(real_output\), real_output\)",
        "cross_entropy(0.9 * tf.ones_like(real_output), real_output)",
    ),
    "noise-dim-2": Edit(
        "3. NOISE_DIM = 2", "PRESETS = {", r"\nNOISE_DIM = 100\n", "\nNOISE_DIM = 2\n"
    ),
    "no-bn-in-g": Edit(
        "4. no BatchNorm in the generator",
        "def make_generator_model",
        r"\n *layers\.BatchNormalization\(\),[^\n]*",
        "",
        count=3,
    ),
}


def part1_cells(notebook: Path = NOTEBOOK) -> list[str]:
    """The sources of Part 1's code cells, in order (up to the "# Part 2" heading)."""
    cells = json.loads(notebook.read_text())["cells"]
    sources = []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith("# Part 2"):
            return sources
        if cell["cell_type"] == "code":
            sources.append(source)
    raise ValueError(f"{notebook} has no '# Part 2' heading")


def apply(edit: Edit | None, sources: list[str]) -> list[str]:
    """``sources`` with ``edit`` made in its cell; ValueError when it does not match."""
    if edit is None:
        return list(sources)
    (index,) = [i for i, s in enumerate(sources) if edit.cell in s] or [None]
    if index is None:
        raise ValueError(f"no Part-1 cell contains {edit.cell!r}")
    changed, matches = re.subn(edit.pattern, edit.replacement, sources[index])
    if matches != edit.count:
        raise ValueError(f"{edit.about}: {matches} matches of {edit.pattern!r}, not {edit.count}")
    return sources[:index] + [changed] + sources[index + 1 :]


MEASURE = """
import json as _json
import numpy as _np
from gan_mnist.data import load_dataset as _load
from gan_mnist.pipeline import to_uint8 as _uint8
from gan_mnist.evaluator import Evaluator as _Evaluator, reference_images as _reference

_data = _load(DATASET)
_evaluator = _Evaluator.load(dataset=DATASET)
_noise = _np.random.default_rng(0).standard_normal((10_000, NOISE_DIM)).astype("float32")
_images = _uint8(generator.predict(_noise, batch_size=500, verbose=0), (-1.0, 1.0))[..., 0]
_score = _evaluator.score(_images, _evaluator.predict(_reference(_data, 10_000))[0])
_score.pop("histogram")
print("RESULT", _json.dumps({**_score, "run_dir": str(run_dir)}))
"""


def script(name: str, seed: int, preset: str, out: Path) -> str:
    """Part 1 with exercise ``name`` as one Python script, then the measurement."""
    from IPython.core.inputtransformer2 import TransformerManager

    sources = apply(EXERCISES[name], part1_cells())
    parameters = f"PRESET = {preset!r}\nSEED = {seed}\nOUTPUT_DIR = {str(out)!r}\n"
    python = TransformerManager().transform_cell
    body = [python(sources[0]) + parameters] + [python(s) for s in sources[1:]]
    return "\n\n".join(body) + "\n" + MEASURE


def run_part1(name: str, seed: int, preset: str, threads: int) -> dict:
    """Train Part 1 with exercise ``name`` in a fresh process; returns its row."""
    with tempfile.TemporaryDirectory(prefix=f"exercise-{name}-") as tmp:
        path = Path(tmp) / "part1.py"  # a file, so inspect.getsource finds the functions
        path.write_text(script(name, seed, preset, Path(tmp) / "runs"))
        env = {**os.environ, "MPLBACKEND": "Agg", "TF_NUM_INTRAOP_THREADS": str(threads)}
        started = time.time()
        done = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, env=env, cwd=tmp
        )
        seconds = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(f"{name} seed {seed} failed:\n{done.stderr[-3000:]}")
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))
    losses = [x for x in done.stdout.splitlines() if x.startswith("epoch ")]
    return {
        "mode": "part1",
        "exercise": name,
        "about": EXERCISES[name].about if EXERCISES[name] else "Part 1 unchanged",
        "preset": preset,
        "seed": seed,
        "seconds": round(seconds, 1),
        "last_epoch_line": losses[-1] if losses else None,
        **{k: result[k] for k in METRICS},
    }


def run_part2(seed: int, preset: str, threads: int) -> dict:
    """Section 19's first line (the preset unchanged, the tutorial's networks, 2
    epochs) for ``seed``, measured as the notebook does (1,000 samples)."""
    code = f"""
import json, tempfile
from gan_mnist import training
from gan_mnist.config import make_config
from gan_mnist.evaluator import evaluate_run
config = make_config({preset!r}, model="dcgan", epochs=2, seed={seed})
out = tempfile.mkdtemp() + "/run"
training.train(config, out, quiet=True)
row = evaluate_run(out, n=1000)["generated"]
print("RESULT", json.dumps({{k: row[k] for k in {METRICS!r}}}))
"""
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads)}
    started = time.time()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"part2 seed {seed} failed:\n{done.stderr[-3000:]}")
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    return {
        "mode": "part2",
        "exercise": "part2-unchanged",
        "about": "section 19's first line: the preset unchanged, 2 epochs, 1,000 samples",
        "preset": preset,
        "seed": seed,
        "seconds": round(time.time() - started, 1),
        **json.loads(line.removeprefix("RESULT ")),
    }


def summarise(log: Path) -> str:
    """One Markdown table: per (mode, exercise) the mean ± half-range of each metric."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["mode"], row["exercise"], row["preset"]), []).append(row)
    head = "| exercise | preset | seeds | " + " | ".join(METRICS) + " | seconds |"
    lines = [head, "|" + "---|" * (len(METRICS) + 4)]
    for (_, _, preset), group in groups.items():
        cells = []
        for key in (*METRICS, "seconds"):
            values = [r[key] for r in group]
            mean, spread = statistics.mean(values), (max(values) - min(values)) / 2
            cells.append(f"{mean:.2f} ± {spread:.2f}" if len(values) > 1 else f"{mean:.2f}")
        seeds = ", ".join(str(r["seed"]) for r in group)
        lines.append(f"| {group[0]['about']} | {preset} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exercises", nargs="*", help=f"of {', '.join(EXERCISES)} (all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--part2", action="store_true", help="section 19's seed spread")
    parser.add_argument("--jobs", type=int, default=1, help="trainings side by side")
    parser.add_argument("--log", type=Path, default=LOG)
    parser.add_argument("--summarise", action="store_true")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.log))
        return
    threads = 1 if args.jobs > 1 else 0  # 0: TensorFlow's own choice
    if args.part2:
        jobs = [(run_part2, (seed, args.preset, threads)) for seed in args.seeds]
    else:
        names = args.exercises or list(EXERCISES)
        unknown = set(names) - set(EXERCISES)
        if unknown:
            parser.error(f"unknown exercises {sorted(unknown)}: choose from {list(EXERCISES)}")
        for name in names:
            apply(EXERCISES[name], part1_cells())  # every edit matches before anything trains
        jobs = [
            (run_part1, (name, seed, args.preset, threads)) for seed in args.seeds for name in names
        ]
    args.log.parent.mkdir(parents=True, exist_ok=True)

    def one(job):
        row = job[0](*job[1])
        with open(args.log, "a") as log:
            log.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, jobs))


if __name__ == "__main__":
    main()
