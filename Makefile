# The README's two commands are `make run` and `make test`; both set everything up from nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KAFKA_VERSION ?= 4.4.0
KAFKA3_VERSION ?= 3.9.1
export ACTIONFLOWS_KAFKA_VERSION ?= $(KAFKA_VERSION)

.PHONY: install lock jars chromium run test test-kafka3 lint format bench chaos secrets clean

install: $(VENV)/.installed

# The exact versions in requirements.lock, then the project itself without resolving anything;
# tests/test_lock.py fails when the lock and pyproject.toml disagree (then: make lock).
$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "actionflows needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	# "python -m pip", not bin/pip: the venv's own interpreter, whatever a script's shebang says
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# Resolve pyproject.toml's ranges again into requirements.lock (for every platform, Python 3.11+),
# and its runtime part, the same versions without the dev tools, into requirements-runtime.lock
# (what the Dockerfile installs).
lock: install
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--quiet -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
		--constraint requirements.lock --quiet -o requirements-runtime.lock
	@rm -f $(VENV)/.installed

# The broker's jars, resolved by Maven once per Kafka version and cached (~/.cache/actionflows).
jars: install
	$(PY) -m localkafka $(ACTIONFLOWS_KAFKA_VERSION)

# The console's browser tests (tests/console) drive Debian's Chromium, never a browser of their
# own. Installed here when missing and apt-get can (as root: these machines and CI); where it
# cannot be had, those tests skip and say why.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the console's browser tests"; \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends chromium fonts-dejavu-core >/dev/null; } \
		|| echo "chromium could not be installed: the console's browser tests will skip"; \
	else \
		echo "no $(CHROMIUM) and no apt-get as root: the console's browser tests will skip"; \
	fi

run: jars
	$(PY) -m agents.cli run

test: jars chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# The same suite on the Kafka 3.9 line.
test-kafka3:
	$(MAKE) test ACTIONFLOWS_KAFKA_VERSION=$(KAFKA3_VERSION)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# The full benchmark (20-40 minutes on 2 cores): bench/results/<date>.md and docs/benchmarks.md.
# BENCH_ARGS passes options, e.g. BENCH_ARGS='--note "shared machine"'.
bench: jars
	$(PY) -m bench $(BENCH_ARGS)

# A few minutes: one run per figure, small backlogs, results in bench/results/quick/ (not kept).
.PHONY: bench-quick
bench-quick: jars
	$(PY) -m bench --quick $(BENCH_ARGS)

# Two revisions in interleaved pairs of runs, e.g. make bench-compare COMPARE_ARGS='HEAD~3 --pairs 5'
.PHONY: bench-compare
bench-compare: jars
	$(PY) -m bench.compare $(COMPARE_ARGS)

# A seeded chaos run against real processes (broker, emulator, worker); see docs/reliability.md.
# Not part of `make test`. CHAOS_ARGS, e.g. "--events 3000 --worker-kills 8 --seed 1".
chaos: jars
	$(PY) -m bench.chaos $(CHAOS_ARGS)

# The secret files docker-compose.yml mounts, each made once with a random value (docs/deploy.md).
# The folder is 0700; the files are 0644 so the containers' user can read them as mounted.
SECRETS := secrets/api-token secrets/ingest-tokens secrets/zendesk-signing-secrets
secrets: $(SECRETS)
$(SECRETS):
	@install -d -m 0700 secrets
	@$(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@ && chmod 0644 $@
	@echo "wrote $@"

clean:
	rm -rf $(VENV) build *.egg-info localkafka/target
