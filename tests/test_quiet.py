"""TensorFlow's start-up log kept out of the output, its errors kept in it
(`gan_mnist.quiet`), in fresh processes with a stand-in ``tensorflow`` package
that writes to file descriptor 2 as the real one's C++ code does."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import run_cli

START_UP = "I0000 00:00:1796.1 7 port.cc:153] oneDNN custom operations are on."
REAL_ERROR = "E0000 00:00:1796.2 7 cuda_executor.cc:1] failed to allocate 4.0G: out of memory"
REMAPPER = (
    "E0000 00:00:1796.3 7 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: "
    "Mutation::Apply error: fanout 'gradient_tape/discriminator_1/leaky_re_lu_4_1/"
    "LeakyRelu/LeakyReluGrad' exist for missing node 'discriminator_1/conv2d_1/BiasAdd'."
)
REMAPPER_1 = REMAPPER.replace("LeakyReluGrad'", "LeakyReluGrad_1'")  # a second trace's name
FATAL = (
    "F0000 00:00:1796.4 7 cpu_feature_guard.cc:1] The TensorFlow library was compiled "
    "to use AVX instructions, but these aren't available on your machine."
)


def fresh_user_env() -> dict[str, str]:
    """The environment of a fresh user's process: no log level of ours or theirs."""
    ours = ("TF_CPP_MIN_LOG_LEVEL", "GAN_MNIST_TF_LOG_LEVEL")
    return {k: v for k, v in os.environ.items() if k not in ours}


def import_a_tensorflow_that_writes(
    tmp_path: Path, lines: list[str], then: str = "", level: str | None = None
) -> str:
    """Run ``import gan_mnist, tensorflow`` with a stand-in tensorflow that writes
    ``lines`` to file descriptor 2 and then runs ``then`` (with the user's own
    TF_CPP_MIN_LOG_LEVEL ``level``, if given); its result."""
    package = tmp_path / "stand_in" / "tensorflow"
    package.mkdir(parents=True)
    writes = "".join(f"os.write(2, {(line + chr(10)).encode()!r})\n" for line in lines)
    (package / "__init__.py").write_text(f"import os\n{writes}{then}\n")
    env = fresh_user_env()
    env["PYTHONPATH"] = os.pathsep.join([str(package.parent), str(Path.cwd())])
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    code = "import gan_mnist, os, tensorflow; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


def test_a_native_abort_during_the_import_still_shows_its_last_lines(tmp_path):
    # An unsupported CPU or a CUDA failure ends the process inside `import tensorflow`,
    # while file descriptor 2 is being filtered: what TensorFlow said must get out.
    result = import_a_tensorflow_that_writes(tmp_path, [START_UP, FATAL], then="os.abort()")
    assert result.returncode != 0
    assert FATAL in result.stderr
    assert START_UP not in result.stderr


def test_error_lines_show_and_only_the_harmless_ones_are_held_back_by_name(tmp_path):
    cuinit = "E0000 00:00:1796.5 7 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)"
    result = import_a_tensorflow_that_writes(
        tmp_path, [START_UP, REAL_ERROR, REMAPPER, REMAPPER_1, cuinit, "a line without a newline"]
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[:1] == [REAL_ERROR]
    assert "a line without a newline" in result.stderr
    assert START_UP not in result.stderr and "remapper" not in result.stderr
    has_a_gpu = Path("/dev/nvidia0").exists() or Path("/dev/dxg").exists()
    assert (cuinit in result.stderr) == has_a_gpu
    # TensorFlow's own level for the rest of the process hides info and warnings
    # only: 3 would hide its ERROR lines too.
    assert result.stdout.strip() == "2"


def test_a_command_s_own_errors_pass_the_filter_in_order_and_it_ends_with_the_command(tmp_path):
    # The whole command runs with the filter: its error message still arrives, and
    # no filter process is left behind once the command has returned.
    result = run_cli("sample", str(tmp_path / "nothing"), "--n", "4", "--out", tmp_path / "s.npz")
    assert result.returncode == 2
    assert result.stderr.startswith("gan-mnist sample: error:"), result.stderr
    written = f"{REMAPPER}\n{REAL_ERROR}\nafter\n".encode()
    code = textwrap.dedent(
        f"""
        import os
        from gan_mnist import quiet
        with quiet.filtered_stderr():
            os.write(2, {written!r})
            child = quiet._FILTERING[0]
        print(child.poll())
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr == f"{REAL_ERROR}\nafter\n"
    assert done.stdout.strip() == "0"  # it had ended when the block did


def test_a_log_level_of_the_user_s_own_even_ours_shows_everything(tmp_path):
    result = import_a_tensorflow_that_writes(tmp_path, [START_UP, REMAPPER], level="2")
    assert result.returncode == 0, result.stderr
    assert START_UP in result.stderr and REMAPPER in result.stderr


def test_python_m_of_the_cli_package_is_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "gan_mnist.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "usage: gan-mnist" in result.stdout, result.stderr


def test_train_called_from_python_holds_back_the_harmless_lines_as_the_command_does(
    tmp_path, tiny_npz
):
    # Jupyter's kernel shows file descriptor 2 in the cell's output: a notebook that
    # calls train() must not get the remapper line of each traced step. Whether
    # TensorFlow writes it depends on the CPU (seen on one with AVX-512, never on one
    # without), so the run writes it itself, to file descriptor 2 as TensorFlow's C++
    # code does, after each epoch. With the user's own log level, or after --debug's
    # uninstall, the same call shows it.
    code = (
        "from gan_mnist.config import make_config; from gan_mnist.data import load_mnist; "
        "from gan_mnist import quiet; from gan_mnist.training import train; import os, sys; "
        "quiet.uninstall(everything=True) if sys.argv[3] == 'debug' else None; "
        f"line = {(REMAPPER + chr(10)).encode()!r}; "
        "train(make_config('smoke', seed=1, epochs=2), sys.argv[1], "
        "data=load_mnist(sys.argv[2]), quiet=True, on_epoch_end=lambda *_: os.write(2, line))"
    )
    env = fresh_user_env()
    for level, how, shown in ((None, "", False), ("2", "", True), (None, "debug", True)):
        run_env = env if level is None else {**env, "TF_CPP_MIN_LOG_LEVEL": level}
        out = tmp_path / f"run-{level}-{how}"
        done = subprocess.run(
            [sys.executable, "-c", code, str(out), str(tiny_npz), how or "-"],
            capture_output=True,
            text=True,
            env=run_env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("remapper failed") == (2 if shown else 0), done.stderr
