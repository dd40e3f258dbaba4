"""GAN_MNIST_Notebook.ipynb: clean as committed, its lesson (Part 1) equal to the
package's dcgan, and executed end to end by a real Jupyter kernel on the smoke preset."""

import ast
import json
import re
import sys

import keras
import nbformat
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO

NOTEBOOK = REPO / "GAN_MNIST_Notebook.ipynb"


def code_cells():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return [c for c in notebook.cells if c.cell_type == "code"]


def test_the_committed_outputs_come_from_todays_cells_and_clean_metadata():
    from tools.notebook_outputs import (
        ATTACHMENT,
        KEPT_METADATA,
        MACHINE_PATH,
        code_digest,
        readable_parts,
    )

    text = NOTEBOOK.read_text()
    raw = json.loads(text)
    # `make notebook` recorded the digest of the code that made the outputs; any edit
    # of a code cell since then needs the outputs made again.
    assert raw["metadata"]["gan_mnist"]["code_sha256"] == code_digest(raw), "run make notebook"
    for cell in raw["cells"]:
        assert set(cell["metadata"]) <= {"tags"}, cell["metadata"]
    assert set(raw["metadata"]) <= set(KEPT_METADATA)
    assert "widgets" not in json.dumps(raw["metadata"])
    readable = ["".join(holder[key]) for key, holder in readable_parts(raw)]
    assert not [t for t in readable if MACHINE_PATH.search(t)]  # no path of this machine
    assert "papermill" not in json.dumps(raw["metadata"])
    assert len(text.encode()) < 3 * 2**20
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    ran = [c for c in code if "launch(" not in "".join(c["source"])]  # the app's is dropped
    assert all(c["execution_count"] for c in ran)
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]

    def outputs_of(needle):
        (cell,) = [c for c in code if needle in "".join(c["source"])]
        return json.dumps(cell["outputs"], ensure_ascii=False)

    (intro,) = [c for c in raw["cells"] if f"attachment:{ATTACHMENT}" in "".join(c["source"])]
    assert intro["attachments"][ATTACHMENT]["image/png"]  # what you will build
    assert "image/png" in outputs_of("train(train_dataset, EPOCHS)")  # the last epoch's grid
    assert "image/png" in outputs_of('label="discriminator"')  # the losses over epochs
    assert "data:image/gif;base64" in outputs_of("embed.embed_file(anim_file)")
    assert "Fréchet distance" in outputs_of("print(format_table(quality))")


