"""GAN_MNIST_Notebook.ipynb: clean as committed, importing (not copying) the package,
and executed end to end by a real Jupyter kernel on the smoke preset."""

import ast
import importlib
import json
import pkgutil
import sys

import nbformat
import pytest

import gan_mnist
from tests.conftest import REPO

NOTEBOOK = REPO / "GAN_MNIST_Notebook.ipynb"


def code_cells():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return [c for c in notebook.cells if c.cell_type == "code"]


def package_exports() -> set[str]:
    names = set()
    for module in pkgutil.walk_packages(gan_mnist.__path__, "gan_mnist."):
        if module.name.endswith("__main__"):
            continue
        loaded = importlib.import_module(module.name)
        names |= {
            n
            for n, v in vars(loaded).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == loaded.__name__
        }
    return names


def test_notebook_is_committed_without_outputs_and_with_clean_metadata():
    raw = json.loads(NOTEBOOK.read_text())
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
        assert set(cell["metadata"]) <= {"tags"}, cell["metadata"]
    assert set(raw["metadata"]) <= {"kernelspec", "language_info", "accelerator", "colab"}
    assert "widgets" not in json.dumps(raw["metadata"])


def test_exactly_one_parameters_cell_with_the_documented_names():
    tagged = [c for c in code_cells() if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assigned = {
        t.id for node in ast.parse(tagged[0].source).body for t in getattr(node, "targets", [])
    }
    assert {"PRESET", "EPOCHS", "OUTPUT_DIR", "DATASET"} <= assigned


def test_notebook_defines_nothing_the_package_exports():
    exports = package_exports()
    assert {"build_generator", "make_train_step", "train"} <= exports  # the check sees them
    defined = set()
    for cell in code_cells():
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
    assert not defined & exports, f"the notebook redefines {sorted(defined & exports)}"


def private_kernel(tmp_path, monkeypatch, python=sys.executable) -> None:
    """Run notebooks on ``python`` (whatever "python3" kernels the machine has
    registered): a kernelspec in a private JUPYTER_PATH, which is searched first."""
    kernel_dir = tmp_path / "jupyter" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (gan_mnist tests)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def test_notebook_runs_end_to_end_on_the_smoke_preset(tmp_path, monkeypatch, real_data_cache):
    papermill = pytest.importorskip("papermill")
    # The real MNIST, fetched by the offline path into a private cache.
    monkeypatch.setenv("GAN_MNIST_CACHE", str(real_data_cache))
    private_kernel(tmp_path, monkeypatch)
    out_dir = tmp_path / "T"
    executed = tmp_path / "out.ipynb"

    papermill.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        cwd=str(REPO),
        kernel_name="python3",
        parameters={"PRESET": "smoke", "EPOCHS": 2, "OUTPUT_DIR": str(out_dir)},
        progress_bar=False,
    )

    notebook = nbformat.read(executed, as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 5  # real digits, untrained sample, live preview, montage, losses, ...
    assert any("data:image/gif;base64" in o.get("data", {}).get("text/html", "") for o in outputs)
    for name in (
        "DCGAN_Images/image_at_epoch_0001.png",
        "DCGAN_Images/image_at_epoch_0002.png",
        "dcgan_animation.gif",
        "dcgan_images.zip",
        "real_data.png",
        "new_digits.png",
    ):
        assert (out_dir / name).exists(), name
    assert not (out_dir / "DCGAN_Images/image_at_epoch_0003.png").exists()
    # "Your own generator": the notebook's network trained through the same train().
    mine = out_dir / "my_generator"
    assert (mine / "DCGAN_Images/image_at_epoch_0001.png").exists()
    assert json.loads((mine / "config.json").read_text())["architecture"]
    # "Ask for a digit": the conditional model trained, sampled and walked.
    for name in ("DCGAN_Images/image_at_epoch_0002.png", "chosen_digit.png", "walk.gif"):
        assert (out_dir / "conditional" / name).exists(), name
    # The step by hand starts near D's and G's "undecided" losses, 2 ln 2 and ln 2.
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    by_hand = printed.split("d_loss ", 1)[1].split()
    assert abs(float(by_hand[0]) - 1.386) < 0.15, by_hand
