# Conclave: the two commands of the quick start are `make run` and `make test`.

CARGO ?= cargo

.PHONY: run test deps build lint bench clean

## Install what is missing, build, and run the demo walkthrough.
run: deps build
	./scripts/demo.sh

MAILHOST_DIR ?= /tmp/conclave-mh
CARD_DIR ?= /tmp/conclave-card

## Install what is missing, then run every test suite (the loopback mail host
## and the virtual OpenPGP card are started for them and stopped afterwards).
test: deps build lint
	tests/testbed/mailhost.sh stop $(MAILHOST_DIR)
	tests/testbed/card.sh stop $(CARD_DIR)
	tests/testbed/mailhost.sh start $(MAILHOST_DIR)
	tests/testbed/card.sh start $(CARD_DIR)
	CONCLAVE_MAILHOST_DIR=$(MAILHOST_DIR) CONCLAVE_CARD_DIR=$(CARD_DIR) $(CARGO) test --workspace --locked; \
	  status=$$?; tests/testbed/card.sh stop $(CARD_DIR); \
	  tests/testbed/mailhost.sh stop $(MAILHOST_DIR); exit $$status

deps:
	./scripts/install-deps.sh

# The tests drive the real `conclave` binary, so build it first.
build:
	$(CARGO) build --workspace --bins --locked

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

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

clean:
	$(CARGO) clean
