# Each target installs what it needs on a bare Debian machine (run as root):
# the test bed installs Debian packages and starts the daemons; .venv holds
# the Python dependencies.  See README.md.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
BED := $(PYTHON) -m remote_docker testbed

.PHONY: demo test unit bench testbed testbed-down venv clean

$(VPY): pyproject.toml
	$(BED) up
	/usr/bin/python3 -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[dev]'
	touch $(VPY)

venv: $(VPY)

testbed:
	$(BED) up

testbed-down:
	$(BED) down

demo: $(VPY) testbed
	$(VPY) -m remote_docker.demo

test: $(VPY) testbed
	$(VPY) -m pytest -q -p no:cacheprovider tests

unit: $(VPY)
	$(VPY) -m pytest -q -p no:cacheprovider tests/unit

bench: $(VPY) testbed
	$(VPY) bench/run.py

clean:
	rm -rf $(VENV) *.egg-info
