"""The notebook as a learner runs it in Google Colab, simulated here: a fresh virtual
environment without gan_mnist, a stand-in `google.colab` whose `drive.mount` refuses
a mount point that already holds files (as Colab's does), and Keras' MNIST download
answered from a local copy (Keras checks a fixed file hash that no offline copy has,
so the kernel's `get_file` is stubbed).

- REPO left as the placeholder: Part 1, the tutorial's GAN, runs to its end with
  nothing but what Colab has, and the first Part-2 cell stops "Run all" with one
  sentence saying what to set.
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
from papermill.exceptions import PapermillExecutionError

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


def test_part_1_runs_in_a_bare_colab_and_part_2_says_what_to_set(
    tmp_path, monkeypatch, real_data_cache
):
    content = colab_kernel(tmp_path, monkeypatch, real_data_cache)
    executed = tmp_path / "colab.ipynb"

    with pytest.raises(PapermillExecutionError) as stopped:
        papermill.execute_notebook(
            str(NOTEBOOK),
            str(executed),
            cwd=str(content),
            kernel_name="python3",
            parameters={"PRESET": "smoke"},  # REPO stays "OWNER/gan-mnist"
            progress_bar=False,
        )
    assert stopped.value.ename == "StopHere"
    assert "set REPO in the parameters cell" in stopped.value.evalue

    notebook = nbformat.read(executed, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [(i, o) for i, c in enumerate(code) for o in c.outputs if o.output_type == "error"]
    ((where, error),) = errors
    assert error.traceback == [error.evalue]  # one sentence, no traceback
    assert "import gan_mnist" in code[where + 1].source  # Part 2's first use of it
    assert all(c.execution_count for c in code[: where + 1])
    assert not any(c.execution_count for c in code[where + 1 :])
    printed = "".join(o.get("text", "") for c in code for o in c.outputs if "text" in o)
    assert "(the test's local copy)" in printed  # Keras' own load_data was used
    (part1,) = (content / "runs").glob("part1-mnist-smoke-*")
    for name in (
        "DCGAN_Images/image_at_epoch_0002.png",
        "dcgan_animation.gif",
        "dcgan_images.zip",
        "training_checkpoints/ckpt-2.index",
    ):
        assert (part1 / name).exists(), name
    assert sorted(p.name for p in content.iterdir()) == ["runs"]


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
    assert list(runs.glob("part1-mnist-smoke-*/dcgan_animation.gif"))
    trained = [p for p in runs.iterdir() if (p / "dcgan_animation.gif").exists()]
    assert len(trained) >= 4  # Part 1, Part 1's networks again, the conditional run, yours
    python = tmp_path / "venv" / "bin" / "python"
    installed = subprocess.run(
        [python, "-c", "import gan_mnist; print(gan_mnist.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert str(tmp_path / "venv") in installed.stdout  # installed by the notebook
