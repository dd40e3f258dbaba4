"""The notebook as a learner runs it in Google Colab, simulated here: a fresh virtual
environment without gan_mnist, a stand-in `google.colab` whose `drive.mount` refuses
a mount point that already holds files (as Colab's does), and Keras' MNIST download
answered from a local copy (Keras checks a fixed file hash that no offline copy has,
so the kernel's `get_file` is stubbed).

- REPO left as the placeholder: Part 1, the tutorial's GAN, runs to its end with
  nothing but what Colab has, and the first Part-2 cell stops "Run all" with one
  sentence saying what to set; in the same kernel, an unchanged rerun of the training
  cell continues, each edit (a loss, a layer setting, the step) trains a new run, and
  following the sentence reaches Part 2.
- REPO pointing at a clone of this repository and Drive chosen: the notebook mounts
  Drive before writing anything, installs the package, and runs every cell."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import papermill
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import REPO
from tests.test_notebook import NOTEBOOK, private_kernel

STUB = Path(__file__).with_name("colab_stub")


def fresh_venv(where: Path) -> Path:
    """A new venv that sees this one's packages (TensorFlow, ipykernel, ...) but not
    gan_mnist, so the notebook's install cell has to install it."""
    # No pip of its own: the shared one (recent, like Colab's) installs into it.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120
    )
    python = where / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    shared = where / "shared-packages"  # this venv's packages minus gan_mnist
    shared.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "gan_mnist" not in entry.name and not entry.name.endswith(".pth"):
            (shared / entry.name).symlink_to(entry)
    (site / "shared-packages.pth").write_text(str(shared) + "\n")
    return python


OFFLINE_DOWNLOAD = """
import os

import keras.src.datasets.mnist as mnist


def get_file(fname=None, origin=None, **kwargs):  # instead of the download
    assert fname == "mnist.npz", fname
    print("Downloading data from", origin, "(the test's local copy)")
    return os.environ["TEST_MNIST_NPZ"]


mnist.get_file = get_file
"""


def colab_kernel(tmp_path, monkeypatch, real_data_cache) -> Path:
    """A kernel as in Colab: a fresh venv without gan_mnist, `google.colab` importable,
    MNIST's download answered locally. Returns Colab's working folder."""
    python = fresh_venv(tmp_path / "venv")
    assert subprocess.run([python, "-c", "import gan_mnist"], cwd=tmp_path).returncode != 0
    private_kernel(tmp_path, monkeypatch, python)
    monkeypatch.setenv("PYTHONPATH", str(STUB))  # `google.colab` is importable, as in Colab
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-offline-mnist.py").write_text(OFFLINE_DOWNLOAD)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("TEST_MNIST_NPZ", str(real_data_cache / "mnist.npz"))
    monkeypatch.setenv("GAN_MNIST_CACHE", str(real_data_cache))
    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    return content


class Kernel:
    """One Jupyter kernel running the notebook's cells as a learner does: in order,
    again, or edited (nbclient, the engine under papermill)."""

    def __init__(self, client: NotebookClient):
        self.client = client
        self.cells = client.nb.cells

    def index(self, needle: str) -> int:
        """The one code cell whose source contains ``needle``."""
        (found,) = [
            i for i, c in enumerate(self.cells) if c.cell_type == "code" and needle in c.source
        ]
        return found

    def run(self, first: int, last: int) -> str:
        """Run code cells ``first``..``last`` (notebook indices); returns what they printed."""
        printed = []
        for i in range(first, last + 1):
            if self.cells[i].cell_type == "code":
                self.client.execute_cell(self.cells[i], i)
                printed += [o.get("text", "") for o in self.cells[i].outputs if "text" in o]
        return "".join(printed)

    def python(self, source: str) -> str:
        """Run ``source`` in the kernel as an extra cell; returns what it printed."""
        cell = nbformat.v4.new_code_cell(source)
        self.cells.append(cell)  # nbclient stores each result at its cell's index
        try:
            self.client.execute_cell(cell, len(self.cells) - 1)
        finally:
            self.cells.pop()
        return "".join(o.get("text", "") for o in cell.outputs if "text" in o)

    def edit(self, needle: str, old: str, new: str) -> int:
        """Change ``old`` to ``new`` (once) in the cell holding ``needle``; returns its index."""
        i = self.index(needle)
        assert self.cells[i].source.count(old) == 1, old
        self.cells[i].source = self.cells[i].source.replace(old, new)
        return i


def part1_runs(root: Path, half: str = "tutorial") -> dict[str, int]:
    """Part 1's run folders of ``half`` ("tutorial": sections 1-12, "final": section 14)
    under ``root`` and the newest checkpoint number of each."""
    runs = {}
    for run in root.glob(f"part1-{half}-mnist-smoke-*"):
        numbers = [int(p.name[5:-6]) for p in run.glob("training_checkpoints/ckpt-*.index")]
        runs[run.name] = max(numbers, default=0)
    return runs


WEIGHTS = "print(float(tf.reduce_sum(generator.trainable_variables[0])))"


