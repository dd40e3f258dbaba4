"""`gan-mnist app`: the functions behind the page, its errors, and the page itself
driven by a real headless Chromium (Debian's, through Selenium and its chromedriver)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from gan_mnist import app
from gan_mnist.errors import UserError

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def runs(smoke_runs):
    """A conditional and an unconditional smoke run (the shared ones: read only)."""
    return smoke_runs


def folder_state(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_batch_is_exactly_gan_mnist_sample_of_the_same_seed(runs, tmp_path):
    for model, digit in (("cdcgan", 7), ("dcgan", None)):
        before = folder_state(runs[model])
        run = app.load_run(runs[model])
        images, labels = app.new_batch(run, seed=11, label=digit)
        args = ["sample", runs[model], "--n", 64, "--seed", 11, "--out", tmp_path / "s.npz"]
        assert run_cli(*args, *(["--digit", digit] if digit is not None else [])).returncode == 0
        saved = np.load(tmp_path / "s.npz")

        assert images.dtype == np.uint8 and images.shape == (64, 28, 28)
        np.testing.assert_array_equal(images, saved["images"])
        if digit is None:
            assert labels is None and "labels" not in saved.files
        else:
            assert (labels == digit).all()
            np.testing.assert_array_equal(labels, saved["labels"])
        png, npz = app.write_downloads(images, labels, "grid", tmp_path)
        np.testing.assert_array_equal(np.load(npz)["images"], saved["images"])
        assert png.stat().st_size > 0
        assert folder_state(runs[model]) == before  # nothing written into the run


def test_the_page_uses_the_averaged_generator_of_a_run_that_has_one(runs):
    run = app.load_run(runs["dcgan"])
    assert run.config.ema == 0.9
    from gan_mnist.checkpoint_files import newest_intact_checkpoint
    from gan_mnist.models import build_models

    latest, _ = newest_intact_checkpoint(runs["dcgan"])
    raw = build_models(run.config)
    import tensorflow as tf

    tf.train.Checkpoint(generator=raw.generator).restore(latest).expect_partial()
    noise = np.random.default_rng(0).standard_normal((4, 100)).astype("float32")
    shown = run.models.generate(noise).numpy()
    assert not np.allclose(shown, raw.generate(noise).numpy())  # not the raw generator


def test_walks_start_and_end_at_their_endpoints(runs):
    cond, plain = app.load_run(runs["cdcgan"]), app.load_run(runs["dcgan"])
    start, end = app.walk_endpoints(plain, seed=5)
    for t, noise in ((0.0, start), (1.0, end)):
        frame = app.noise_walk_frame(plain, seed=5, t=t)
        np.testing.assert_array_equal(frame, plain.models.to_uint8(plain.models.generate(noise)))
    middle = app.noise_walk_frame(plain, seed=5, t=0.5)
    assert middle.shape == (app.WALKS, 28, 28) and middle.dtype == np.uint8

    noise = app.walk_endpoints(cond, seed=5)[0]
    for t, cls in ((0.0, 2), (1.0, 6)):
        frame = app.class_walk_frame(cond, seed=5, t=t, start=2, end=6)
        pure = cond.models.generate(noise, np.full(app.WALKS, cls))
        np.testing.assert_array_equal(frame, cond.models.to_uint8(pure))
    with pytest.raises(UserError, match="no classes"):
        app.class_walk_frame(plain, seed=5, t=0.5, start=0, end=1)


def test_every_class_grid_has_one_row_per_class(runs):
    import tensorflow as tf

    run = app.load_run(runs["cdcgan"])
    rows = app.class_rows(run, seed=2, columns=8)
    assert rows.shape == (80, 28, 28) and rows.dtype == np.uint8
    noise = tf.random.Generator.from_seed(2).normal([8, 100])
    for c in (0, 4, 9):  # row c: the seed's 8 noise vectors drawn as class c
        expected = run.models.to_uint8(run.models.generate(noise, np.full(8, c)))
        np.testing.assert_array_equal(rows[8 * c : 8 * (c + 1)], expected)
    with pytest.raises(UserError, match="no classes"):
        app.class_rows(app.load_run(runs["dcgan"]), seed=2)


def test_a_trained_conditional_grid_draws_each_row_as_its_digit(trained_cdcgan):
    """The evaluator reads most of the grid's digits as the class of their row
    (measured 79%; chance is 10%; a smoke run draws only noise)."""
    from gan_mnist.evaluator import Evaluator

    run = app.load_run(trained_cdcgan)
    rows = app.class_rows(run, seed=0, columns=8)
    agreement = Evaluator.load().accuracy(rows, np.repeat(np.arange(10), 8))
    print(f"\nclassifier agrees with the row's class for {agreement:.0%} of the grid")
    assert agreement >= 0.7, agreement


def test_a_folder_without_a_run_and_a_busy_port_are_clear_errors(tmp_path, runs):
    (tmp_path / "empty").mkdir()
    result = run_cli("app", tmp_path / "empty", "--port", free_port())
    assert result.returncode == 2 and "holds no checkpoint" in result.stderr
    missing = run_cli("app", tmp_path / "missing")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"{tmp_path / 'missing'} is not a folder. Pass the --out folder" in missing.stderr

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("app", runs["dcgan"], "--port", port)
    assert result.returncode == 2 and f"127.0.0.1:{port}" in result.stderr
    assert "Pick another with --port" in result.stderr and "Traceback" not in result.stderr
    assert "serving" not in result.stdout  # said only once the port and the runs are good


def test_new_batches_keep_a_few_download_folders_and_none_outlives_the_app(runs, tmp_path):
    code = f"""
