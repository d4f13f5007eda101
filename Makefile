# Conclave: the two commands of the quick start are `make run` and `make test`.

CARGO ?= cargo

.PHONY: run app demo walkthrough test deps ui build lint bench chaos deb clean fuzz fuzz-short

## Install what is missing, build, and start the desktop app.
run: deps build
	./target/debug/conclave-app

## The app on a demo list of three subscribers, on the loopback mail host
## (root), with a script that sends a signed, encrypted post from alice.
demo: deps build
	./scripts/demo-app.sh

## A walkthrough of the command line: a demo list, one post in, copies out.
walkthrough: deps build
	./scripts/demo.sh

MAILHOST_DIR ?= /tmp/conclave-mh
CARD_DIR ?= /tmp/conclave-card
KEYRING_DIR ?= /tmp/conclave-keyring

## Install what is missing, then run every test suite (the loopback mail host,
## the virtual OpenPGP card and an OS keyring on a private session bus are
## started for them and stopped afterwards), then each fuzz target for 60 s.
test: deps build lint
	tests/testbed/mailhost.sh stop $(MAILHOST_DIR)
	tests/testbed/card.sh stop $(CARD_DIR)
	tests/testbed/mailhost.sh start $(MAILHOST_DIR)
	tests/testbed/card.sh start $(CARD_DIR)
	bus=$$(tests/testbed/keyring.sh start $(KEYRING_DIR)) && \
	  DBUS_SESSION_BUS_ADDRESS=$$bus CONCLAVE_MAILHOST_DIR=$(MAILHOST_DIR) CONCLAVE_CARD_DIR=$(CARD_DIR) \
	  $(CARGO) test --workspace --locked; \
	  status=$$?; tests/testbed/keyring.sh stop $(KEYRING_DIR); tests/testbed/card.sh stop $(CARD_DIR); \
	  tests/testbed/mailhost.sh stop $(MAILHOST_DIR); exit $$status
	@# `cargo test -p conclave-app` rewrites the UI's TypeScript types.
	@git diff --exit-code --stat -- ui/src/bindings || \
	  { echo "ui/src/bindings differ from the Rust types: commit the regenerated files"; exit 1; }
	$(MAKE) fuzz-short

deps:
	./scripts/install-deps.sh
	@# OpenPGP.js, the fourth subscriber engine of the interop tests.
	cd tests/testbed/openpgpjs && npm ci --no-audit --no-fund

## The desktop app's UI (TypeScript + Vite): the app embeds ui/dist.
# `npm install` keeps the versions package-lock.json pins; `npm ci` would
# also insist on the optional rollup binaries of other platforms, which the
# registry mirror here does not carry.
ui:
	cd ui && npm install --no-audit --no-fund && npm run build

# The tests drive the real `conclave` binary and app, so build them first.
build: ui
	$(CARGO) build --workspace --bins --locked

lint: ui
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@# The engine knows nothing of the desktop shell.
	@if $(CARGO) tree -p conclave-core -e normal -i tauri --locked >/dev/null 2>&1; then \
	  echo "conclave-core depends on tauri"; exit 1; fi

## The benchmarks, each printing Conclave beside GnuPG measured in the same
## run: the fan-out alone, then delivery through the loopback mail host
## (needs root, like `make test`).
bench: deps
	$(CARGO) build --release -p conclave-cli --locked
	$(CARGO) bench -p conclave-tests --bench fanout --locked
	tests/testbed/mailhost.sh stop $(MAILHOST_DIR)
	tests/testbed/mailhost.sh start $(MAILHOST_DIR)
	CONCLAVE_MAILHOST_DIR=$(MAILHOST_DIR) CONCLAVE_BIN=$(CURDIR)/target/release/conclave \
	  $(CARGO) bench -p conclave-tests --bench delivery --locked; \
	  status=$$?; tests/testbed/mailhost.sh stop $(MAILHOST_DIR); exit $$status

## Crashes and dropped connections, the long version: `conclave run` killed
## with SIGKILL at random 50 times while posts arrive, and 60 passes with
## half the IMAP and SMTP connections cut mid-way; every subscriber must get
## every post, never under two Message-IDs (`make test` runs a short
## version). CONCLAVE_CHAOS_SEED=N replays a run.
CHAOS_KILLS ?= 50
CHAOS_PASSES ?= 60
chaos: deps build
	tests/testbed/mailhost.sh stop $(MAILHOST_DIR)
	tests/testbed/mailhost.sh start $(MAILHOST_DIR)
	CONCLAVE_MAILHOST_DIR=$(MAILHOST_DIR) CONCLAVE_CHAOS_KILLS=$(CHAOS_KILLS) CONCLAVE_CHAOS_PASSES=$(CHAOS_PASSES) \
	  $(CARGO) test -p conclave-tests --test chaos --locked -- --nocapture --test-threads 1; \
	  status=$$?; tests/testbed/mailhost.sh stop $(MAILHOST_DIR); exit $$status

FUZZ_SECONDS ?= 600

## The fuzz targets (fuzz/, see docs/FUZZING.md), one after the other, each
## for FUZZ_SECONDS, seeded with tests/data/eml; installs cargo-afl if it is
## missing, and fails listing the inputs if any target crashed.
fuzz:
	CARGO=$(CARGO) scripts/fuzz.sh $(FUZZ_SECONDS)

## The short run `make test` ends with: each target for 60 s.
fuzz-short:
	CARGO=$(CARGO) scripts/fuzz.sh 60

## The Debian package (Tauri bundler, offline): target/release/bundle/deb/.
deb: deps
	packaging/build-deb.sh

clean:
	$(CARGO) clean
