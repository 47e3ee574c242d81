# The README's entry points as make targets.
#   make demo   the province lab: network namespaces, snmpsim agents, mosquitto and monitord,
#               with a live summary (root; Ctrl-C ends it and removes everything).
#               LAB_ARGS passes options to `monitord lab`, e.g. make demo LAB_ARGS="--kabupaten 6"
#   make test   ruff, mypy --strict and the whole test suite in an isolated network namespace

LAB_ARGS ?= --faults

.PHONY: demo test

demo:
	scripts/setup.sh --lab
	.venv/bin/monitord lab $(LAB_ARGS)

test:
	scripts/test.sh
