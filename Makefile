# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test setup clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# pyrender (the tests' OpenGL reference) pins PyOpenGL 3.1.0, whose EGL/OSMesa import is broken: its
	# dependencies are in requirements.txt (PyOpenGL 3.1.10), and it is installed without them.
	$(PY) -m pip install --quiet --no-deps pyrender==0.1.45
	$(PY) -m pip install --quiet --no-deps -e .
	# MediaPipe's hand models (from the mediapipe 0.10.21 wheel on PyPI) packed for HandLandmarker: hands.fit.
	$(PY) scripts/setup_landmarker.py
	@touch $(STAMP)

# The fit front end on the fixture photos (or synthetic two-hand renders) -> outputs/demo/; OVERWRITE=1 replaces it.
demo: $(STAMP)
	$(PY) -m hands showcase --out outputs/demo $(if $(OVERWRITE),--overwrite)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
