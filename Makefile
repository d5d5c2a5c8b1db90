# Convenience aliases for the README's two commands (./run.sh and ./test.sh).
.PHONY: setup run test bench clean
setup: ; scripts/setup.sh
run: ; ./run.sh $(ARGS)
test: ; ./test.sh $(ARGS)
bench: setup
	.venv/bin/python bench/ser_latency.py
	.venv/bin/python bench/turn_latency.py
clean: ; rm -rf .venv .cache build *.egg-info
