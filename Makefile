# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Installed before the package so pip does not pull a multi-GB CUDA build; override freely,
# e.g. `make demo TORCH_SPEC='torch==2.5.1'`.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
# The Keras side of `bench/speed.py --vs keras` lives in its own environment; never a package dependency.
KERAS_VENV ?= .venv-keras
KERAS_SPEC ?= tensorflow-cpu==2.21.0 keras==3.15.1

.PHONY: demo test chromium screenshots reference accuracy tune engines panel speed bench-setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test,ray]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/stockrnn demo

test: $(VENV)/.installed-test chromium
	$(BIN)/python -m ruff check src tests bench
	$(BIN)/python -m pytest

# Debian's Chromium for tests/test_browser.py (Playwright drives it; Playwright's own download is not
# used). Installed with apt-get when missing and run as root; otherwise, or when apt-get fails, the
# browser tests skip and say why, and the rest of `make test` goes on.
CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium with apt-get (for the browser tests of report.html)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "apt-get could not install chromium: the browser tests will skip"; \
	else \
		echo "$(CHROMIUM) missing and not root with apt-get: the browser tests will skip"; \
	fi

# The README's pictures of report.html: the browser tests' screenshots, written to docs/.
screenshots: $(VENV)/.installed-test chromium
	rm -f docs/report.png docs/report-lag.png docs/report-panel.png
	STOCKRNN_SCREENSHOTS=docs $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_browser.py -k "report"
	test -s docs/report.png && test -s docs/report-lag.png && test -s docs/report-panel.png

# Benchmarks (need ../shared/data): the published recipe, the 24-stock accuracy report, the tuning.
reference: $(VENV)/.installed
	$(BIN)/python bench/reference.py

accuracy: $(VENV)/.installed
	$(BIN)/python bench/accuracy.py

tune: $(VENV)/.installed
	$(BIN)/python bench/tune.py

# Sequential vs --jobs 2 vs local Ray on the 250-ticker sp500 job (needs the ray extra); 20-40 min on 2 quiet cores.
engines: $(VENV)/.installed-test
	$(BIN)/python bench/engines.py

# Panel skill (issue 11): the default models on validation (sp500: train through 2017, score 2018),
# then the test once (2019-01-01 .. 2020-05-14); writes bench/results/panel.md and .json.
panel: $(VENV)/.installed
	$(BIN)/python bench/panel.py --phase both

# Speed against Keras 3 on TensorFlow (CPU), side by side in one run.
$(KERAS_VENV)/.installed:
	$(PYTHON) -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(KERAS_VENV)/bin/python -m pip install --quiet $(KERAS_SPEC)
	touch $@

bench-setup: $(VENV)/.installed $(KERAS_VENV)/.installed

speed: bench-setup
	$(BIN)/python bench/speed.py --vs keras --rounds 5

clean:
	rm -rf $(VENV) $(KERAS_VENV) runs build src/*.egg-info
