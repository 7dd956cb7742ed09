# minissl: two commands do everything on a fresh machine.
#   make book   set up .venv, execute the chapters (quick profile on a CPU) and render _build/html
#   make test   set up .venv, lint, run unit tests + doctests, nbval over every chapter, build the
#               book with -W, then open every page in headless Chromium (tests/test_browser.py)
# Both create the environment themselves; later runs reuse it (and the book's execution cache).
# Chapters are executed in parallel into Jupyter Book's cache (tools/execute_chapters.py), so
# the book build itself only renders; a chapter whose code did not change is not run again.
# In `make test`, nbval's executed notebooks (--save-executed) fill that cache: run once, not twice.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The torch pair that lies on this project's machines (a newer pin downloads gigabytes).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# pytest workers: notebooks and test modules run side by side (one notebook stays on one worker).
JOBS ?= 2
# Parallel steps give each process one thread: on a 2-core machine, two processes with two
# OpenMP threads each oversubscribe the cores and run many times slower, not faster.
PARALLEL_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# Pretrained runs that chapters, the benchmark page and `minissl bench` share (minissl.cache):
# kept inside the build folder, so that `make clean` empties it and a fresh clone starts empty.
export MINISSL_CACHE ?= $(CURDIR)/_build/cache
STAMP := $(VENV)/.minissl-installed
# Kernels come from .venv, even when the user has a "python3" kernel of another Python.
export JUPYTER_PREFER_ENV_PATH := 1

.PHONY: setup book test lint unit notebooks book-strict browser bench full-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet $(TORCH_PINS) -e ".[book,test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" > /dev/null
	touch $(STAMP)

book: setup
	$(PARALLEL_ENV) MINISSL_PROFILE=$${MINISSL_PROFILE:-quick} $(BIN)/python tools/execute_chapters.py
	$(BIN)/jupyter-book build . --builder html
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: setup
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory lint unit notebooks book-strict browser && \
	echo "make test: all passed in $$(( $$(date +%s) - start )) s"

lint: setup
	$(BIN)/ruff check minissl tests tools benchmarks chapters conftest.py

unit: setup
	MINISSL_CACHE=off $(PARALLEL_ENV) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope -q tests \
	  --ignore=tests/test_browser.py --doctest-modules minissl

notebooks: setup
	# The benchmark page first: it trains longest, beside the chapters on the other worker
	# (--no-loadscope-reorder keeps this order; by default xdist starts the notebooks with
	# the most cells first, which started the benchmark page only after most chapters).
	$(PARALLEL_ENV) MINISSL_PROFILE=quick $(BIN)/python -m pytest -n $(JOBS) --dist loadscope \
	  --no-loadscope-reorder -q \
	  --nbval-lax --nbval-current-env book/benchmark.ipynb chapters --save-executed _build/executed

book-strict: setup
	$(PARALLEL_ENV) MINISSL_PROFILE=quick $(BIN)/python tools/execute_chapters.py
	$(BIN)/jupyter-book build . --builder html -W -n --keep-going

# The built book in headless Chromium: Debian's chromium, and MathJax from npm, because the
# browser has no network and the book loads MathJax from a CDN (the test serves this copy).
browser: setup
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	command -v npm >/dev/null || (apt-get update && apt-get install -y npm)
	test -f _build/.browser/node_modules/mathjax/es5/tex-mml-chtml.js || \
	  npm install --prefix _build/.browser --no-audit --no-fund --no-save mathjax@3
	MINISSL_BOOK_REQUIRED=1 $(BIN)/python -m pytest -q tests/test_browser.py

# bench_steps.py compares against lightly (the `bench` extra), installed on first use.
bench: setup
	$(BIN)/python -c "import lightly" 2>/dev/null || \
	  $(BIN)/python -m pip install --quiet $(TORCH_PINS) -e ".[bench]"
	$(BIN)/python benchmarks/bench_augment.py
	$(BIN)/python benchmarks/bench_steps.py

# Every chapter in the full profile on tiny CIFAR-10 files with budgets cut down (minutes).
full-check: setup
	$(PARALLEL_ENV) $(BIN)/python tools/full_profile_check.py

clean:
	rm -rf _build
