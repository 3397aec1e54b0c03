# t2i: make install && make train   |   make test
PY ?= .venv/bin/python
PIP ?= .venv/bin/pip

.PHONY: install train test test-full lint clean

install:  ## virtual environment + pinned requirements
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt

train:  ## the embedded default: DCGAN on generated shapes, a few CPU minutes
	$(PY) train.py

test:  ## fast suite (slow tests skipped)
	$(PY) -m pytest -q -m "not slow"

test-full:  ## everything, slow tests included
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check t2i tests train.py evaluate.py

clean:
	rm -rf outputs multirun .cache .pytest_cache .ruff_cache lightning_logs wandb
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
