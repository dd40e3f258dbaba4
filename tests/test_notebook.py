"""GAN_MNIST_Notebook.ipynb: clean as committed, its lesson (Part 1) equal to the
package's families (sections 1-12: dcgan; section 14: infogan-nets), and executed end to
end by a real Jupyter kernel on the smoke preset."""

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
        KEPT_CELL_METADATA,
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
        assert set(cell["metadata"]) <= set(KEPT_CELL_METADATA), cell["metadata"]
        # A helper cell opens collapsed in Colab and in Jupyter alike, under its title.
        source = "".join(cell["source"])
        helper = source.startswith("# @title ")
        assert helper == (cell["metadata"].get("cellView") == "form"), source[:80]
        assert helper == (cell["metadata"].get("jupyter") == {"source_hidden": True})
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
    assert "image/png" in outputs_of("train(manager, train_dataset, EPOCHS")  # the last grid
    assert "image/png" in outputs_of("train(final_manager, final_dataset")  # section 14's
    assert "image/png" in outputs_of("plot_losses(run_dir")  # the losses over epochs
    assert "image/png" in outputs_of("plot_the_game(axis, generator")  # D's verdicts
    assert "image/png" in outputs_of('"before: sections 1-12"')  # before and after
    assert "data:image/gif;base64" in outputs_of("embed.embed_file(write_gif(run_dir))")
    assert "Fréchet distance" in outputs_of("print(format_table(quality))")
    # No red line of TensorFlow's that the text would have to apologise for.
    stderr = [o for c in code for o in c["outputs"] if o.get("name") == "stderr"]
    assert not [o for o in stderr if re.search(r"^[EWF]\d{4} ", "".join(o["text"]), re.M)]


