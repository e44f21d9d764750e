# ledgerstream developer tasks. Needs Python 3.11+, Java 17+, Maven 3.8+ (see deploy/local/).
SHELL := /bin/bash

PYTHON      ?= $(shell command -v python3.11 || command -v python3)
VENV        ?= .venv
KAFKA_PORT  ?= 9092
PG_PORT     ?= 55432
PYTEST_ARGS ?=

export KAFKA_PORT PG_PORT

VPY   := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv kafka-up kafka-down pg-up pg-down chromium lint test demo clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

kafka-up:
	deploy/local/kafka.sh up

kafka-down:
	deploy/local/kafka.sh down

pg-up:
	deploy/local/postgres.sh up

pg-down:
	deploy/local/postgres.sh down

# Debian's chromium for the browser tests (tests/browser); never `playwright install`.
# As root it is apt-installed when missing; otherwise the browser tests skip, naming the binary.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" -eq 0 ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else \
	  echo "note: /usr/bin/chromium is missing and we are not root: the browser tests will be skipped" \
	       "(install it with: sudo apt-get install chromium)"; \
	fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# pytest exit code 5 (no tests collected) counts as a failure.
test: venv chromium kafka-up pg-up
	@export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(KAFKA_PORT) \
	        DATABASE_URL="$$(deploy/local/postgres.sh url)"; \
	rc=0; $(VPY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) || rc=$$?; \
	echo "Kafka and PostgreSQL are still running; stop them with: make kafka-down pg-down"; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	exit $$rc

demo: venv kafka-up
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(KAFKA_PORT) $(VPY) -m streams.demo

clean: kafka-down pg-down
	rm -rf $(VENV) .cache var build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
