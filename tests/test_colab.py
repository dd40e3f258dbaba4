"""The notebook as a learner runs it in Google Colab, simulated here: a fresh virtual
environment without gan_mnist, a stand-in `google.colab` whose `drive.mount` refuses
a mount point that already holds files (as Colab's does), REPO pointing at a clone of
this repository, and Drive chosen. The notebook must install the package, mount Drive
before writing anything, train, and run every cell to the end."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

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


def test_the_notebook_runs_as_in_colab_with_drive(tmp_path, monkeypatch, real_data_cache):
    papermill = pytest.importorskip("papermill")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    python = fresh_venv(tmp_path / "venv")
    assert subprocess.run([python, "-c", "import gan_mnist"], cwd=tmp_path).returncode != 0
    private_kernel(tmp_path, monkeypatch, python)
    monkeypatch.setenv("PYTHONPATH", str(STUB))  # `google.colab` is importable, as in Colab
    monkeypatch.setenv("GAN_MNIST_CACHE", str(real_data_cache))
    drive = tmp_path / "google-drive"
    monkeypatch.setenv("FAKE_DRIVE_BACKING", str(drive))
    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    executed = tmp_path / "colab.ipynb"

    papermill.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        cwd=str(content),
        kernel_name="python3",
        parameters={
            "REPO": f"file://{clone}",
            "PRESET": "smoke",
            "EPOCHS": 1,
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
    trained = [p for p in runs.iterdir() if (p / "dcgan_animation.gif").exists()]
    assert len(trained) >= 3  # the run, the conditional run, your own generator's run
    installed = subprocess.run(
        [python, "-c", "import gan_mnist; print(gan_mnist.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert str(tmp_path / "venv") in installed.stdout  # installed by the notebook
