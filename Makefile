# MMS: the two commands are `make run` and `make test`; everything they need is installed by `deps`.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY ?= python3
CARGO ?= cargo
export MMS_VENV := $(VENV)

.PHONY: deps redis-bin prometheus-bin luacheck-bin chromium-bin redis-up venv build run test test-ops lint fmt bench fuzz clean

deps: redis-bin prometheus-bin chromium-bin venv

# redis-server from Debian's packages when it is missing.
redis-bin:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null; }
	@redis-server --version >/dev/null

# luacheck (Debian's lua-check) for the store's Redis scripts, when it is missing.
luacheck-bin:
	@command -v luacheck >/dev/null 2>&1 || { \
	  echo "installing luacheck"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua-check) >/dev/null; }
	@luacheck --version >/dev/null

# Prometheus and promtool from Debian's packages when missing (the ops tests run both).
prometheus-bin:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  echo "installing prometheus"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus) >/dev/null; }
	@promtool --version >/dev/null

# Headless Chromium from Debian's packages when it is missing: the web console's browser test
# (tests/console_browser.rs) renders the page in it. Its stderr is dropped: Debian's wrapper script
# prints a harmless shell warning on some hosts.
chromium-bin:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }
	@chromium --version >/dev/null 2>&1 || { echo "chromium is installed but does not run: check \`chromium --version\`"; exit 1; }

# Radicale and Xandikos (two real CalDAV servers), aiosmtpd (SMTP sink) in a local virtualenv; kubernetes-validate and the
# KEDA / Prometheus Operator models (their CRD schemas) for the manifest tests.
VENV_PACKAGES := 'radicale>=3.2,<4' 'aiosmtpd>=1.4,<2' 'xandikos>=0.4.10,<0.5' 'kubernetes-validate>=1.31,<2' \
	'cloudcoil-models-keda==2.16.1.0' 'cloudcoil-models-prometheus-operator==0.80.1.0'
venv: $(VENV)/.installed
$(VENV)/.installed: Makefile
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(VENV_PACKAGES)
	touch $@

build:
	$(CARGO) build --bins

# The main job on embedded defaults: Redis (started here if none answers on 6379), a vdir mailbox
# and a Maildir outbox under ./var, a demo tenant, the worker and the API in one process. It prints
# each demo user's progress, then what was migrated, where to look, the API's URL and token, and
# the ./target/release/mmsctl commands to try next. The operator token is kept in
# var/operator-token (made once, random) so that those commands keep working across runs.
run: deps redis-up
	$(CARGO) build --release --bins
	@mkdir -p var
	@test -s var/operator-token || (head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > var/operator-token)
	MMS_API__OPERATOR_TOKEN="$$(cat var/operator-token)" ./target/release/mms all --demo $(if $(CONFIG),--config $(CONFIG),)

# The local Redis the embedded defaults point at (127.0.0.1:6379), started if nothing answers there.
redis-up: redis-bin
	@redis-cli -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --port 6379 --bind 127.0.0.1 --save "" --appendonly no --dir /tmp

# Every test: unit, property, golden, corpus and the end-to-end tests against real Redis, Radicale
# and an SMTP sink (the harness starts its own servers on free ports).
test: deps lint
	$(CARGO) build --bins
	$(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) test --workspace --doc

# The operations checks alone (alert-rule unit tests, manifests, promtool check metrics, the
# dashboard and the real-Prometheus test); `make test` runs them with everything else.
test-ops: deps
	promtool test rules deploy/prometheus/tests/alerts_test.yaml
	$(CARGO) test --test ops_promtool --test ops_manifests --test ops_health --test ops_prometheus --test ops_compose_seed

lint: luacheck-bin
	luacheck --quiet --no-color --config crates/mms-store/lua/.luacheckrc crates/mms-store/lua
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Benchmarks (never timed tests): criterion for the rewrite engine, then the load generator
# (`mms loadgen`, crates/mms-cli/src/loadgen.rs). It starts its own redis-server, SMTP sink and
# Radicale, migrates seeded mailboxes of BENCH_SIZES meetings with BENCH_WORKERS separate
# `mms worker` processes, measures each backend's own rate for the same work in the same run,
# and writes target/bench/results.json and target/bench/chart.svg.
BENCH_SIZES ?= 100,1000,10000,50000
BENCH_USERS ?= 4
BENCH_WORKERS ?= 2
BENCH_CALDAV_EVENTS ?= 300
bench: deps
	$(CARGO) bench -p mms-ical
	$(CARGO) build --release --bin mms
	./target/release/mms loadgen --sizes $(BENCH_SIZES) --users $(BENCH_USERS) \
	  --workers $(BENCH_WORKERS) --caldav-events $(BENCH_CALDAV_EVENTS) --out-dir target/bench

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

# `make run` serves /metrics on loopback only: the default (0.0.0.0:9464) is for containers.
run: export MMS_METRICS_ADDR ?= 127.0.0.1:9464
