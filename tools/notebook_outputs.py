"""Fill GAN_MNIST_Notebook.ipynb with the outputs of a real "Run all" (`make notebook`).

The notebook runs with its default parameters (papermill, no parameters injected) in a
fresh folder, on this checkout's installed package (so the install cell does nothing),
with Gradio's usage analytics off. Then its outputs are made fit to commit:

- the metadata papermill and Jupyter add (timestamps, durations) are removed; the
  notebook's metadata gains ``gan_mnist.code_sha256``, the digest of every code cell
  that produced these outputs (`code_digest`), which a test compares with today's cells;
- consecutive stream outputs are merged and progress bars reduced to what the screen
  showed last (``\\r`` rewrites);
- the app cell's output (a page served from this machine) is dropped;
- the run folder and the home folder are written as relative paths and ``~``, and any
  other absolute path left over stops the script (nothing of the machine is committed);
- the introduction's picture (the markdown attachment ``part1_digits.png``) becomes the
  last epoch image of Part 1's final run (section 14).

    python tools/notebook_outputs.py [--notebook PATH]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "GAN_MNIST_Notebook.ipynb"
ATTACHMENT = "part1_digits.png"
METADATA_KEY = "gan_mnist"
TEXT_KINDS = ("text/plain", "text/html", "text/markdown")  # outputs' readable parts
KEPT_METADATA = ("kernelspec", "language_info", "accelerator", "colab", METADATA_KEY)
# A cell's metadata kept: its tags (papermill's "parameters"), and a helper cell's
# "collapsed where the notebook opens" in Colab ("cellView") and in Jupyter ("jupyter").
KEPT_CELL_METADATA = ("tags", "cellView", "jupyter")
# What a committed output must never hold: an absolute path of this machine.
MACHINE_PATH = re.compile(r"(?<![\w.:/])/(?:tmp|root|home|work|Users|var|private)/")


def code_digest(notebook: dict) -> str:
    """SHA-256 of the notebook's code cells' sources, in order (outputs, markdown and
    metadata left out): the code that the committed outputs came from."""
    sources = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def screen_text(text: str) -> str:
    """A stream as a terminal shows it: each line as last rewritten after a ``\\r``."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def merged_streams(outputs: list[dict]) -> list[dict]:
    """Consecutive outputs of one stream (a progress bar's updates) as one output."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output["output_type"] == "stream"
            and previous is not None
            and previous["output_type"] == "stream"
            and previous["name"] == output["name"]
        ):
            previous["text"] = "".join(previous["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    return merged


def readable_parts(notebook: dict) -> list[tuple[str, dict]]:
    """(key, holder) of every output's text (streams, plain text, HTML), no images."""
    parts = []
    for output in (o for c in notebook["cells"] for o in c.get("outputs", [])):
        parts += [("text", output)] if "text" in output else []
        parts += [(k, output["data"]) for k in TEXT_KINDS if k in output.get("data", {})]
    return parts


def clean(notebook: dict, workdir: Path) -> dict:
    """The executed notebook, fit to commit (see the module's docstring)."""
    notebook["metadata"] = {k: v for k, v in notebook["metadata"].items() if k in KEPT_METADATA}
    notebook["metadata"].get("language_info", {}).pop("version", None)
    home = str(Path.home())
    for cell in notebook["cells"]:
        cell["metadata"] = {k: v for k, v in cell["metadata"].items() if k in KEPT_CELL_METADATA}
        if cell["cell_type"] != "code":
            continue
        if "launch(" in "".join(cell["source"]):  # the app: a page of this machine's
            cell["outputs"] = []
        cell["outputs"] = merged_streams(cell["outputs"])
        for output in cell["outputs"]:
            if output["output_type"] == "stream":
                output["text"] = screen_text("".join(output["text"]))
            output.get("metadata", {}).pop("papermill", None)
            output.pop("transient", None)
    for key, holder in readable_parts(notebook):  # not base64: a replace would break it
        text = "".join(holder[key])
        for absolute, relative in ((f"{workdir}/", ""), (str(workdir), "."), (home, "~")):
            text = text.replace(absolute, relative)
        leaked = [text[max(0, m.start() - 80) : m.end() + 40] for m in MACHINE_PATH.finditer(text)]
        if leaked:
            raise SystemExit(f"machine paths left in the outputs, e.g. {leaked[:3]}")
        holder[key] = text
    return notebook


def attach_goal_picture(notebook: dict, runs: Path) -> None:
    """The last epoch image of Part 1's final GAN (section 14) as the introduction's
    attachment."""
    (part1,) = runs.glob("part1-final-*")
    last = sorted(part1.glob("DCGAN_Images/image_at_epoch_*.png"))[-1]
    (intro,) = [c for c in notebook["cells"] if f"attachment:{ATTACHMENT}" in "".join(c["source"])]
    png = base64.b64encode(last.read_bytes()).decode("ascii")
    intro["attachments"] = {ATTACHMENT: {"image/png": png}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK)
    args = parser.parse_args()
    import nbformat
    import papermill

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    source = json.loads(args.notebook.read_text())
    with tempfile.TemporaryDirectory(prefix="notebook-run-") as tmp:
        workdir = Path(tmp).resolve()
        executed = workdir / "executed.ipynb"
        started = time.time()
        papermill.execute_notebook(
            str(args.notebook), str(executed), cwd=str(workdir), kernel_name="python3"
        )
        minutes = (time.time() - started) / 60
        notebook = clean(json.loads(executed.read_text()), workdir)
        attach_goal_picture(notebook, workdir / "runs")
    for cell, original in zip(notebook["cells"], source["cells"], strict=True):
        assert cell["source"] == original["source"], "papermill changed a cell's source"
    notebook["metadata"][METADATA_KEY] = {"code_sha256": code_digest(notebook)}
    nbformat.write(nbformat.from_dict(notebook), args.notebook)
    size = args.notebook.stat().st_size / 2**20
    print(f"{args.notebook.name}: outputs of a Run all in {minutes:.1f} minutes, {size:.2f} MiB")


if __name__ == "__main__":
    sys.exit(main())