import tempfile
from pathlib import Path
from gan_mnist import app
downloads = Path(tempfile.mkdtemp(dir={str(tmp_path)!r}))
calls = app.Callbacks(None, {{"r": app.load_run({str(runs["dcgan"])!r})}}, downloads)
for seed in range(app.KEPT_BATCHES + 5):
    png, npz, *_ = calls.show_batch("r", seed, "any")[1:]
    assert Path(png).exists() and Path(npz).exists()  # the newest batch's downloads
print(len(list(downloads.iterdir())), app.KEPT_BATCHES)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    kept, most = map(int, done.stdout.split()[-2:])
    assert kept == most  # while it ran: only the newest batches' folders
    assert list(tmp_path.iterdir()) == []  # and when the process ended, none at all


def test_without_gradio_the_app_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now fails
    with pytest.raises(UserError, match=r"pip install 'gan-mnist\[app\]'"):
        app.import_gradio()


def test_in_colab_the_page_stays_private_unless_asked(runs, monkeypatch):
    gradio = pytest.importorskip("gradio")
    # Gradio's own Colab detection, forced on: by itself Gradio would then set
    # share=True and open a public *.gradio.live tunnel (stubbed: no traffic leaves).
    monkeypatch.setattr(gradio.utils, "colab_check", lambda: True)
    tunnels = []

    def no_tunnel(*args, **kwargs):
        tunnels.append(args)
        raise RuntimeError("the test refuses to open a public tunnel")

    monkeypatch.setattr(gradio.networking, "setup_tunnel", no_tunnel)
    launched = []
    original = gradio.Blocks.launch

    def spy(self, *args, **kwargs):
        launched.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(gradio.Blocks, "launch", spy)
    try:
        app.launch([runs["dcgan"]], prevent_thread_lock=True, inline=False, quiet=True)
        (page,) = launched
        assert page.is_colab, "the Colab detection was not forced"
        assert page.share is False and page.share_url is None and not tunnels
    finally:
        gradio.close_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_page(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read()[-2000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the app did not answer on {url} within {seconds} s")


def test_the_page_in_a_headless_browser(runs, tmp_path):
    """Pick a digit, press "New batch", move the slider: each shows a new image; the
    class pickers, the every-class grid and the class walk show for the conditional
    run only, and picking the other run updates them and the grid."""
    for program in (CHROMIUM, CHROMEDRIVER):
        assert os.access(program, os.X_OK), (
            f"{program} is missing: `make test` installs Debian's chromium and "
            "chromium-driver (or: sudo apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.monotonic()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "gan_mnist", "app", str(runs["cdcgan"]), str(runs["dcgan"])]
        + ["--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    browser = None
    try:
        wait_for_page(url, server)
        options = Options()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
            options.add_argument(flag)
        options.add_argument("--window-size=1280,2200")
        browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        browser.set_page_load_timeout(60)
        browser.get(url)
        wait = WebDriverWait(browser, 60)

        def image(elem_id: str) -> bytes | None:
            """The bytes of the picture the page shows in ``elem_id`` (None: none yet)."""
            found = browser.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
            source = found[0].get_attribute("src") if found else None
            if not source:
                return None
            with urllib.request.urlopen(source, timeout=10) as response:
                return response.read()

        def changed(elem_id: str, before: bytes | None) -> bytes:
            wait.until(lambda _: image(elem_id) not in (None, before))
            return image(elem_id)

        grid = changed("grid", None)
        walk = changed("walk-image", None)

        def pick(dropdown, text: str) -> None:
            """Choose ``text`` in a Gradio dropdown, as a user clicks it."""
            dropdown.click()
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "ul[role=listbox] li"))
            option = next(
                li
                for li in browser.find_elements(By.CSS_SELECTOR, "ul[role=listbox] li")
                if li.text.strip() == text
            )
            option.click()

        pick(browser.find_element(By.CSS_SELECTOR, "#digit input"), "3")
        grid = changed("grid", grid)  # digit 3: a new image

        browser.find_element(By.CSS_SELECTOR, "#new-batch").click()
        grid = changed("grid", grid)  # a new seed: a new image

        slider = browser.find_element(By.CSS_SELECTOR, "#walk input[type=range]")
        slider.send_keys(*[Keys.ARROW_RIGHT] * 6)
        changed("walk-image", walk)  # a quarter of the walk: a new image

        def shown(elem_id: str) -> bool:
            return any(e.is_displayed() for e in browser.find_elements(By.ID, elem_id))

        class_parts = ("digit", "every-class", "class-walk")
        assert all(shown(part) for part in class_parts)  # the conditional run
        pick(browser.find_element(By.CSS_SELECTOR, "#run input"), str(runs["dcgan"]))
        grid = changed("grid", grid)  # the unconditional run's digits
        wait.until(lambda _: not any(shown(part) for part in class_parts))
        pick(browser.find_element(By.CSS_SELECTOR, "#run input"), str(runs["cdcgan"]))
        wait.until(lambda _: all(shown(part) for part in class_parts))

        text = browser.find_element(By.TAG_NAME, "body").text
        assert "Error" not in text and "Traceback" not in text, text[:2000]
        shot = tmp_path / "app_screenshot.png"
        browser.save_screenshot(str(shot))
        print(f"\nbrowser test: {time.monotonic() - started:.1f} s wall-clock; screenshot {shot}")
        assert shot.stat().st_size > 10_000
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# Runs inside a network namespace that has only loopback: starts the app under strace
# (every connect() it or its children attempt), waits for the page, then stops it.
PRIVATE_DRIVER = """
import os, signal, subprocess, sys, time, urllib.request
trace, port, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
server = subprocess.Popen(
    ["strace", "-f", "-qq", "-e", "trace=connect", "-o", trace, sys.executable, "-m",
     "gan_mnist", "app", *runs, "--port", port],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
)
deadline = time.monotonic() + 150
while time.monotonic() < deadline and server.poll() is None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
            page.read()
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("the app did not answer: " + (server.stderr.read() if server.poll() else "")[-2000:])
time.sleep(5)  # Gradio's launch-time calls run in threads after the page is up
os.killpg(server.pid, signal.SIGTERM)  # strace and the app it runs
try:
    server.wait(timeout=30)
except subprocess.TimeoutExpired:
    os.killpg(server.pid, signal.SIGKILL)
"""


def outside_connections(trace: str) -> list[str]:
    """The connect() calls of an strace log that aim beyond this machine."""
    outside = []
    for line in trace.splitlines():
        if "connect(" not in line or "AF_UNIX" in line or "AF_NETLINK" in line:
            continue
        loopback = 'inet_addr("127.' in line or '"::1"' in line or "::ffff:127." in line
        if not loopback:
            outside.append(line.strip())
    return outside


@pytest.mark.skipif(
    os.geteuid() != 0 or not all(Path(p).exists() for p in ("/usr/bin/strace", "/usr/bin/unshare")),
    reason="needs root (a network namespace) and strace; `make test` installs strace",
)
def test_the_app_calls_no_one_beyond_this_machine(runs, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_ANALYTICS_ENABLED"}  # the default
    trace = tmp_path / "connect.trace"
    driver = tmp_path / "driver.py"
    driver.write_text(PRIVATE_DRIVER)
    args = [sys.executable, str(driver), str(trace), "7861", str(runs["dcgan"])]
    command = "ip link set lo up && exec " + " ".join(f"'{a}'" for a in args)
    namespace = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a timeout can stop everything it started
    )
    try:
        _, stderr = namespace.communicate(timeout=300)
    finally:
        if namespace.poll() is None:
            os.killpg(namespace.pid, signal.SIGKILL)
            namespace.wait()
    assert namespace.returncode == 0, stderr[-2000:]
    log = trace.read_text()
    assert 'inet_addr("127.0.0.1")' in log  # the driver's own visits were traced
    assert outside_connections(log) == []
