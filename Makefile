# The two commands:  make repro   (reproduce every report)   and   make test   (run the tests).
# Both create .venv and install the pinned dependencies (requirements.lock) when needed.
#
#   make repro                       run `dvc repro` with the profiles selected in params.yaml
#   make repro PROFILE=smoke         switch every section to a profile (dvc exp run -S ...)
#   make repro PAPER=deep_compression  only that paper's stages (papers/<paper>/dvc.yaml, and what they need)
#   make test                        the test suite (TEST_WORKERS=2 processes; 0: in this one)
#   make bench                       training-loop overhead benchmark (each task kind vs bare PyTorch)
#   make paper SLUG=x TITLE=".." CITATION=".."   scaffold a new paper (python -m common.new_paper)
#   make ui                          MLflow UI on http://127.0.0.1:5000
#   make slides                      paper-review decks (.pptx) of every report present, the course deck, and PDFs when LibreOffice is installed
#   make verify                      recompute every registered paper's reports/<paper>/claims.json from its claims.yaml and metrics; fail on any difference (STRICT=1: also on any miss)
#   make setup                       only the set-up: .venv, plus the microcontroller toolchain
#   make toolchain                   only the Arm GCC + QEMU check/install (see below)
#   make lint / make lock / make clean
#
# Set-up also needs the microcontroller toolchain (arm-none-eabi-gcc, qemu-system-arm) for the
# MCU deployment work (papers/mcunet). `make toolchain` (run by every target that sets up .venv)
# does nothing when both are on PATH, installs the Debian packages when run as root, and otherwise
# prints the install command and carries on: the MCU tests then skip and everything else works.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?=
PAPER ?=
STRICT ?=
UI_PORT ?= 5000
TEST_WORKERS ?= 2

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export MPLBACKEND := Agg
export MKL_DYNAMIC := FALSE

.PHONY: repro test bench ui verify lint lock clean venv setup toolchain paper slides

venv: $(STAMP)

setup: venv

# Keep in step with common/mcu/toolchain.py (APT_PACKAGES, the tools it looks for).
MCU_TOOLS := arm-none-eabi-gcc qemu-system-arm
MCU_APT_PACKAGES := gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
MCU_INSTALL := apt-get update && apt-get install -y --no-install-recommends $(MCU_APT_PACKAGES)
MCU_HINT := the MCU tests will be skipped. Install it with:  sudo sh -c '$(MCU_INSTALL)'

toolchain:
	@missing=""; \
	for t in $(MCU_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing the microcontroller toolchain (missing:$$missing)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$(MCU_INSTALL) || echo "warning: installing the microcontroller toolchain failed; $(MCU_HINT)" >&2; \
	else \
		echo "warning: missing microcontroller toolchain:$$missing not found on PATH; $(MCU_HINT)" >&2; \
	fi

# `toolchain` is order-only: it runs on every set-up but never makes the stamp out of date.
$(STAMP): requirements.lock pyproject.toml Makefile | toolchain
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --system-certs --python $(BIN)/python --quiet -r requirements.lock
	$(BIN)/uv pip install --system-certs --python $(BIN)/python --quiet --no-deps -e .
	@# Byte-compile the dependencies once: where PYTHONDONTWRITEBYTECODE is set, every stage and
	@# test process would otherwise recompile torch and mlflow from source (about 12 s each).
	@echo "Byte-compiling the installed packages (once)"
	@$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null 2>&1 || true
	@touch $@

DVC_TARGETS := $(if $(PAPER),papers/$(PAPER)/dvc.yaml,)

repro: $(STAMP)
	@test -d .dvc || { echo "error: no .dvc directory: run make from the repository root" >&2; exit 2; }
	@test -z "$(PAPER)" || test -f papers/$(PAPER)/dvc.yaml || { echo "error: no papers/$(PAPER)/dvc.yaml; papers: $$(ls papers/*/dvc.yaml | cut -d/ -f2 | tr '\n' ' ')" >&2; exit 2; }
	@$(BIN)/python -m common.papers check --profile "$(PROFILE)"
ifeq ($(PROFILE),)
	$(BIN)/dvc repro $(DVC_TARGETS)
else
	$(BIN)/dvc exp run $$($(BIN)/python -m common.config profile-args $(PROFILE)) $(DVC_TARGETS)
endif
	@echo ""
	@echo "Reports: reports/README.md (index), reports/<paper>/README.md, reports/<paper>/claims.json"
	@echo "Runs:    make ui  (MLflow on http://127.0.0.1:$(UI_PORT))"

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

bench: $(STAMP)
	$(BIN)/python -m common.bench

paper: $(STAMP)
	$(BIN)/python -m common.new_paper "$(SLUG)" --title "$(TITLE)" --citation "$(CITATION)" $(if $(URL),--url "$(URL)",)

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port $(UI_PORT) --workers 1

verify: $(STAMP)
	$(BIN)/python -m common.report.verify $(if $(STRICT),--strict,)

# The same decks the pipeline's <paper>_slides and course_slides stages write (same bytes), for the
# reports present now, plus a PDF of each when LibreOffice (soffice) is installed.
slides: $(STAMP)
	$(BIN)/python -m common.slides all --reports reports --pdf

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Regenerate the pinned lock file from pyproject.toml (needs network access to PyPI).
lock: $(STAMP)
	$(BIN)/uv pip compile --system-certs pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
