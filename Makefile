# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test setup browser app clean-venv

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

# The browser app on http://127.0.0.1:7860 (hands app --help for its flags; APP_ARGS passes them).
app: $(STAMP)
	$(PY) -m hands app $(APP_ARGS)

# Debian's Chromium for the browser test (tests/test_app_browser.py; Playwright cannot download its own here). Needs root.
browser:
	@test -x /usr/bin/chromium || DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	@/usr/bin/chromium --version

clean-venv:
	rm -rf $(VENV)
