# One-command set-up: `make test` and `make demo` install what they need on a fresh
# Debian machine (Erlang/Elixir/rebar3 from apt, a virtualenv with the package, the
# OTP 28 runtime for interop tests) and then run.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := erlang-nox erlang-dev erlang-eunit erlang-jinterface elixir rebar3 iproute2

.PHONY: test demo deps erlang venv otp28 lint typecheck bench erl-test clean

deps: erlang venv otp28

erlang:
	@if ! command -v erl >/dev/null || ! command -v elixir >/dev/null || ! command -v rebar3 >/dev/null; then \
	  echo "Installing Erlang/OTP, Elixir and rebar3 from Debian..."; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi

# setup.py builds the optional compiled ETF core in place (dist_proto/_etf_core*.so)
$(VENV)/.installed: pyproject.toml setup.py $(wildcard dist_proto/_etf_core*.[ch])
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,bench]'
	@touch $@

venv: $(VENV)/.installed

otp28: venv
	$(PY) tests/beam.py

lint: venv
	$(PY) -m ruff check dist_proto python_actors bridge
	$(PY) -m mypy

erl-build: erlang
	rebar3 compile

erl-test: erl-build
	rebar3 eunit

test: deps lint erl-test
	$(PY) -m pytest -q -p no:cacheprovider

demo: deps erl-build
	$(PY) -m bridge.demo

bench: deps
	$(PY) bench/etf.py
	$(PY) bench/dist.py
	$(PY) bench/actors.py
	$(PY) bench/supervision.py

clean:
	rm -rf $(VENV) erl/_build .pytest_cache .mypy_cache .hypothesis
