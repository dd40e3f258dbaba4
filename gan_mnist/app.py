"""`gan-mnist app`: a small web page to play with trained generators (Gradio).

Gradio is the library made for ML demo pages: it serves a local page from Python
callbacks and shows inline in Jupyter and Colab. It is optional (the ``app``
extra); nothing else in the package imports it.

The functions above `build_page` are what the page calls and what the tests
check: each returns uint8 images and never writes into a run folder. A run's
generator (the averaged one where the run has one) is loaded once, when the app
starts or when "Reload" is pressed, not per request.
"""

from __future__ import annotations

import atexit
import collections
import json
import os
import shlex
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from gan_mnist import artifacts, files
from gan_mnist.errors import UserError
from gan_mnist.files import METRICS_NAME
from gan_mnist.metrics import summary

GRID_IMAGES = 64  # a "new batch": the same images as `gan-mnist sample --n 64 --seed S`
WALKS = 8  # images side by side in a latent walk
SHOWN_SCALE = 4  # pixels per MNIST pixel on the page
KEPT_BATCHES = 8  # the newest batches whose downloads stay on disk while the app runs
INSTALL_HINT = "pip install 'gan-mnist[app]' (in a clone: pip install -e '.[app]'; it adds Gradio)"


@dataclass
class LoadedRun:
    """One run's generator, loaded once, with what the page says about it."""

    run_dir: Path
    models: object  # GanModels
    config: object  # TrainConfig
    source: str  # the checkpoint or file the generator came from
    metrics: dict | None  # metrics.json of `gan-mnist evaluate`, if present

    @property
    def name(self) -> str:
        return str(self.run_dir)

    @property
    def conditional(self) -> bool:
        return self.models.conditional

    @property
    def class_names(self) -> list[str]:
        return list(self.config.classes)


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load a run's generator (its newest intact checkpoint, else generator.keras).

    Raises:
        UserError: no run there, or nothing intact to load.
    """
    from gan_mnist.checkpoint_files import load_generator

    run_dir = Path(run_dir)
    models, config, source = load_generator(run_dir)
    metrics = None
    if (run_dir / METRICS_NAME).exists():
        try:
            metrics = json.loads((run_dir / METRICS_NAME).read_text())
        except ValueError:
            metrics = None  # a damaged metrics file only loses the page's metrics line
    return LoadedRun(run_dir, models, config, source, metrics)


def describe(run: LoadedRun) -> str:
    """The run's summary for the page (Markdown): its settings, source and metrics."""
    c = run.config
    lines = [
        f"**{run.run_dir.name}**: `{c.model}` on `{c.dataset}`, "
        f"width {c.base_filters}, batch {c.batch_size}, {c.epochs} epochs, loss `{c.loss}`, "
        f"seed {c.seed}" + (f", averaged generator (ema {c.ema})" if c.ema else ""),
        f"generator loaded from `{run.source}`",
    ]
    scores = (run.metrics or {}).get("generated")
    if scores:
        named = summary(scores, words="name", sep=", ")
        lines.append(f"evaluation (n = {run.metrics.get('n')}): {named}")
    else:
        lines.append(f"not evaluated yet (`gan-mnist evaluate {run.run_dir}` adds metrics)")
    return "\n\n".join(lines)