def test_part_1_in_a_bare_colab_trains_every_edit_continues_a_rerun_and_stops_at_part_2(
    tmp_path, monkeypatch, real_data_cache
):
    content = colab_kernel(tmp_path, monkeypatch, real_data_cache)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source += '\nPRESET = "smoke"'  # REPO stays "OWNER/gan-mnist"
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(content)}}
    )
    with client.setup_kernel():
        kernel = Kernel(client)
        install = kernel.index("class StopHere")
        train = kernel.index("train(manager, train_dataset, EPOCHS")
        final_train = kernel.index("train(final_manager, final_dataset")

        # "Run all": Part 1 to its end, then the first Part-2 cell stops with one line.
        printed = kernel.run(0, install - 1)
        with pytest.raises(CellExecutionError) as stopped:
            kernel.run(install, install)
        assert stopped.value.ename == "StopHere"
        (error,) = [o for o in kernel.cells[install].outputs if o.output_type == "error"]
        assert error.traceback == [error.evalue]  # one line, no traceback
        assert "set REPO in the parameters cell" in error.evalue
        assert "run the parameters cell, then run this cell" in error.evalue
        assert "(the test's local copy)" in printed  # Keras' own load_data was used
        assert (
            "## What you built"
            in kernel.cells[install - 2].source + kernel.cells[install - 1].source
        )
        ((first, done),) = part1_runs(content / "runs").items()
        ((final, final_done),) = part1_runs(content / "runs", "final").items()
        assert done == final_done == 2
        for part1 in (content / "runs" / first, content / "runs" / final):
            for name in (
                "DCGAN_Images/image_at_epoch_0002.png",
                "dcgan_animation.gif",
                "dcgan_images.zip",
                "losses.csv",
            ):
                assert (part1 / name).exists(), name
            assert len((part1 / "losses.csv").read_text().split()) == 2
        # The final generator, saved as one .keras file, loads and draws 28x28 images.
        drawn = kernel.python(
            "print(keras.models.load_model(final_dir / 'generator.keras')(tf.zeros([2, 62])).shape)"
        )
        assert "(2, 28, 28, 1)" in drawn
        assert (content / "runs" / "Generator_Model.png").exists()
        assert sorted(p.name for p in content.iterdir()) == ["runs"]

        # The pictures' noise comes from SEED alone: the same after training, in this kernel.
        noise = "print(hashlib.sha256(fixed_noise(NOISE_DIM).numpy().tobytes()).hexdigest())"
        # The state every new run starts from: the untrained weights of the first build.
        untrained = kernel.python(f"checkpoint.restore(as_built)\n{WEIGHTS}")
        preview = kernel.python(noise)

        # An unchanged rerun continues the finished run and trains nothing.
        again = kernel.run(train, train)
        assert f"continuing after epoch 2 in runs/{first}" in again
        assert "trained to epoch 2 of 2" in again and "epoch 1/2" not in again
        assert part1_runs(content / "runs") == {first: 2}
        # After the stop button (weights in memory changed mid-epoch), the rerun
        # starts from the latest checkpoint, not from memory.
        trained = kernel.python(WEIGHTS)
        kernel.python(
            "generator.trainable_variables[0].assign_add(tf.ones_like(generator.trainable_variables[0]))"
        )
        assert kernel.python(WEIGHTS) != trained
        kernel.run(train, train)
        assert kernel.python(WEIGHTS) == trained
        # The step by hand is a trial on the weights as built: training after it starts
        # from the run's checkpoint again, as if it had not been taken.
        by_hand = kernel.index("first_batch = next(iter(train_dataset))")
        assert "d_loss" in kernel.run(by_hand, by_hand)
        kernel.run(train, train)
        assert kernel.python(WEIGHTS) == trained

        # Each edit - a loss, a layer setting, the step - trains a new run from scratch.
        edits = [
            (
                "def discriminator_loss",
                "tf.ones_like(real_output)",
                "0.9 * tf.ones_like(real_output)",
            ),
            (
                "def make_train_step",
                "noise = tf.random.normal([tf.shape(images)[0], noise_dim])",
                "noise = tf.random.uniform([tf.shape(images)[0], noise_dim], -1, 1)",
            ),
            (
                "def make_generator_model",
                "layers.LeakyReLU(negative_slope=0.3),\n            layers.Reshape",
                "layers.LeakyReLU(negative_slope=0.2),\n            layers.Reshape",
            ),  # last: it rebuilds G
        ]
        seen = {first}
        for needle, old, new in edits:
            edited = kernel.edit(needle, old, new)
            printed = kernel.run(edited, train)
            assert "a new run in runs/part1-tutorial-mnist-smoke-" in printed, (
                needle,
                printed[-500:],
            )
            (name,) = set(part1_runs(content / "runs")) - seen
            seen.add(name)
            assert f"a new run in runs/{name}" in printed and "epoch 2/2" in printed
            rows = (content / "runs" / name / "losses.csv").read_text().split()
            assert [r.split(",")[0] for r in rows] == ["1", "2"]  # trained from epoch 1
            # ... from untrained weights: the first build's where the edit rebuilt no
            # network, else the new build's (never the weights an earlier run trained).
            start = kernel.python(f"checkpoint.restore(as_built)\n{WEIGHTS}")
            assert (start == untrained) != (needle == "def make_generator_model"), needle
            assert start != trained
            kernel.edit(needle, new, old)
        runs = part1_runs(content / "runs")
        assert len(runs) == 1 + len(edits) and set(runs.values()) == {2}, runs
        # Undone, the rebuilt networks (new layer names) are the first run again.
        printed = kernel.run(kernel.index("def make_generator_model"), train)
        assert f"continuing after epoch 2 in runs/{first}" in printed
        assert part1_runs(content / "runs") == runs

        # An edited network cell run alone, without the cells below it: the training cell
        # says so, and trains nothing under a name that is not what it would train.
        edited = kernel.edit(
            "def make_generator_model",
            "negative_slope=0.3),\n            layers.Reshape",
            "negative_slope=0.2),\n            layers.Reshape",
        )
        kernel.run(edited, edited)
        with pytest.raises(CellExecutionError, match="not the one the checkpoint holds"):
            kernel.run(train, train)
        assert part1_runs(content / "runs") == runs
        kernel.edit(
            "def make_generator_model",
            "negative_slope=0.2),\n            layers.Reshape",
            "negative_slope=0.3),\n            layers.Reshape",
        )
        assert f"continuing after epoch 2 in runs/{first}" in kernel.run(edited, train)

        # Section 14 likewise: an unchanged rerun continues the final run (the averaged
        # generator with it), an edit of the average trains a new one, undone continues.
        again = kernel.run(final_train, final_train)
        assert f"continuing after epoch 2 in runs/{final}" in again and "epoch 1/2" not in again
        edited = kernel.edit("def update_average", "(1 - d) * trained", "(1 - d) * trained * 1.0")
        printed = kernel.run(edited, final_train)
        assert "a new run in runs/part1-final-mnist-smoke-" in printed and "epoch 2/2" in printed
        assert len(part1_runs(content / "runs", "final")) == 2
        # ... from fresh optimizers too: no step count (the average's decay starts again)
        # and no running means from the run before.
        fresh = "final_checkpoint.restore(final_as_built)\n"
        fresh += "print(int(final_generator_optimizer.iterations))"
        assert kernel.python(fresh).strip() == "0"
        kernel.edit("def update_average", "(1 - d) * trained * 1.0", "(1 - d) * trained")
        printed = kernel.run(edited, final_train)
        assert f"continuing after epoch 2 in runs/{final}" in printed

        # Following the message reaches Part 2: set REPO, run the parameters cell,
        # then the install cell and the next one.
        parameters.source += f'\nREPO = "file://{clone}"'
        kernel.run(kernel.cells.index(parameters), kernel.cells.index(parameters))
        kernel.run(install, install + 1)
        assert "gan_mnist" in "".join(
            o.get("text", "") for o in kernel.cells[install + 1].outputs if "text" in o
        )

    # A second kernel draws the same 16 preview vectors (the parameters, setup,
    # presets and training cells' definitions are all it needs).
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source += '\nPRESET = "smoke"'
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(content)}}
    )
    with client.setup_kernel():
        other = Kernel(client)
        other.run(other.cells.index(parameters), other.cells.index(parameters))
        for needle in ["def open_run", "import glob", "settings = PRESETS", "def fixed_noise"]:
            other.run(other.index(needle), other.index(needle))
        assert other.python(noise) == preview


