# kelly-edge: two commands set up a fresh Debian / Raspberry Pi OS machine.
#   make demo   installs into .venv/ and runs the main job (demo recording -> out/demo.mid + report)
#   make test   installs the test extras and runs the whole test suite
# Both install missing Debian packages first (apt-get, via sudo when not root).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
OUT    := out

# Building pyaudio needs PortAudio's headers; python-rtmidi's wheel needs ALSA/JACK at run time.
RUNTIME_DEBS := portaudio19-dev libasound2 python3-venv python3-dev gcc
# The tests render real pieces (fluidsynth + a GM soundfont) and drive a real JACK server (dummy driver);
# the `pi` tests build a Debian arm64 userland (debootstrap) and run the demo in it (qemu-user).
TEST_DEBS    := fluidsynth fluid-soundfont-gm jackd2 libjack-jackd2-0 tmux systemd qemu-user-static debootstrap
# The evaluation's real recordings (tools/evaluate/recordings.py): Warzone 2100's soundtracks.
TEST_DEBS    += warzone2100-music
# The beat tracker's real-music tuning set (tools/evaluate --groups real-dev): other games' music, not in the suite.
EVAL_DEBS    := hyperrogue-music singularity-music asc-music nexuiz-music wesnoth-1.16-music

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# installed = "install ok installed" (dpkg -s also succeeds for removed packages that left config files)
installed = dpkg-query -W -f='$${Status}' $(1) 2>/dev/null | grep -q 'install ok installed'

.PHONY: demo test test-pi models bench evaluate eval-deps system-deps test-system-deps venv test-venv clean

demo: venv
	@mkdir -p $(OUT)
	$(VENV)/bin/kelly-edge run --input kelly_edge/data/demo.wav --midi-out $(OUT)/demo.mid --report $(OUT)/demo-report.json --plot $(OUT)/demo.png --player-chords kelly_edge/data/demo-chords.json
	@echo "wrote $(OUT)/demo.mid, $(OUT)/demo-report.json and $(OUT)/demo.png"

test: test-venv
	$(PY) -m pytest -q

# How well it plays along (README): the full table, with the transcription ceiling.
evaluate: eval-deps
	$(PY) -m tools.evaluate --out $(OUT)/evaluate

eval-deps: test-venv
	@missing=$$(for p in $(EVAL_DEBS); do $(call installed,$$p) || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing Debian packages:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi
	$(PIP) install -q -e '.[test,evaluate]'
	$(PIP) install -q --no-deps basic-pitch==0.4.0

# only what a Pi owner installs: wheel, installer, aarch64 under qemu, offline reproducibility
test-pi: test-venv
	$(PY) -m pytest -q -m pi

models: test-venv
	$(PY) -m tools.train all --out models_tflite

system-deps:
	@missing=$$(for p in $(RUNTIME_DEBS); do $(call installed,$$p) || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing Debian packages:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

test-system-deps: system-deps
	@missing=$$(for p in $(TEST_DEBS); do $(call installed,$$p) || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing Debian packages:" $$missing; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: system-deps $(VENV)/bin/python
	$(PIP) install -q -e '.[plot]'

test-venv: test-system-deps $(VENV)/bin/python
	$(PIP) install -q -e '.[test,train,plot]'

clean:
	rm -rf $(OUT) build *.egg-info .pytest_cache
