# fedsim — every target works on a fresh clone: the venv is (re)built when
# pyproject.toml is newer than the stamp, so `make test` needs nothing installed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAB    ?=

.PHONY: run test lint scenarios pytest packages bench fuzz soak certs clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/fedsim serve $(LAB)

lint: $(STAMP)
	$(BIN)/ruff check simulator tests
	$(BIN)/ruff format --check simulator tests
	$(BIN)/mypy --strict simulator

scenarios: $(STAMP)
	$(BIN)/fedsim run scenarios --junit-xml build/scenarios-junit.xml

pytest: packages $(STAMP)
	$(BIN)/pytest

# The Debian packages of the real peers (.ci/packages), installed when missing (as
# root or through sudo -n); without a way to install them this stops with one line
# naming them, before anything else runs.
packages:
	@bash .ci/ensure-packages

# The catalogue runs through the real command before pytest, so pytest's summary
# stays the closing line CI reads.
test: packages lint scenarios pytest

# BENCH: more options, e.g. make bench BENCH=--fedsim-traces (bench/README.md)
bench: $(STAMP)
	$(BIN)/python -m simulator.bench $(BENCH)

# Longer runs than make test does: FUZZ_SECONDS / SOAK_SECONDS (default 600).
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	$(BIN)/python -m simulator.fuzz --atheris --seconds $(or $(FUZZ_SECONDS),600) ../shared/testdata/rfc4475

soak: $(STAMP)
	$(BIN)/python -m simulator.fuzz.soak --seconds $(or $(SOAK_SECONDS),600)

certs: $(STAMP)
	$(BIN)/fedsim certs init certs

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info logs
