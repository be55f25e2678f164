# paddle-canary: `make demo` runs a compressed release; `make test` runs the tests.
# Both create .venv and install what is missing (OS packages included) on Debian.

PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
APT_PKGS := nginx prometheus prometheus-alertmanager wrk luajit docker.io debootstrap docker-registry docker-compose chromium
EXTRAS  := serve,train,analysis,k8s,validate,airflow,docker,dev
# The browser tests drive Debian's chromium (APT_PKGS): Playwright never downloads a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: demo test test-fast os-deps venv bench lock clean up down docker-base compose-up compose-down compose-demo

os-deps:
	@missing=""; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v amtool >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v luajit >/dev/null || missing="$$missing luajit"; \
	command -v dockerd >/dev/null || missing="$$missing docker.io"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing OS packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: need root to apt-get install$$missing"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

# pip's editable build leaves an egg-info in plugins/, which is on sys.path beside the installed
# dist-info: Airflow then finds the plugin's entry point twice ("Plugin 'paddle_canary' already
# registered", shown as a Plugin Import Error in the UI). The dist-info is the one that counts.
venv: $(STAMP)
	@rm -rf plugins/paddle_canary.egg-info

test: os-deps venv
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not slow"

demo: os-deps venv
	$(PY) scripts/demo.py

# The offline CPU base image in $DOCKER_HOST's engine (`paddle-canary dockerd start` runs one).
docker-base: os-deps venv
	$(PY) -m paddle_canary.cli image base

bench: os-deps venv
	$(PY) bench/serving.py
	$(PY) bench/traffic.py
	$(PY) bench/detection.py
	$(PY) bench/release.py
	$(PY) bench/images.py
	$(PY) bench/validation.py
	$(PY) bench/faults.py

up: os-deps venv
	$(PY) -m paddle_canary.cli stack up

down: venv
	$(PY) -m paddle_canary.cli stack down

# docker-compose.yaml: .env (random secrets, 0600), images built locally, up -d, wait healthy.
# The engine: $$DOCKER_HOST, else /var/run/docker.sock, else our own (paddle-canary dockerd start).
compose-up: os-deps venv
	$(PY) -m paddle_canary.compose up

# Also removes the containers releases started; down -v leaves no container, network or volume.
compose-down: venv
	$(PY) -m paddle_canary.compose down

# make demo's releases on the compose stack (its own project, free ports), then down -v.
compose-demo: os-deps venv
	$(PY) scripts/compose_demo.py

clean:
	rm -rf var build .pytest_cache