def new_batch(
    run: LoadedRun, seed: int, label: int | None = None, n: int = GRID_IMAGES
) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` new images (and classes) from ``seed``: exactly `gan-mnist sample --n N
    --seed S [--class NAME]` of the same run."""
    from gan_mnist.sampling import sample

    if label is not None and not run.conditional:
        raise UserError(f"this run ({run.config.model}) cannot be asked for a class")
    return sample(run.models, n, int(seed), label=label)


def class_rows(run: LoadedRun, seed: int, columns: int = 8) -> np.ndarray:
    """A conditional run's "every class" grid: 10 rows (classes) x ``columns`` noise
    vectors drawn from ``seed``, (10 * columns, 28, 28) uint8."""
    import tensorflow as tf

    if not run.conditional:
        raise UserError(f"this run ({run.config.model}) has no classes to lay out")
    noise = tf.random.Generator.from_seed(int(seed)).normal([columns, run.models.noise_dim])
    latents, labels = run.models.preview_latents(noise)
    return run.models.to_uint8(run.models.generate(latents, labels))


def walk_endpoints(run: LoadedRun, seed: int, walks: int = WALKS) -> np.ndarray:
    """The two noise vectors of each of ``walks`` walks, (2, walks, noise_dim)."""
    rng = np.random.default_rng(int(seed))
    return rng.standard_normal((2, walks, run.models.noise_dim)).astype(np.float32)


def noise_walk_frame(
    run: LoadedRun, seed: int, t: float, label: int | None = None, walks: int = WALKS
) -> np.ndarray:
    """The images a fraction ``t`` (0..1) of the way along ``walks`` spherical walks
    between two noise vectors drawn from ``seed``; conditional runs draw ``label``
    (default: classes 0, 1, 2, ... one per walk). (walks, 28, 28) uint8."""
    from gan_mnist.sampling import slerp

    start, end = walk_endpoints(run, seed, walks)
    noise = slerp(start, end, float(t))
    labels = None
    if run.conditional:
        classes = run.models.num_classes
        labels = np.full(walks, label) if label is not None else np.arange(walks) % classes
    return run.models.to_uint8(run.models.generate(noise, labels))


def class_walk_frame(
    run: LoadedRun, seed: int, t: float, start: int, end: int, walks: int = WALKS
) -> np.ndarray:
    """A conditional run at fixed noise, its class input a fraction ``t`` of the way
    from class ``start`` to class ``end``. (walks, 28, 28) uint8."""
    if not run.conditional:
        raise UserError(f"this run ({run.config.model}) has no classes to walk between")
    noise = walk_endpoints(run, seed, walks)[0]
    eye = np.eye(run.models.num_classes, dtype=np.float32)
    mixture = (1 - float(t)) * eye[int(start)] + float(t) * eye[int(end)]
    return run.models.to_uint8(run.models.generate(noise, np.tile(mixture, (walks, 1))))


def picture(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Images tiled into one uint8 picture, as the page shows it."""
    return artifacts.image_grid(images, columns, scale=SHOWN_SCALE)


def write_downloads(
    images: np.ndarray, labels: np.ndarray | None, stem: str, folder: Path
) -> tuple[Path, Path]:
    """The shown grid as PNG and the samples as `.npz` (the format of `gan-mnist
    sample`: ``images``, and ``labels`` for conditional runs) in ``folder`` (the
    app's own temporary folder, never a run folder)."""
    png, npz = folder / f"{stem}.png", folder / f"{stem}.npz"
    artifacts.save_grid(images, png)
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
    with files.atomic_path(npz) as tmp:
        np.savez_compressed(tmp, **arrays)
    return png, npz


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something else listens on, before Gradio starts."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UserError(
                f"cannot serve on {host}:{port} ({error.strerror or error}): another "
                "program uses that port. Pick another with --port, or stop that program."
            ) from None


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# Gradio sends usage analytics to its makers (and checks for a newer version) unless
# this is "False": off here unless the user set it, so the page calls no one.
ANALYTICS_ENV = "GRADIO_ANALYTICS_ENABLED"


def import_gradio():
    os.environ.setdefault(ANALYTICS_ENV, "False")  # read by Gradio as it runs
    try:
        import gradio
    except ImportError:
        raise UserError(
            f"`gan-mnist app` needs Gradio, which is not installed: {INSTALL_HINT}."
        ) from None
    return gradio


class Callbacks:
    """What the page's controls call: one method per event, on the loaded runs.

    Each returns the new values of the outputs it is wired to in `build_page`.
    """

    def __init__(self, gr, runs: dict[str, LoadedRun], downloads: Path):
        self.gr, self.runs, self.downloads = gr, runs, downloads
        self.batches: collections.deque[Path] = collections.deque()
        # The app's temporary folder goes when the process ends, however often the
        # page asked for a batch; meanwhile only the newest batches' files are kept.
        atexit.register(shutil.rmtree, downloads, ignore_errors=True)

    def batch_folder(self) -> Path:
        """A new folder for one batch's downloads (two requests never write the same
        file); the oldest goes once `KEPT_BATCHES` are kept."""
        folder = Path(tempfile.mkdtemp(dir=self.downloads))
        self.batches.append(folder)
        while len(self.batches) > KEPT_BATCHES:
            shutil.rmtree(self.batches.popleft(), ignore_errors=True)
        return folder

    def friendly(self, function):
        """Errors become one message on the page (a Gradio alert), never a traceback."""
        gr = self.gr

        def call(*args):
            try:
                return function(*args)
            except UserError as error:
                raise gr.Error(str(error)) from None
            except Exception as error:  # noqa: BLE001 - the page shows a message instead
                raise gr.Error(f"{type(error).__name__}: {error}") from None

        return call

    def class_choices(self, name, first="any"):
        """A class dropdown's choices: "any" and the classes (digits, or "7 Sneaker")."""
        run = self.runs[name]
        if not run.conditional:  # hidden: an unconditional run has no classes to pick
            return self.gr.update(choices=["any"], value="any", interactive=False, visible=False)
        labels = [
            f"{i}" if run.config.dataset == "mnist" else f"{i} {n}"
            for i, n in enumerate(run.class_names)
        ]
        choices = labels if first is None else [first, *labels]
        return self.gr.update(choices=choices, value=choices[0], interactive=True, visible=True)

    @staticmethod
    def chosen(value):
        return None if value in (None, "any") else int(str(value).split()[0])

    def show_batch(self, name, seed, digit):
        run = self.runs[name]
        label = self.chosen(digit)
        images, labels = new_batch(run, seed, label)
        stem = f"samples_seed{int(seed)}" + ("" if label is None else f"_class{label}")
        png, npz = write_downloads(images, labels, stem, self.batch_folder())
        command = f"gan-mnist sample {run.run_dir} --n {GRID_IMAGES} --seed {int(seed)}"
        if label is not None:
            command += f" --class {shlex.quote(run.class_names[label])}"
        rows = class_rows(run, seed) if run.conditional else None
        return (
            picture(images, 8),
            str(png),
            str(npz),
            f"the same images: `{command} --out samples.npz`",
            None if rows is None else picture(rows, 8),
        )

    def new_seed(self, name, digit):
        seed = int(np.random.default_rng().integers(0, 2**31))
        return (seed, *self.show_batch(name, seed, digit))

    def show_walk(self, name, seed, digit, t):
        return picture(noise_walk_frame(self.runs[name], seed, t, self.chosen(digit)), WALKS)

    def show_class_walk(self, name, seed, start, end, t):
        run = self.runs[name]
        if not run.conditional:
            return None
        frame = class_walk_frame(run, seed, t, self.chosen(start), self.chosen(end))
        return picture(frame, WALKS)

    def pick_run(self, name):
        """The run's summary, its class pickers, and the class-only parts shown or
        hidden (the every-class grid, the class walk)."""
        conditional = self.runs[name].conditional
        ends = [self.class_choices(name, first=None) for _ in range(2)]
        if conditional:
            ends[1]["value"] = ends[1]["choices"][1]  # from class 0 to class 1
        shown = self.gr.update(visible=conditional)
        return describe(self.runs[name]), self.class_choices(name), *ends, shown, shown

    def reload(self, name):
        # e.g. a newer checkpoint of a run that is still training
        self.runs[name] = load_run(self.runs[name].run_dir)
        return describe(self.runs[name])


def build_page(run_dirs: list[str | Path]):
    """The Gradio page for ``run_dirs`` (each loaded once here): its layout, and which
    `Callbacks` method each control calls.

    Raises:
        UserError: Gradio missing, or a folder without a loadable run.
    """
    gr = import_gradio()
    runs = {}
    for run_dir in run_dirs:
        run = load_run(run_dir)
        runs[run.name] = run
    calls = Callbacks(gr, runs, Path(tempfile.mkdtemp(prefix="gan-mnist-app-")))
    # Gradio copies each download into a cache of its own: files older than ten minutes
    # go, every ten minutes (and all of them when the server stops).
    with gr.Blocks(title="gan-mnist", delete_cache=(600, 600)) as page:
        parts = _lay_out(gr, runs)
        _connect(page, parts, calls)
    return page


def _lay_out(gr, runs: dict) -> SimpleNamespace:
    """The page's parts, top to bottom, as the first run shows them (the class-only
    parts hidden for an unconditional run; `Callbacks.pick_run` updates them)."""
    names = list(runs)
    conditional = runs[names[0]].conditional
    p = SimpleNamespace()
    gr.Markdown("# gan-mnist: play with a trained generator")
    with gr.Row():
        p.run = gr.Dropdown(
            names, value=names[0], label="run", elem_id="run", interactive=len(names) > 1
        )
        p.reload = gr.Button("Reload run", scale=0)
    p.summary = gr.Markdown(describe(runs[names[0]]))
    with gr.Row():
        p.seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
        p.digit = gr.Dropdown(label="class", elem_id="digit", visible=conditional)
        p.batch = gr.Button("New batch", variant="primary", elem_id="new-batch")
    p.command = gr.Markdown()
    with gr.Row():
        p.grid = gr.Image(label="new digits", elem_id="grid", type="numpy", format="png")
        p.rows = gr.Image(
            label="every class", elem_id="every-class", type="numpy", format="png",
            visible=conditional,
        )  # fmt: skip
    with gr.Row():
        p.png = gr.File(label="grid (PNG)")
        p.npz = gr.File(label="samples (.npz, as gan-mnist sample)")
    gr.Markdown("## Latent walk: from one noise vector to another (spherical)")
    p.walk_slider = gr.Slider(0, 1, value=0, step=1 / 24, label="position", elem_id="walk")
    p.walk = gr.Image(label="walk", elem_id="walk-image", type="numpy", format="png")
    with gr.Column(visible=conditional, elem_id="class-walk") as p.class_section:
        gr.Markdown("## Class walk: one class into another at fixed noise")
        with gr.Row():
            p.start = gr.Dropdown(label="from class")
            p.end = gr.Dropdown(label="to class")
        p.class_slider = gr.Slider(0, 1, value=0, step=1 / 24, label="position")
        p.class_walk = gr.Image(label="class walk", type="numpy", format="png")
    return p


def _connect(page, p: SimpleNamespace, calls: Callbacks) -> None:
    """Which `Callbacks` method each control calls, with which parts in and out."""
    on = calls.friendly
    batch_outputs = [p.grid, p.png, p.npz, p.command, p.rows]
    run_choice = [p.summary, p.digit, p.start, p.end, p.rows, p.class_section]
    batch_inputs = [p.run, p.seed, p.digit]
    walk_inputs = [p.run, p.seed, p.digit, p.walk_slider]
    class_walk_inputs = [p.run, p.seed, p.start, p.end, p.class_slider]
    p.reload.click(on(calls.reload), p.run, p.summary)
    p.batch.click(on(calls.new_seed), [p.run, p.digit], [p.seed, *batch_outputs])
    p.seed.submit(on(calls.show_batch), batch_inputs, batch_outputs)
    p.digit.input(on(calls.show_batch), batch_inputs, batch_outputs)
    p.walk_slider.change(on(calls.show_walk), walk_inputs, p.walk)
    p.class_slider.change(on(calls.show_class_walk), class_walk_inputs, p.class_walk)
    # The first view, and a run picked: its classes, a batch and both walks.
    for event in (page.load, p.run.change):
        event(on(calls.pick_run), p.run, run_choice).then(
            on(calls.show_batch), batch_inputs, batch_outputs
        ).then(on(calls.show_walk), walk_inputs, p.walk).then(
            on(calls.show_class_walk), class_walk_inputs, p.class_walk
        )


def launch(
    run_dirs,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    announce: bool = False,
    **options,
):
    """Start the page: `gan-mnist app` in a terminal, or inline in Jupyter/Colab
    (``launch(["runs/demo"], prevent_thread_lock=True)`` in a cell shows it below the
    cell). ``port`` None: a free one. ``announce``: say where it serves, once the port
    is free and the runs are loaded. ``options`` go to Gradio's ``launch``.

    Private unless ``share=True``: Gradio by itself turns on a public *.gradio.live
    link in Colab and other hosted notebooks; with ``share=False`` Colab shows the
    page through its own proxy, to this notebook's user only."""
    if port is None:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    if not is_loopback(host):
        print(
            f"warning: serving on {host}, not only this computer: anyone who can reach "
            f"this machine's port {port} can use the page."
        )
    check_port_free(host, port)
    page = build_page(list(run_dirs))
    if share:
        print("warning: share=True: the page also gets a public link that anyone can open.")
    if announce:
        print(f"serving {len(run_dirs)} run(s) on http://{host}:{port} (Ctrl-C stops)")
    return page.launch(server_name=host, server_port=port, share=share, **options)
