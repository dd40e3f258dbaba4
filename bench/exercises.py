"""Part 1 of the notebook, measured: its default run, section 13's exercises and section
14's changes, each made in the notebook's own cells and trained over seeds.

The script takes the notebook's Part-1 code cells as they are committed, makes one
change (each edit must match its cell exactly as often as it says, so an edit of the
notebook that moves a line fails here, loudly), sets the parameters (``PRESET``,
``SEED``, a private ``OUTPUT_DIR``), runs the cells as a Python script in a fresh
process, and measures generators on 10,000 samples with the package's MNIST classifier
(`gan_mnist.evaluator.evaluate_generator`, the metrics of `gan-mnist evaluate`):

- ``default``: all of Part 1 unchanged; three rows, its three generators: sections 1-12's
  (``tutorial``), section 14's averaged one (``final``) and its trained one
  (``final-raw``: section 14 without change 2, the averaged generator).
- an exercise of section 13 (``bn-in-d``, ...): sections 1-12 with the change, up to
  section 14; one row, their generator.
- a change of section 14 left out (``final-...``): sections 1-12 for one epoch only
  (section 14 starts from its own seed, whatever ran before), then section 14 with the
  change undone; one row, its averaged generator.

    python bench/exercises.py default --seeds 1 2
    python bench/exercises.py bn-in-d label-smoothing --seeds 1 2
    python bench/exercises.py --summarise             # mean ± half-range per row

Rows are appended to ``--log`` (JSON lines) as each run ends; the notebook's answers and
section 14's table quote them (tests/test_notebook.py holds the two together).
``--jobs 2`` runs two trainings side by side with one TensorFlow thread each (quality
does not depend on that; their seconds compare only with each other).
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
FINAL_SECTION = "## 14."  # the heading of section 14, where the final GAN starts


@dataclass(frozen=True)
class Edit:
    """In the Part-1 cell that contains ``cell``, replace ``pattern`` (a regular
    expression, matched ``count`` times exactly) by ``replacement``."""

    cell: str
    pattern: str
    replacement: str
    count: int = 1


@dataclass(frozen=True)
class Change:
    """One configuration of Part 1: its edits, which part of Part 1 runs (``"tutorial"``:
    up to section 14; ``"all"``), and the generators measured (name in the row: the
    notebook's variable)."""

    about: str
    edits: tuple[Edit, ...] = ()
    runs: str = "all"
    measures: tuple[tuple[str, str], ...] = (("final", "average_generator"),)


SETTINGS_CELL = "settings = PRESETS[PRESET]"
FINAL_SETTINGS_CELL = "final = FINAL_PRESETS[PRESET]"
# Section 14's changes are measured beside a short first half: one epoch of it.
ONE_TUTORIAL_EPOCH = Edit(SETTINGS_CELL, r'EPOCHS = settings\["epochs"\]', "EPOCHS = 1")


def demo_setting(key: str, old: str, new: str) -> Edit:
    """Section 14's demo recipe with ``key=old`` made ``key=new`` (the demo's line only)."""
    return Edit(
        FINAL_SETTINGS_CELL,
        rf'("demo": dict\((?:(?!\)\s*,)[\s\S])*?){key}={re.escape(old)}\b',
        rf"\g<1>{key}={new}",
    )


CHANGES = {
    "default": Change(
        "Part 1 unchanged",
        measures=(
            ("tutorial", "generator"),
            ("final", "average_generator"),
            ("final-raw", "final_generator"),
        ),
    ),
    "bn-in-d": Change(
        "1. BatchNorm in the discriminator",
        (
            Edit(
                "def make_discriminator_model",
                r'( *)(layers\.Conv2D\(2 \* f, 5, strides=2, padding="same"\),  '
                r"# \(batch, 7, 7, 2f\)\n)",
                r"\1\2\1layers.BatchNormalization(),\n",
            ),
        ),
        runs="tutorial",
        measures=(("tutorial", "generator"),),
    ),
    "label-smoothing": Change(
        "2. one-sided label smoothing (real label 0.9)",
        (
            Edit(
                "def discriminator_loss",
                r"cross_entropy\(tf\.ones_like\(real_output\), real_output\)",
                "cross_entropy(0.9 * tf.ones_like(real_output), real_output)",
            ),
        ),
        runs="tutorial",
        measures=(("tutorial", "generator"),),
    ),
    "noise-dim-2": Change(
        "3. NOISE_DIM = 2",
        (Edit(SETTINGS_CELL, r"\nNOISE_DIM = 100\n", "\nNOISE_DIM = 2\n"),),
        runs="tutorial",
        measures=(("tutorial", "generator"),),
    ),
    "no-bn-in-g": Change(
        "4. no BatchNorm in the generator",
        (Edit("def make_generator_model", r"\n *layers\.BatchNormalization\(\),[^\n]*", "", 3),),
        runs="tutorial",
        measures=(("tutorial", "generator"),),
    ),
    "final-tutorial-networks": Change(
        "section 14 without change 1: the tutorial's networks (noise 62, no dropout)",
        (
            ONE_TUTORIAL_EPOCH,
            Edit(
                "final_generator = make_infogan_generator(",
                r'make_infogan_generator\(final\["base_filters"\], final\["noise_dim"\]\)',
                'make_generator_model(final["base_filters"], final["noise_dim"])',
            ),
            Edit(
                "final_discriminator = make_infogan_discriminator(",
                r'make_infogan_discriminator\(final\["base_filters"\]\)',
                'make_discriminator_model(final["base_filters"], 0.0)',
            ),
        ),
    ),
    "final-first-20000": Change(
        "section 14 without change 3: the first 20,000 images for 12 epochs",
        (
            ONE_TUTORIAL_EPOCH,
            demo_setting("limit", "None", "20000"),
            demo_setting("epochs", "4", "12"),
        ),
    ),
    "final-gen-lr-4e-4": Change(
        "section 14 without change 4: G's learning rate 4e-4 (sections 1-12's)",
        (ONE_TUTORIAL_EPOCH, demo_setting("gen_lr", "1e-3", "4e-4")),
    ),
}


def part1_cells(notebook: Path = NOTEBOOK, runs: str = "all") -> list[str]:
    """The sources of Part 1's code cells, in order: up to the "# Part 2" heading, or
    with ``runs="tutorial"`` up to section 14's."""
    cells = json.loads(notebook.read_text())["cells"]
    end = "# Part 2" if runs == "all" else FINAL_SECTION
    sources = []
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith(end):
            return sources
        if cell["cell_type"] == "code":
            sources.append(source)
    raise ValueError(f"{notebook} has no {end!r} heading")


def apply(change: Change, sources: list[str]) -> list[str]:
    """``sources`` with ``change``'s edits made; ValueError when one does not match."""
    sources = list(sources)
    for edit in change.edits:
        (index,) = [i for i, s in enumerate(sources) if edit.cell in s] or [None]
        if index is None:
            raise ValueError(f"{change.about}: no Part-1 cell contains {edit.cell!r}")
        sources[index], matches = re.subn(edit.pattern, edit.replacement, sources[index])
        if matches != edit.count:
            raise ValueError(
                f"{change.about}: {matches} matches of {edit.pattern!r}, not {edit.count}"
            )
    return sources


MEASURE = """
import json as _json
from gan_mnist.evaluator import evaluate_generator as _evaluate

for _name, _model in {measures}:
    _score = _evaluate(_model, n=10_000, seed=0, data=load_dataset(DATASET))["generated"]
    _score.pop("histogram")
    print("RESULT", _name, _json.dumps(_score))
"""


def script(name: str, seed: int, preset: str, out: Path) -> str:
    """Part 1 with ``name``'s changes as one Python script, then the measurement."""
    from IPython.core.inputtransformer2 import TransformerManager

    change = CHANGES[name]
    sources = apply(change, part1_cells(runs=change.runs))
    parameters = f"PRESET = {preset!r}\nSEED = {seed}\nOUTPUT_DIR = {str(out)!r}\n"
    python = TransformerManager().transform_cell
    body = [python(sources[0]) + parameters] + [python(s) for s in sources[1:]]
    measures = "[" + ", ".join(f"({n!r}, {v})" for n, v in change.measures) + "]"
    return "\n\n".join(body) + "\n" + MEASURE.format(measures=measures)


def run(name: str, seed: int, preset: str, threads: int) -> list[dict]:
    """Train Part 1 with ``name``'s changes in a fresh process; returns its rows."""
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
    lines = done.stdout.splitlines()
    # Each epoch's line once (the loop prints them all again after each epoch).
    epochs = list(dict.fromkeys(x for x in lines if x.startswith("epoch ")))
    trained = [x for x in lines if x.startswith("trained to epoch ")]
    rows = []
    for line in (x for x in lines if x.startswith("RESULT ")):
        _, generator, values = line.split(" ", 2)
        result = json.loads(values)
        rows.append(
            {
                "mode": "part1",
                "exercise": name,
                "about": CHANGES[name].about,
                "generator": generator,
                "preset": preset,
                "seed": seed,
                "seconds": round(seconds, 1),
                "epoch_lines": epochs,
                "trained_lines": trained,
                **{k: result[k] for k in METRICS},
            }
        )
    return rows


def read_rows(log: Path = LOG) -> list[dict]:
    """The log's rows of today's Part 1 (each with its ``generator``)."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in rows if "generator" in r]


def groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows by (exercise, generator, preset), in the log's order."""
    grouped: dict[tuple, list[dict]] = {}
    for row in rows:
        grouped.setdefault((row["exercise"], row["generator"], row["preset"]), []).append(row)
    return grouped


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """The mean and half the range: the "a ± b" of the notebook and the results page."""
    return statistics.mean(values), (max(values) - min(values)) / 2


def summarise(log: Path) -> str:
    """One Markdown table: per (exercise, generator) the mean ± half-range of each metric."""
    head = "| change | generator | preset | seeds | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 4)]
    for (_, generator, preset), group in groups(read_rows(log)).items():
        cells = []
        for key in METRICS:
            mean, spread = mean_and_spread([r[key] for r in group])
            cells.append(f"{mean:.2f} ± {spread:.2f}" if len(group) > 1 else f"{mean:.2f}")
        seeds = ", ".join(str(r["seed"]) for r in group)
        head = f"| {group[0]['about']} | {generator} | {preset} | {seeds} | "
        lines.append(head + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("changes", nargs="*", help=f"of {', '.join(CHANGES)} (all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--jobs", type=int, default=1, help="trainings side by side")
    parser.add_argument("--log", type=Path, default=LOG)
    parser.add_argument("--summarise", action="store_true")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.log))
        return
    threads = 1 if args.jobs > 1 else 0  # 0: TensorFlow's own choice
    names = args.changes or list(CHANGES)
    unknown = set(names) - set(CHANGES)
    if unknown:
        parser.error(f"unknown changes {sorted(unknown)}: choose from {list(CHANGES)}")
    edits_demo = [n for n in names if ONE_TUTORIAL_EPOCH in CHANGES[n].edits]
    if edits_demo and args.preset != "demo":
        parser.error(f"{edits_demo} edit section 14's demo recipe: use --preset demo")
    for name in names:  # every edit matches before anything trains
        apply(CHANGES[name], part1_cells(runs=CHANGES[name].runs))
    jobs = [(name, seed, args.preset, threads) for seed in args.seeds for name in names]
    args.log.parent.mkdir(parents=True, exist_ok=True)

    def one(job):
        for row in run(*job):
            with open(args.log, "a") as log:
                log.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, jobs))


if __name__ == "__main__":
    main()
