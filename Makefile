# Conclave: the two commands of the quick start are `make run` and `make test`.

CARGO ?= cargo

.PHONY: run test deps build lint bench clean

## Install what is missing, build, and run the demo walkthrough.
run: deps build
	./scripts/demo.sh

MAILHOST_DIR ?= /tmp/conclave-mh

## Install what is missing, then run every test suite (the loopback mail host
## is started for them and stopped afterwards).
test: deps build lint
	tests/testbed/mailhost.sh stop $(MAILHOST_DIR)
	tests/testbed/mailhost.sh start $(MAILHOST_DIR)
	CONCLAVE_MAILHOST_DIR=$(MAILHOST_DIR) $(CARGO) test --workspace --locked; \
	  status=$$?; tests/testbed/mailhost.sh stop $(MAILHOST_DIR); exit $$status

deps:
	./scripts/install-deps.sh

# The tests drive the real `conclave` binary, so build it first.
build:
	$(CARGO) build --workspace --bins --locked

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## The fan-out benchmark: Conclave beside GnuPG, in one run.
bench: deps
	$(CARGO) bench -p conclave-tests --bench fanout --locked

clean:
	$(CARGO) clean