def test_exactly_one_parameters_cell_with_the_documented_names():
    tagged = [c for c in code_cells() if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assigned = {
        t.id for node in ast.parse(tagged[0].source).body for t in getattr(node, "targets", [])
    }
    documented = {"PRESET", "SEED", "DATASET", "USE_DRIVE", "DOWNLOAD_ZIP", "OUTPUT_DIR"}
    assert documented | {"REPO", "PART2_EPOCHS", "EVAL_SAMPLES", "DRIVE_MOUNT"} <= assigned


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


def assert_same_networks(notebook_model: keras.Model, package_model: keras.Model) -> None:
    """Layer by layer: the same types, output shapes, parameter counts and settings."""
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


@pytest.mark.parametrize("width", [8, 64])
def test_the_lessons_networks_are_the_packages_dcgan(width):
    from gan_mnist.models import dcgan

    taught = lesson("make_generator_model", "make_discriminator_model")
    generator = taught["make_generator_model"](width, 100)
    discriminator = taught["make_discriminator_model"](width, 0.3)
    assert_same_networks(generator, dcgan.build_generator(100, width))
    assert_same_networks(discriminator, dcgan.build_discriminator(width, 0.3))
    if width == 64:  # the tutorial's sizes
        assert generator.count_params() == 2_330_944 and discriminator.count_params() == 212_865


@pytest.mark.parametrize("width", [8, 32, 64])
def test_the_final_sections_networks_are_the_packages_infogan_nets(width):
    from gan_mnist.models import infogan_nets

    taught = lesson("make_infogan_generator", "make_infogan_discriminator")
    generator = taught["make_infogan_generator"](width, 62)
    discriminator = taught["make_infogan_discriminator"](width)
    assert_same_networks(generator, infogan_nets.build_generator(62, width))
    assert_same_networks(discriminator, infogan_nets.build_discriminator(width))
    if width == 64:  # the paper's sizes: 1024 units in each dense layer
        assert generator.layers[0].units == discriminator.layers[-4].units == 1024


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

    taught = lesson("PRESETS", "FINAL_PRESETS", "PACKAGE_PRESETS")
    presets, finals = taught["PRESETS"], taught["FINAL_PRESETS"]
    package = taught["PACKAGE_PRESETS"]
    assert set(presets) == set(finals) == set(package) == {"tutorial", "demo", "smoke"}
    for name, settings in presets.items():
        # Sections 1-12: the tutorial's networks with the package's recipe for them.
        config = make_config(name, model="dcgan")
        assert {k: getattr(config, k) for k in settings} == settings, name
    assert package["demo"] == "demo"  # section 14's default is `gan-mnist train --preset demo`
    for name, settings in finals.items():
        # Section 14 (and Part 2, which continues it): the package's preset it names.
        config = make_config(package[name], model="infogan-nets")
        expected = {k: getattr(config, k) for k in settings}
        if name == "smoke":  # the package's smoke run has no average; the lesson's always has
            expected["ema"] = settings["ema"]
        assert expected == settings, name


def test_part_2_draws_its_pictures_on_part_1s_noise_vectors(tmp_path):
    # Part 2 continues section 14's networks; its pictures compare with section 14's
    # only if the package draws the same 16 noise vectors for the same SEED.
    from gan_mnist.config import make_config
    from gan_mnist.state import TrainingState

    taught = lesson("fixed_noise", "SEED")
    for seed in (0, 42):
        taught["SEED"] = seed
        state = TrainingState(make_config("demo", seed=seed), tmp_path / str(seed))
        np.testing.assert_array_equal(taught["fixed_noise"](62).numpy(), state.fixed_noise.numpy())


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
    # Part 1: the tutorial's GAN and the final one, each in its own folder: smoke's 2
    # epochs, and no more.
    for half in ("tutorial", "final"):
        (part1,) = out_dir.glob(f"part1-{half}-mnist-smoke-*")
        for name in (
            "DCGAN_Images/image_at_epoch_0001.png",
            "DCGAN_Images/image_at_epoch_0002.png",
            "dcgan_animation.gif",
            "dcgan_images.zip",
            "training_checkpoints/ckpt-2.index",
            "losses.csv",
        ):
            assert (part1 / name).exists(), (half, name)
        assert not (part1 / "DCGAN_Images/image_at_epoch_0003.png").exists()
    # The final generator, saved as one file: it loads alone and draws digits.
    loaded = keras.models.load_model(part1 / "generator.keras")
    assert loaded(np.zeros((3, 62), "float32")).shape == (3, 28, 28, 1)
    assert (out_dir / "Generator_Model.png").exists() and (
        out_dir / "Discriminator_Model.png"
    ).exists()
    # Part 2: section 14's networks trained on by the package, and the conditional
    # model, each in a folder named from its settings.
    runs = {p.name: p for p in out_dir.iterdir() if (p / "config.json").exists()}
    assert len(runs) == 2, sorted(runs)
    (continued,) = [n for n in runs if n.startswith("infogan-nets-")]
    assert json.loads((runs[continued] / "config.json").read_text())["architecture"]
    assert any(n.startswith("cdcgan-") for n in runs)
    # The step by hand starts near D's and G's "undecided" losses, 2 ln 2 and ln 2.
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    by_hand = printed.split("d_loss ", 1)[1].split()
    assert abs(float(by_hand[0]) - 1.386) < 0.15, by_hand
    assert "section 15's run, after 2 more epochs:" in printed
    assert printed.count("Fréchet distance") >= 3  # Part 1's two generators, and section 15's


def section(text: str, heading: str) -> str:
    """The words of a markdown section, from ``heading`` to the next of its level."""
    level = heading.split(" ", 1)[0]
    return " ".join(text.split(heading + "\n", 1)[1].split(f"\n{level} ", 1)[0].split())


def test_the_readme_the_notebook_and_the_results_page_quote_the_same_figures():
    # A figure lives on docs/results.md; the README and the notebook may quote a
    # headline one only as the page does.
    parameters = " ".join(nbformat.read(NOTEBOOK, as_version=4).cells[1].source.split())
    readme = (REPO / "README.md").read_text()
    about_notebook = section(readme, "## The notebook")
    results = (REPO / "docs" / "results.md").read_text()
    on_the_page = section(results, "## The two commands and the notebook")
    for pattern in (
        r"Part 1's training[^.|]*?about (\d+) minutes",
        r"\"Run all\"[^.|]*?about (\d+) minutes",
    ):
        quoted = re.findall(pattern, parameters)
        assert quoted, f"the notebook's parameters no longer quote {pattern}"
        assert quoted == re.findall(pattern, about_notebook), pattern
        assert quoted[:1] == re.findall(pattern, on_the_page)[:1], pattern
    # The presets' headline times: in the README's preset table as on the page.
    headlines = section(results, "## The presets' evidence").split("**Headlines:**")[1]
    for preset in ("demo", "fast"):
        row = re.search(rf"\| `{preset}` \|[^\n]*about (\d+) minutes", readme)
        on_page = re.search(rf"`{preset}`: [^`]*?about (\d+) minutes of training", headlines)
        assert row and on_page and row[1] == on_page[1], preset


# Figures in the notebook's words. A figure is a number with a decimal point, or one
# with a unit of time, a percentage or "times" after it. Each is printed by a cell
# beside it (then the words do not repeat it), is a setting in a code cell, or comes
# from the source that a comment in its cell names, ``<!-- figures: SOURCE ARGS -->``:
# - ``exercises GROUP...``: bench/results/exercises.jsonl, the rows of each GROUP
#   (``change/generator``) at PRESET demo; each group's Fréchet distance, as "mean ±
#   half-range", must stand in the cell.
# - ``lesson-speed KEY...``: the newest row of bench/results/lesson-speed.jsonl; each
#   KEY's value must stand in the cell (a ratio ``a_over_b`` also as b over a).
# - ``results``: the numbers of docs/results.md's section on the notebook.
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
UNIT = r"(?:[–-]\d[\d,]*(?:\.\d+)?)?\s?(?:s|seconds?|minutes?|min|hours?|h|%|times)\b"
FIGURE = re.compile(rf"(?<![\w.])(?:\d[\d,]*\.\d+|\d[\d,]*(?={UNIT}))")
MARK = re.compile(r"<!-- figures: (\S+)([^>]*?) -->")


def formatted(value) -> set[str]:
    """The ways a measured value may be written: 1 to 3 decimals, or whole."""
    if isinstance(value, int | np.integer):
        return {str(value), f"{value:,}"}
    return {f"{value:.{digits}f}" for digits in (1, 2, 3)} | {f"{round(value):,}"}


def exercise_figures(names: list[str]) -> tuple[set[str], list[str]]:
    sys.path.insert(0, str(REPO / "bench"))
    from exercises import METRICS, groups, mean_and_spread, read_rows

    rows = groups(read_rows())
    allowed, required = set(), []
    for name in names:
        change, generator = name.split("/")
        group = rows[(change, generator, "demo")]
        for key in METRICS:
            values = [row[key] for row in group]
            mean, spread = mean_and_spread(values)
            allowed |= formatted(mean) | formatted(spread)
            for value in values:
                allowed |= formatted(value)
        for row in group:
            for line in row["epoch_lines"] + row["trained_lines"]:
                for number in NUMBER.findall(line):
                    allowed |= {number} | formatted(float(number))
        mean, spread = mean_and_spread([row["frechet_distance"] for row in group])
        required.append(f"{mean:.1f} ± {spread:.1f}" if len(group) > 1 else f"{mean:.1f}")
    return allowed, required


def lesson_speed_figures(keys: list[str]) -> tuple[set[str], list[str]]:
    lines = (REPO / "bench" / "results" / "lesson-speed.jsonl").read_text().splitlines()
    row = json.loads(lines[-1])
    allowed = {f for value in row.values() if isinstance(value, float) for f in formatted(value)}
    required = []
    for key in keys:
        value = row[key] if key in row else 1 / row["_over_".join(key.split("_over_")[::-1])]
        allowed |= formatted(value)
        required.append(f"{value:.2f}")
    return allowed, required


def results_figures(_: list[str]) -> tuple[set[str], list[str]]:
    page = section(
        (REPO / "docs" / "results.md").read_text(), "## The two commands and the notebook"
    )
    return set(NUMBER.findall(page)), []


SOURCES = {
    "exercises": exercise_figures,
    "lesson-speed": lesson_speed_figures,
    "results": results_figures,
}


def figure_problems(notebook: dict) -> list[str]:
    """Each figure in the notebook's markdown that nothing vouches for, and each
    required figure of a named source that is missing."""
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    settings = set(NUMBER.findall(code))
    problems = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        allowed, required = set(settings), []
        for source, args in MARK.findall(text):
            numbers, needed = SOURCES[source](args.split())
            allowed |= numbers
            required += needed
        words = re.sub(r"https?://\S+", "", MARK.sub("", text))  # a link's numbers are its own
        problems += [f"{f!r} in {words[:50]!r}" for f in FIGURE.findall(words) if f not in allowed]
        problems += [f"missing {r!r} in {words[:50]!r}" for r in required if r not in words]
    return problems


def test_every_figure_in_the_notebooks_words_is_a_setting_or_checked_against_its_source():
    notebook = json.loads(NOTEBOOK.read_text())
    assert figure_problems(notebook) == []
    # The check can fail: each quoted distance of the exercises, changed by 0.1 in a
    # copy of the notebook, is caught.
    for number, cell in enumerate(notebook["cells"]):
        text = "".join(cell["source"])
        for quoted in re.findall(r"\d+\.\d ± \d+\.\d", text):
            mean = float(quoted.split()[0])
            broken = json.loads(json.dumps(notebook))
            broken["cells"][number]["source"] = text.replace(
                quoted, f"{mean + 0.1:.1f}" + quoted[len(quoted.split()[0]) :]
            )
            assert figure_problems(broken), quoted
