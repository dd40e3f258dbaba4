# The README's commands. `make demo` and `make test` each set up .venv from this
# project's own files first, so both work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= runs/demo
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# pipefail: a failed install fails the target even though its output is filtered.
SHELL  := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Drops one machine-specific pip warning (about local mirror folders) and the lines
# of setuptools' notice for every editable install ("Please be careful with folders
# in your working directory ...", its stars and !! frame), and nothing else.
QUIET_PIP := sed -E -e '/^WARNING: Location .* is ignored/d' \
  -e '/BuildBackendWarning: Editable installation\.$$/d' -e '/^ +!!$$/d' -e '/^ +\*{20,}$$/d' \
  -e '/^ +Please be careful with folders in your working directory with the same$$/d' \
  -e '/^ +name as your package as they may take precedence during imports\.$$/d' \
  -e '/^ +with strategy, WheelFile\(wheel_path, "w"\) as wheel_obj:$$/d' -e '/^  $$/d'

.PHONY: demo test pictures notebook lint format system-deps clean

## demo: train the `demo` preset on real MNIST into runs/demo (~5 min on 2 CPU cores)
demo: $(VENV)/.installed system-deps
	$(BIN)/gan-mnist train --preset demo --out $(OUT) $(ARGS)

## test: lint, then the whole test suite (including the notebook runs), in two processes
## on the two cores (pytest-xdist; tests/conftest.py gives each one TensorFlow thread)
test: $(VENV)/.dev-installed system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 $(ARGS)

## pictures: retrain the committed pictures (the README's animation, DCGAN_Images/,
## losses.png, real_data.png) in runs/pictures from today's code, and draw the
## tutorial's full-width networks as Generator_Model.png / Discriminator_Model.png
PICTURES := runs/pictures
pictures: $(VENV)/.installed system-deps
	rm -rf $(PICTURES)
	$(BIN)/gan-mnist train --preset demo --seed 1 --out $(PICTURES) --quiet
	rm -f DCGAN_Images/image_at_epoch_*.png
	cp $(PICTURES)/DCGAN_Images/image_at_epoch_*.png DCGAN_Images/
	cp $(PICTURES)/dcgan_animation.gif $(PICTURES)/dcgan_animation.png \
	   $(PICTURES)/losses.png $(PICTURES)/real_data.png .
	$(BIN)/python -c "from gan_mnist.artifacts import plot_model_diagrams; \
	  from gan_mnist.files import DIAGRAM_NAMES; \
	  from gan_mnist.models.dcgan import build_generator as g, build_discriminator as d; \
	  plot_model_diagrams(dict(zip(DIAGRAM_NAMES, (g(), d()))), '.')"

## notebook: "Run all" of GAN_MNIST_Notebook.ipynb with its default parameters, in a
## fresh folder, and its outputs (cleaned of this machine's paths) written into it,
## so it can be read with its results (tests/test_notebook.py checks they are fresh)
notebook: $(VENV)/.dev-installed system-deps
	$(BIN)/python tools/notebook_outputs.py

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The installs say one line each instead of echoing their (long) commands.
$(VENV)/.installed: requirements.txt pyproject.toml
	@echo "setting up $(VENV)/: the packages of requirements.txt (TensorFlow's ~600 MB download the first time) and this package"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip 2>&1 | $(QUIET_PIP)
	@$(PIP) -r requirements.txt 2>&1 | $(QUIET_PIP)
	@$(PIP) --no-deps -e . 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -c "import gan_mnist, tensorflow, keras"
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	@echo "adding the test tools of requirements-dev.txt to $(VENV)/"
	@$(PIP) -r requirements-dev.txt 2>&1 | $(QUIET_PIP)
	@$(BIN)/python -c "import pytest, papermill, xdist"
	@touch $@

# Debian packages: Graphviz's `dot` draws Generator_Model.png / Discriminator_Model.png,
# dataset-fashion-mnist is Fashion-MNIST's offline source (--dataset fashion_mnist), and
# chromium + chromium-driver run the browser test of `gan-mnist app`, and strace watches
# that the app attempts no connection beyond this machine (both tests only).
# Installed when we may (root with apt-get); otherwise a note, and runs skip the
# diagrams or download Fashion-MNIST through Keras instead.
system-deps:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	[ -d /usr/share/datasets/fashion-mnist ] || missing="$$missing dataset-fashion-mnist"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	[ -x /usr/bin/strace ] || missing="$$missing strace"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && apt-get install -y -qq $$missing) >/dev/null 2>&1 \
	      || echo "note: could not apt-get install$$missing"; \
	  else \
	    echo "note: install$$missing for diagrams and offline Fashion-MNIST (sudo apt-get install$$missing)"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) runs .pytest_cache
