# One-command set-up: `make test` and `make demo` install what they need on a fresh
# Debian machine (Erlang/Elixir/rebar3 from apt, a virtualenv with the package, the
# OTP 28 runtime for interop tests) and then run.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := erlang-nox erlang-dev erlang-eunit erlang-jinterface erlang-observer erlang-wx elixir rebar3 iproute2 xvfb

.PHONY: test demo deps erlang venv otp28 lint typecheck bench erl-test clean doctest unit-pythons docs

deps: erlang venv otp28

erlang:
	@if ! command -v erl >/dev/null || ! command -v elixir >/dev/null || ! command -v rebar3 >/dev/null \
	    || ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
	  echo "Installing Erlang/OTP, Elixir and rebar3 from Debian..."; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

# setup.py builds the optional compiled ETF core in place (dist_proto/_etf_core*.so)
$(VENV)/.installed: pyproject.toml setup.py $(wildcard dist_proto/_etf_core*.[ch])
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,bench,docs,fast]'
	@touch $@

venv: $(VENV)/.installed

otp28: venv
	$(PY) -m tests.beam

lint: venv
	$(PY) -m ruff check dist_proto python_actors bridge
	$(PY) -m mypy

erl-build: erlang
	rebar3 compile

erl-test: erl-build
	rebar3 eunit

test: deps lint erl-test doctest unit-pythons
	$(PY) -m pytest -q -p no:cacheprovider

# The examples in the modules' docstrings.
doctest: venv
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules dist_proto python_actors bridge

# The unit tests (no BEAM node) on every other supported Python: pyenv's, else pythonX.Y
# on PATH. A version that is not found is reported, never passed silently.
UNIT_PYTHONS ?= 3.12 3.13
UNIT_TESTS   := tests/dist_proto tests/python_actors tests/bridge tests/fuzz tests/test_architecture.py
PYENV_ROOT   ?= $(HOME)/.pyenv
unit-pythons:
	@for v in $(UNIT_PYTHONS); do \
	  py=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python 2>/dev/null | sort -V | tail -n 1); \
	  [ -n "$$py" ] || py=$$(command -v python$$v || true); \
	  if [ -z "$$py" ]; then echo "*** Python $$v not found: unit tests NOT run on Python $$v"; continue; fi; \
	  venv=.venv-$$v; \
	  if [ ! $$venv/.installed -nt pyproject.toml ]; then \
	    $$py -m venv $$venv && $$venv/bin/python -m pip install -q -e '.[test]' && touch $$venv/.installed || exit 1; \
	  fi; \
	  echo "== unit tests on Python $$v ($$py)"; \
	  $$venv/bin/python -m pytest -q -p no:cacheprovider -p tests.fewer_examples -m "not interop" $(UNIT_TESTS) || exit 1; \
	done

# The API reference, generated from the docstrings (pdoc), into docs/api/ (see docs/api.md).
docs: venv
	$(PY) -m pip install -q -e '.[docs]'
	$(PY) docs/build_api.py docs/api

demo: deps erl-build
	$(PY) -m bridge.demo

bench: deps
	$(PY) bench/etf.py
	$(PY) bench/dist.py
	$(PY) bench/actors.py
	$(PY) bench/supervision.py

clean:
	rm -rf $(VENV) .venv-3.* docs/api erl/_build .pytest_cache .mypy_cache .hypothesis
