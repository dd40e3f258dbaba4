"""How long a folder of 60,000 images takes to read, the first time and from the cache.

Writes MNIST's 60,000 training digits into a folder of images, one subfolder per digit
(``--kind png``: 28x28 grey PNGs; ``jpg64``: 64x64 colour JPEGs, each digit in a
colour of its class's on a light background, dark on light), then reads it as
``gan-mnist train --data FOLDER`` does (`gan_mnist.data.load_dataset("images", ...)`),
each read in a fresh process: first with an empty cache (layout, digest, every file
decoded and converted), then again (the cache). Prints the seconds of each, the
rounds alternated, and appends a row to bench/results/image-folder.jsonl.

    python bench/image_folder.py [--kind png] [--rounds 2] [--folder DIR]

The folder is kept where ``--folder`` says (default: a temporary one, removed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOG = Path(__file__).with_name("results") / "image-folder.jsonl"
COLOURS = [(200, 30, 30), (30, 120, 30), (30, 30, 200), (150, 80, 0), (120, 0, 120),
           (0, 110, 110), (90, 90, 90), (180, 0, 90), (0, 60, 140), (100, 100, 0)]  # fmt: skip

READ = """
import sys, time
started = time.perf_counter()
from gan_mnist.data import load_dataset
data = load_dataset("images", sys.argv[1])
print(time.perf_counter() - started, len(data.x_train), data.details)
"""


def write_folder(folder: Path, kind: str) -> float:
    """MNIST's training digits as image files in ``folder``; the seconds it took."""
    import numpy as np
    from PIL import Image

    from gan_mnist.data import load_dataset

    mnist = load_dataset("mnist")
    started = time.perf_counter()
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (pixels, label) in enumerate(zip(mnist.x_train, mnist.y_train, strict=True)):
        if kind == "png":
            Image.fromarray(pixels).save(folder / str(label) / f"{i:05d}.png")
        else:
            ink = np.asarray(COLOURS[label], np.float32) / 255
            alpha = pixels.astype(np.float32)[..., None] / 255
            rgb = (255 * ((1 - alpha) * 0.95 + alpha * ink)).astype(np.uint8)
            image = Image.fromarray(rgb).resize((64, 64), Image.Resampling.BICUBIC)
            image.save(folder / str(label) / f"{i:05d}.jpg", quality=90)
    return time.perf_counter() - started


def read_once(folder: Path, cache: Path) -> tuple[float, str]:
    """One read in a fresh process (its import of TensorFlow not counted)."""
    env = {**os.environ, "GAN_MNIST_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", READ, str(folder)], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    seconds, count, *details = done.stdout.split()
    assert int(count) == 60_000, count
    return float(seconds), " ".join(details)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("png", "jpg64"), default="png")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--log", type=Path, default=LOG)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="image-folder-"))
    folder = args.folder or work / "digits"
    try:
        if not folder.exists():
            print(f"wrote {folder} in {write_folder(folder, args.kind):.1f} s", flush=True)
        first, cached = [], []
        for round_number in range(args.rounds):
            cache = work / f"cache{round_number}"
            seconds, details = read_once(folder, cache)  # an empty cache: read it all
            first.append(seconds)
            cached.append(read_once(folder, cache)[0])  # the same cache: read from it
            print(f"round {round_number + 1}: first {first[-1]:.1f} s, cached {cached[-1]:.1f} s")
        row = {
            "date": time.strftime("%Y-%m-%d"),
            "kind": args.kind,
            "images": 60_000,
            "details": details,
            "first_s": [round(s, 1) for s in first],
            "cached_s": [round(s, 1) for s in cached],
        }
        print(
            f"median: first read {statistics.median(first):.1f} s, from the cache "
            f"{statistics.median(cached):.1f} s {details.strip()}"
        )
        args.log.parent.mkdir(parents=True, exist_ok=True)
        with open(args.log, "a") as log:
            log.write(json.dumps(row) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
