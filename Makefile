# The README's commands. `make run` starts the chat UI; `make test` runs every test.
# Both install what they need first (a venv in .venv, pinned packages, Chromium for the UI test).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# llama-cpp-python compiles llama.cpp for this CPU (-march=native), minus AMX: these VMs' CPUs
# advertise AMX but the kernel does not enable it, and the first AMX instruction (ldtilecfg)
# kills the process. The wheel is built once per machine into a cache keyed by these flags.
LLAMA_VERSION := 0.3.36
LLAMA_WHEELS := $(HOME)/.cache/rag-wheels/llama-cpp-python-$(LLAMA_VERSION)-noamx
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16

.PHONY: setup system-deps run test bench eval eval-time eval-external

setup: $(STAMP)

$(STAMP): requirements.lock.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and alone: torch==2.13.0 is the CPU build; anything else pulls a CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	ls $(LLAMA_WHEELS)/*.whl >/dev/null 2>&1 || CMAKE_ARGS="-DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'" \
		$(PY) -m pip wheel --quiet --no-deps --no-cache-dir -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	$(PY) -m pip install --quiet --no-deps $(LLAMA_WHEELS)/*.whl
	$(PY) -m pip install --quiet -r requirements.lock.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

system-deps:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

run: setup
	$(VENV)/bin/rag ingest
	$(PY) app.py

test: setup system-deps
	$(PY) -m pytest -q

bench: setup
	$(PY) -m bench --shared-bench $(SHARED_BENCH)

eval: setup
	$(VENV)/bin/rag eval --questions eval/questions.jsonl --out eval-out

# the time set on the bundled corpus: each question asked as of its question_date (issue 23)
eval-time: setup
	$(VENV)/bin/rag eval --corpus corpus --questions eval/questions-time.jsonl --out eval-out-time

# the team's development sets (../shared/bench, not part of a user's clone): both, one report
SHARED_BENCH ?= ../shared/bench
eval-external: setup
	@if [ ! -d "$(SHARED_BENCH)/rtqa-dev" ] || [ ! -d "$(SHARED_BENCH)/xlqa-dev" ]; then \
		echo "eval-external: $(SHARED_BENCH) with rtqa-dev and xlqa-dev is not here (it is the team's development data, not part of a clone); nothing was run."; \
	else \
		for s in rtqa-dev xlqa-dev; do \
			$(VENV)/bin/rag eval --corpus $(SHARED_BENCH)/$$s/corpus --questions $(SHARED_BENCH)/$$s/questions.jsonl \
				--judge-labels eval/judge_labels.jsonl --out eval-external/$$s || exit 1; done && \
		$(PY) -m rag.evaluate combine eval-external/report.md eval-external/rtqa-dev eval-external/xlqa-dev; \
	fi
