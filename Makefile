# Two commands for a newcomer: `make demo` and `make test`. Both create .venv if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test bench bench-store bench-scale bench-ingest bench-ingest-scale bench-many bench-projection bench-hostile bench-postgres bench-join lint format install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -qq -e '.[test]'
	touch $@ $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/eventfold demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

# One table per performance goal, each figure beside its peer or baseline from the
# same run (docs/PERFORMANCE.md). The issue's sizes by default: about 20-25 minutes
# and, at the peak, about 8 GB of disk under $$TMPDIR. A quick look:
# make bench BENCH_SCALE=0.05 BENCH_REPEATS=1; some goals only: BENCH_GOALS=1,5.
BENCH_SCALE ?= 1
BENCH_GOALS ?= 1,2,3,4,5
BENCH_REPEATS ?= 3
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_goals.py --scale $(BENCH_SCALE) --goals $(BENCH_GOALS) \
		--repeats $(BENCH_REPEATS)

# The file store beside the library's recorders, then a larger store reopened.
bench-store: $(STAMP)
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_scale.py 200000

bench-hostile: $(STAMP)
	$(BIN)/python benchmarks/bench_hostile.py 300000

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py 2000000

bench-ingest: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py 200000

bench-projection: $(STAMP)
	$(BIN)/python benchmarks/bench_projection.py 1000000

# Partitioned ingest (1, 2, 4 partitions) and rebuild on PostgreSQL beside the file store,
# where the time goes, and an estimate for a machine per partition (docs/PERFORMANCE.md).
# 1,000,000 events over 8 gzip files: 6 to 10 minutes on 2 cores, and about 2 GB of disk
# (the server's WAL included). A quick look: make bench-postgres BENCH_PG_EVENTS=200000; on a
# noisy machine, BENCH_PG_REPEATS=3 keeps each configuration's median run (3 times longer).
# Starts (or reuses) a local PostgreSQL server with .ci/postgres-up first.
BENCH_PG_EVENTS ?= 1000000
BENCH_PG_REPEATS ?= 1
bench-postgres: $(TEST_STAMP)
	settings="$$(.ci/postgres-up)" && eval "$$settings" && \
		$(BIN)/python benchmarks/bench_postgres.py $(BENCH_PG_EVENTS) --repeats $(BENCH_PG_REPEATS)

# A partitioned ingest's join step as it maps rows, beside a join that copies them, on
# tables made with generate_series (a log of 875,000 events, a partition's 125,000 rows):
# under a minute.
bench-join: $(TEST_STAMP)
	settings="$$(.ci/postgres-up)" && eval "$$settings" && \
		$(BIN)/python benchmarks/bench_join.py

# 1,000,000 events as one file, as 200 gzip files and as 200 plain files; then
# 10,000 files of 20 events. About 300 MB of disk and a few minutes.
bench-many: $(STAMP)
	$(BIN)/python benchmarks/bench_many.py 1000000 200 --small 10000 20

bench-ingest-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py --scale 1000000 10000000

# mypy finds the package through a link named eventfold (the repository root
# is the package, which mypy cannot discover by itself). tests/ and benchmarks/
# are on MYPYPATH because their modules import each other by name, as they run.
# make format applies the formatter; make lint checks that it has been applied.
format: $(TEST_STAMP)
	$(BIN)/python -m pip install -qq 'ruff>=0.6'
	$(BIN)/ruff format .

lint: $(TEST_STAMP)
	$(BIN)/python -m pip install -qq 'ruff>=0.6' 'mypy>=1.10'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p $(VENV)/mypy-path
	ln -sfn "$(CURDIR)" $(VENV)/mypy-path/eventfold
	cd $(VENV) && MYPYPATH="mypy-path:$(CURDIR)/tests:$(CURDIR)/benchmarks" ../$(BIN)/python -m mypy \
		--config-file "$(CURDIR)/pyproject.toml" -p eventfold

clean:
	rm -rf $(VENV) build dist *.egg-info
