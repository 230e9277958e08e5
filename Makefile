# The two commands of the README:
#   make demo   synthesise a small dataset, run the nnU-Net example pipeline, write previews to demo-out/
#   make test   build, then run every C test (CTest) and Python test (pytest)
BUILD ?= build
PYTHON ?= python3
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
export PATH := $(PATH):/usr/local/cuda/bin

.PHONY: all setup build test test-c test-python demo clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@MAKEFLAGS= cmake --build $(BUILD) -j$(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)
	VP_CLI=$(CURDIR)/$(BUILD)/bin/voxpipe PYTHONPATH=$(CURDIR)/python $(PYTHON) -m pytest -q tests/python

demo: build
	@BUILD=$(BUILD) scripts/demo.sh

clean:
	rm -rf $(BUILD) demo-out
