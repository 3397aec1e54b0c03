# t2i: make install && make train   |   make test
PY ?= .venv/bin/python
PIP ?= .venv/bin/pip

.PHONY: install train test test-full lint figures clean

install:  ## virtual environment + pinned requirements
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt

train:  ## the embedded default: text-to-image GAN-CLS on captioned shapes, a fixed 2700 steps (4-8 CPU minutes)
	$(PY) train.py

test:  ## fast suite (slow tests skipped), one worker per core; prints the 10 slowest tests
	$(PY) -m pytest -q -m "not slow" -n 2 --durations=10

test-full:  ## everything, slow tests included
	$(PY) -m pytest -q -n 2 --durations=10

lint:  ## ruff over every Python file in the repository
	$(PY) -m ruff check .

figures:  ## the README's picture (the default run's captions.png) and the unconditional DCGAN's samples (~7 CPU min)
	$(PY) train.py hydra.run.dir=outputs/figures/default
	$(PY) train.py experiment=shapes_dcgan hydra.run.dir=outputs/figures/shapes_dcgan
	mkdir -p docs/images
	cp outputs/figures/default/captions.png docs/images/default_run_captions.png
	cp outputs/figures/shapes_dcgan/samples.png docs/images/shapes_dcgan_samples.png

clean:
	rm -rf outputs multirun .cache .pytest_cache .ruff_cache lightning_logs wandb
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