def test_exactly_one_parameters_cell_with_the_documented_names():
    tagged = [c for c in code_cells() if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assigned = {
        t.id for node in ast.parse(tagged[0].source).body for t in getattr(node, "targets", [])
    }
    documented = {"PRESET", "EPOCHS", "OUTPUT_DIR", "DATASET", "USE_DRIVE", "REPO"}
    assert documented | {"PART2_EPOCHS", "SHARE"} <= assigned


def lesson(*names: str) -> dict:
    """Part 1's definitions of ``names`` (functions and assignments, wherever they
    are in the notebook), run in a fresh namespace; the cells' other lines are not."""
    namespace = {"keras": keras, "layers": keras.layers, "tf": tf}
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell  # `%pip ...` lines into Python
    for cell in code_cells():
        for node in ast.parse(python(cell.source)).body:
            if isinstance(node, ast.FunctionDef):
                defined = {node.name}
            elif isinstance(node, ast.Assign):
                defined = {getattr(t, "id", None) for t in node.targets}
            else:
                continue
            if defined & set(names):
                exec(compile(ast.Module([node], []), "notebook", "exec"), namespace)
    missing = set(names) - set(namespace)
    assert not missing, f"no notebook cell defines {missing}"
    return namespace


@pytest.mark.parametrize("width", [8, 64])
def test_the_lessons_networks_are_the_packages_dcgan(width):
    from gan_mnist.models import dcgan

    taught = lesson("make_generator_model", "make_discriminator_model")
    pairs = [
        (taught["make_generator_model"](width, 100), dcgan.build_generator(100, width)),
        (taught["make_discriminator_model"](width, 0.3), dcgan.build_discriminator(width, 0.3)),
    ]
    for notebook_model, package_model in pairs:
        describe = [
            (type(layer).__name__, layer.output.shape, layer.count_params())
            for layer in notebook_model.layers
        ]
        assert describe == [
            (type(layer).__name__, layer.output.shape, layer.count_params())
            for layer in package_model.layers
        ]
        # And the layers' settings (activations, strides, slopes, rates) match too.
        for ours, theirs in zip(notebook_model.layers, package_model.layers, strict=True):
            config, other = ours.get_config(), theirs.get_config()
            for key in ("name", "dtype", "seed"):
                config.pop(key, None), other.pop(key, None)
            assert config == other, (ours.name, theirs.name)
    if width == 64:  # the tutorial's sizes
        assert pairs[0][0].count_params() == 2_330_944 and pairs[1][0].count_params() == 212_865


def test_the_lessons_losses_are_the_packages_nonsaturating_loss():
    from gan_mnist.losses import LOSSES

    taught = lesson("discriminator_loss", "generator_loss", "cross_entropy")
    rng = np.random.default_rng(0)
    real, fake = (tf.constant(rng.normal(0, 3, (64, 1)), tf.float32) for _ in range(2))
    package = LOSSES["nonsaturating"]
    np.testing.assert_allclose(
        float(taught["discriminator_loss"](real, fake)),
        float(tf.reduce_mean(package.discriminator(real, fake))),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        float(taught["generator_loss"](fake)),
        float(tf.reduce_mean(package.generator(fake))),
        rtol=1e-5,
    )


def test_the_lessons_presets_are_the_packages():
    from gan_mnist.config import make_config

    presets = lesson("PRESETS")["PRESETS"]
    assert {"tutorial", "demo", "smoke"} <= set(presets)
    for name, settings in presets.items():
        config = make_config(name, model="dcgan")  # Part 1 teaches the tutorial's networks
        assert {k: getattr(config, k) for k in settings} == settings, name


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
        parameters={"PRESET": "smoke", "OUTPUT_DIR": str(out_dir), "EVAL_SAMPLES": 200},
        progress_bar=False,
    )

    notebook = nbformat.read(executed, as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 10  # real digits, untrained sample, epochs, diagrams, previews, ...
    assert any("data:image/gif;base64" in o.get("data", {}).get("text/html", "") for o in outputs)
    # Part 1, the tutorial's loop, in its own folder: smoke's 2 epochs, and no more.
    (part1,) = out_dir.glob("part1-mnist-smoke-*")
    for name in (
        "DCGAN_Images/image_at_epoch_0001.png",
        "DCGAN_Images/image_at_epoch_0002.png",
        "dcgan_animation.gif",
        "dcgan_images.zip",
        "training_checkpoints/ckpt-2.index",
        "losses.csv",
    ):
        assert (part1 / name).exists(), name
    assert not (part1 / "DCGAN_Images/image_at_epoch_0003.png").exists()
    assert (out_dir / "Generator_Model.png").exists() and (
        out_dir / "Discriminator_Model.png"
    ).exists()
    # Part 2: Part 1's networks, the InfoGAN paper's, the conditional model, your own
    # generator and the exercises, each trained by the package into a folder named
    # from its settings.
    runs = {p.name: p for p in out_dir.iterdir() if (p / "config.json").exists()}
    fingerprinted = [
        n for n in runs if json.loads((runs[n] / "config.json").read_text())["architecture"]
    ]
    assert len(fingerprinted) == 2  # Part 1's networks and your own generator
    (conditional,) = [n for n in runs if n.startswith("cdcgan-")]
    assert (runs[conditional] / "walk.gif").exists()
    assert any(n.startswith("infogan-nets-") for n in runs)  # section 16's networks
    assert any(n.startswith("mlp-") for n in runs) and any("-b256-" in n for n in runs)
    assert len(runs) == 2 + 1 + 1 + 6  # and the exercises: the preset, then 5 changes
    # The step by hand starts near D's and G's "undecided" losses, 2 ln 2 and ln 2.
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    by_hand = printed.split("d_loss ", 1)[1].split()
    assert abs(float(by_hand[0]) - 1.386) < 0.15, by_hand
    assert "5. the dense GAN (mlp)" in printed


def section(text: str, heading: str) -> str:
    """The words of a markdown section, from ``heading`` to the next of its level."""
    level = heading.split(" ", 1)[0]
    return " ".join(text.split(heading + "\n", 1)[1].split(f"\n{level} ", 1)[0].split())


def test_the_readme_the_notebook_and_the_results_page_quote_the_same_figures():
    # A figure lives on docs/results.md; the README and the notebook may quote a
    # headline one only as the page does.
    intro = " ".join(nbformat.read(NOTEBOOK, as_version=4).cells[0].source.split())
    readme = (REPO / "README.md").read_text()
    about_notebook = section(readme, "## The notebook")
    results = (REPO / "docs" / "results.md").read_text()
    on_the_page = section(results, "## The two commands and the notebook")
    for pattern in (
        r"Part 1 [^.]*?about (\d+) minutes",
        r"\"Run all\"[^.]*?about (\d+) minutes",
        r"PRESET = \"tutorial\"`[^.]*?(\d+) s an epoch",
    ):
        quoted = re.findall(pattern, intro)
        assert quoted, f"the notebook's introduction no longer quotes {pattern}"
        assert quoted == re.findall(pattern, about_notebook), pattern
        assert quoted[:1] == re.findall(pattern, on_the_page)[:1], pattern
    # The presets' headline times: in the README's preset table as on the page.
    headlines = section(results, "## The presets' evidence").split("**Headlines:**")[1]
    for preset in ("demo", "fast"):
        row = re.search(rf"\| `{preset}` \|[^\n]*about (\d+) minutes", readme)
        on_page = re.search(rf"`{preset}`: [^`]*?about (\d+) minutes of training", headlines)
        assert row and on_page and row[1] == on_page[1], preset