def test_the_notebook_runs_as_in_colab_with_drive(tmp_path, monkeypatch, real_data_cache):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    content = colab_kernel(tmp_path, monkeypatch, real_data_cache)
    drive = tmp_path / "google-drive"
    monkeypatch.setenv("FAKE_DRIVE_BACKING", str(drive))
    executed = tmp_path / "colab.ipynb"

    papermill.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        cwd=str(content),
        kernel_name="python3",
        parameters={
            "REPO": f"file://{clone}",
            "PRESET": "smoke",
            "PART2_EPOCHS": 1,
            "EVAL_SAMPLES": 200,
            "USE_DRIVE": True,
            "DRIVE_MOUNT": str(content / "drive"),
        },
        progress_bar=False,
    )

    notebook = nbformat.read(executed, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert os.listdir(content) == ["drive"]  # nothing written before Drive was mounted
    runs = drive / "MyDrive" / "gan_mnist"
    assert list(runs.glob("part1-final-mnist-smoke-*/generator.keras"))
    trained = [p for p in runs.iterdir() if (p / "dcgan_animation.gif").exists()]
    assert len(trained) >= 4  # Part 1's two runs, section 15's, the conditional run
    python = tmp_path / "venv" / "bin" / "python"
    installed = subprocess.run(
        [python, "-c", "import gan_mnist; print(gan_mnist.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert str(tmp_path / "venv") in installed.stdout  # installed by the notebook
