# MMS: the two commands are `make run` and `make test`; everything they need is installed by `deps`.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY ?= python3
CARGO ?= cargo
export MMS_VENV := $(VENV)

.PHONY: deps redis-bin redis-up venv build run test lint fmt bench fuzz clean

deps: redis-bin venv

# redis-server from Debian's packages when it is missing.
redis-bin:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null; }
	@redis-server --version >/dev/null

# Radicale (CalDAV) and aiosmtpd (SMTP sink) in a local virtualenv.
venv: $(VENV)/.installed
$(VENV)/.installed:
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check 'radicale>=3.2,<4' 'aiosmtpd>=1.4,<2'
	touch $@

build:
	$(CARGO) build --bins

# The main job on embedded defaults: Redis (started here if none answers on 6379), a vdir mailbox
# and a Maildir outbox under ./var, a demo tenant, the worker and the API in one process.
run: deps redis-up
	$(CARGO) run --release --bin mms -- all --demo $(if $(CONFIG),--config $(CONFIG),)

# The local Redis the embedded defaults point at (127.0.0.1:6379), started if nothing answers there.
redis-up: redis-bin
	@redis-cli -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --port 6379 --bind 127.0.0.1 --save "" --appendonly no --dir /tmp

# Every test: unit, property, golden, corpus and the end-to-end tests against real Redis, Radicale
# and an SMTP sink (the harness starts its own servers on free ports).
test: deps lint
	$(CARGO) build --bins
	$(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test --workspace --doc

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Benchmarks: criterion for the rewrite engine, the load generator for the cluster.
bench: deps redis-up
	$(CARGO) bench -p mms-ical
	$(CARGO) run --release --bin mms -- loadgen --out bench-results.json

# Fuzz the parser and rewriter for FUZZ_SECS seconds with the proptest-driven byte fuzzer
# (crates/mms-ical/tests/fuzz_bytes.rs: random bytes and mutations of the fixtures and the corpus
# through parse, select, rewrite and build_update). It is not cargo-fuzz: no coverage guidance, but
# it runs on the stable toolchain with nothing to install.
FUZZ_SECS ?= 600
fuzz:
	@echo "fuzz: proptest byte fuzzer (not coverage-guided) for $(FUZZ_SECS) s"
	FUZZ_SECS=$(FUZZ_SECS) $(CARGO) test -p mms-ical --release --test fuzz_bytes -- --ignored --nocapture

clean:
	$(CARGO) clean
	rm -rf var
