#!/usr/bin/env bash
# Install kelly-edge as a service on a Raspberry Pi (64-bit Raspberry Pi OS bookworm / Debian):
#   - the Debian packages it needs, when missing (pyaudio's build: portaudio19-dev python3-dev gcc;
#     python3-venv; the ALSA and JACK libraries; python3-lgpio where the archive has it)
#   - the package with its trained models, in a venv at /opt/kelly-edge/venv (it sees apt's
#     python3-lgpio; without that, pip's lgpio goes into the venv), and /usr/local/bin/kelly-edge
#   - the user kelly-edge, in the audio and gpio groups
#   - /etc/kelly-edge/config.yaml (from config/default.yaml; an existing one is never replaced)
#   - /etc/systemd/system/kelly-edge.service, enabled at boot
#   - optionally (--performance-governor) a unit that sets the CPU governor to performance at boot
#   - the user who ran it with sudo ($SUDO_USER) in the kelly-edge group, so `kelly-edge status`
#     and `kelly-edge monitor` reach the service's socket from the next login (a new SSH session)
# A 32-bit userland (armhf, also on a 64-bit kernel) is refused: the TFLite interpreter has no
# 32-bit ARM build; flash 64-bit Raspberry Pi OS.
#
# Idempotent: every step compares before it changes anything, and a second run reports
# "0 changes"; a run stopped partway (no network, say) is finished by running it again.
# Run as root from the source tree:  sudo tools/install-pi.sh [options]
#
# Options:
#   --root DIR               install into DIR instead of / (staging, tests; also ROOT=DIR). The
#                            Debian packages are still those of this machine, where the venv is built
#   --no-apt                 do not install Debian packages (say which are missing)
#   --no-gpio                no gpio backend (lgpio) in the venv: a box without footswitches/LEDs
#   --dry-run                say what would change, change nothing
#   --performance-governor   also install and enable kelly-edge-cpufreq.service
#   --no-package             skip the venv / pip step
#   --package-from SPEC      pip install SPEC (a wheel, or anything pip takes) instead of this tree
#   --python PY              interpreter for the venv (default: python3)
# Environment: PIP_ARGS  extra arguments for pip install (e.g. "--no-deps --no-index" offline).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="${ROOT:-/}"
DRY_RUN=0
GOVERNOR=0
PACKAGE=1
PYTHON="${PYTHON:-python3}"
PIP_ARGS="${PIP_ARGS:-}"
PACKAGE_FROM=""
APT=1
GPIO=1

USER_NAME=kelly-edge
PREFIX=/opt/kelly-edge
BIN_LINK=/usr/local/bin/kelly-edge
VENV="$PREFIX/venv"
CONF_DIR=/etc/kelly-edge
UNIT_DIR=/etc/systemd/system
WANTS="$UNIT_DIR/multi-user.target.wants"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --root=*) ROOT="${1#*=}"; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --performance-governor) GOVERNOR=1; shift ;;
    --no-package) PACKAGE=0; shift ;;
    --no-apt) APT=0; shift ;;
    --no-gpio) GPIO=0; shift ;;
    --python) PYTHON="$2"; shift 2 ;;
    --package-from) PACKAGE_FROM="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-pi.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

ROOT="${ROOT%/}"  # "" means the real system
umask 022  # the venv must be readable by the login user (kelly-edge status), whatever sudo's umask
R() { printf '%s%s' "$ROOT" "$1"; }
CHANGES=0

say() { printf '%s\n' "$*"; }
changed() {
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then say "would: $*"; else say "changed: $*"; fi
}
run() { if [ "$DRY_RUN" = 0 ]; then "$@"; fi; }

if [ "$(id -u)" != 0 ] && [ "$DRY_RUN" = 0 ]; then
  echo "install-pi.sh: run as root (sudo), or with --dry-run to see what it would do" >&2
  exit 1
fi
[ -f "$SRC/pyproject.toml" ] && [ -f "$SRC/systemd/kelly-edge.service" ] || {
  echo "install-pi.sh: run it from a kelly-edge source tree ($SRC has no pyproject.toml)" >&2; exit 1; }
command -v "$PYTHON" >/dev/null || {
  echo "install-pi.sh: no $PYTHON here: apt-get install python3 (or give --python)" >&2; exit 1; }

# --- 0. a 64-bit userland ------------------------------------------------------------------------
# The userland, not the kernel: 32-bit Raspberry Pi OS boots a 64-bit kernel on a Pi 4/5, so
# `uname -m` says aarch64 while dpkg and python are armhf and pip looks for armv7l wheels.
arch="$(dpkg --print-architecture 2>/dev/null || true)"
bits="$("$PYTHON" -c 'import struct; print(struct.calcsize("P") * 8)' 2>/dev/null || true)"
case "$arch" in ""|amd64|arm64) ;; *) bits=32 ;; esac
if [ "$bits" = 32 ]; then
  echo "install-pi.sh: this is a 32-bit system (userland ${arch:-$bits-bit}, kernel $(uname -m)); kelly-edge needs 64-bit Raspberry Pi OS (bookworm, arm64): flash that image and run this again" >&2
  exit 1
fi

# --- 1. Debian packages --------------------------------------------------------------------------
# pyaudio builds from source (portaudio19-dev python3-dev gcc); python-rtmidi and JACK-Client load
# libasound/libjack at run time. The gpio backend: apt's python3-lgpio when the archive has it
# (Raspberry Pi OS does, Debian does not), else pip's lgpio (aarch64 wheels) in the venv (step 3).
# "a|b": either will do (trixie renamed libasound2 to libasound2t64); the first is installed.
DEBS=(python3-venv python3-dev gcc portaudio19-dev "libasound2|libasound2t64" libjack-jackd2-0)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }' | grep -qv '^(none)$'; }
any_installed() { local IFS='|' p; for p in $1; do installed "$p" && return 0; done; return 1; }
missing=()
for p in "${DEBS[@]}"; do any_installed "$p" || missing+=("${p%%|*}"); done
if [ "$GPIO" = 1 ] && ! installed python3-lgpio && candidate python3-lgpio; then missing+=(python3-lgpio); fi
if [ ${#missing[@]} -eq 0 ]; then
  say "ok: Debian packages"
elif [ "$APT" = 0 ]; then
  say "skipped: Debian packages (--no-apt); missing here: ${missing[*]}"
else
  changed "apt-get install ${missing[*]}"
  if [ "$DRY_RUN" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

shadow_prefix=()
[ -n "$ROOT" ] && shadow_prefix=(--prefix "$ROOT")

gid_of() { awk -F: -v g="$1" '$1 == g { print $3 }' "$(R /etc/group)"; }
uid_of() { awk -F: -v u="$1" '$1 == u { print $3 }' "$(R /etc/passwd)"; }
in_group() { awk -F: -v g="$2" -v u="$1" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) f = 1 } END { exit !f }' "$(R /etc/group)"; }

# install_file SRC DEST MODE [GROUP]: copy when missing or different (content, mode, group)
install_file() {
  local src="$1" dest; dest="$(R "$2")"; local mode="$3" group="${4:-root}"
  local gid; gid="$(gid_of "$group")"; gid="${gid:-0}"
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c '%a %g' "$dest")" = "${mode#0} $gid" ]; then
    say "ok: $2"
    return
  fi
  changed "install $2"
  run install -D -m "$mode" -o 0 -g "$gid" "$src" "$dest"
}

# enable UNIT: the symlink systemctl enable would make (works offline, in --root too)
enable_unit() {
  local link; link="$(R "$WANTS/$1")"
  if [ "$(readlink "$link" 2>/dev/null || true)" = "$UNIT_DIR/$1" ]; then
    say "ok: $1 enabled"
    return
  fi
  changed "enable $1"
  run mkdir -p "$(dirname "$link")"
  run ln -sfn "$UNIT_DIR/$1" "$link"
}

# --- 2. groups, the service user, the sudo user --------------------------------------------------------------
for group in audio gpio "$USER_NAME"; do
  if [ -n "$(gid_of "$group")" ]; then
    say "ok: group $group"
  else
    changed "create group $group"
    run groupadd "${shadow_prefix[@]}" --system "$group"
  fi
done
if [ -n "$(uid_of "$USER_NAME")" ]; then
  say "ok: user $USER_NAME"
else
  changed "create user $USER_NAME"
  run useradd "${shadow_prefix[@]}" --system --gid "$USER_NAME" --no-create-home \
    --home-dir /var/lib/kelly-edge --shell /usr/sbin/nologin --comment "kelly-edge stomp-box" "$USER_NAME"
fi
for group in audio gpio; do
  if in_group "$USER_NAME" "$group"; then
    say "ok: $USER_NAME in $group"
  else
    changed "add $USER_NAME to $group"
    run usermod "${shadow_prefix[@]}" --append --groups "$group" "$USER_NAME"
  fi
done
# the socket folder /run/kelly-edge is 0750 group kelly-edge: its members may read the status
LOGIN_USER="${SUDO_USER:-}"
if [ -n "$LOGIN_USER" ] && [ "$LOGIN_USER" != root ]; then
  if [ -z "$(uid_of "$LOGIN_USER")" ]; then
    say "skipped: $LOGIN_USER is not a user in $(R /etc/passwd); not added to $USER_NAME"
  elif in_group "$LOGIN_USER" "$USER_NAME"; then
    say "ok: $LOGIN_USER in $USER_NAME"
  else
    changed "add $LOGIN_USER to $USER_NAME (kelly-edge status/monitor from the next login)"
    run usermod "${shadow_prefix[@]}" --append --groups "$USER_NAME" "$LOGIN_USER"
  fi
fi

# --- 3. the package, the gpio backend, the command on PATH ----------------------------------------------------------------------------
source_stamp() {
  if [ -n "$PACKAGE_FROM" ]; then
    if [ -f "$PACKAGE_FROM" ]; then sha256sum "$PACKAGE_FROM" | cut -d' ' -f1; else printf '%s\n' "$PACKAGE_FROM"; fi
    return
  fi
  (cd "$SRC" && find pyproject.toml README.md kelly_edge models_tflite -type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null \
    | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
}
if [ "$PACKAGE" = 1 ]; then
  stamp_file="$(R "$VENV/.kelly-edge-source")"
  want="$(source_stamp)"
  if [ -x "$(R "$VENV/bin/python")" ] && [ "$(cat "$stamp_file" 2>/dev/null || true)" = "$want" ]; then
    say "ok: package in $VENV"
  else
    changed "install the package into $VENV"
    if [ "$DRY_RUN" = 0 ]; then
      [ -x "$(R "$VENV/bin/python")" ] || "$PYTHON" -m venv --system-site-packages "$(R "$VENV")"
      spec="$PACKAGE_FROM"
      if [ -z "$spec" ]; then
        spec="$(mktemp -d)"
        trap 'rm -rf "$spec"' EXIT
        # build from a clean copy: no build/ or egg-info left in the source tree. models_tflite/
        # comes too: kelly_edge/models_tflite links to it, and the wheel gets the files themselves
        (cd "$SRC" && tar cf - --exclude=__pycache__ --exclude='*.pyc' \
          pyproject.toml kelly_edge models_tflite $( [ -f README.md ] && echo README.md )) | tar xf - -C "$spec"
      fi
      # shellcheck disable=SC2086
      "$(R "$VENV/bin/python")" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "$spec"
      printf '%s\n' "$want" > "$stamp_file"
    fi
  fi
  if [ "$GPIO" = 1 ]; then
    # lgpio leaves a FIFO (.lgd-nfy*) in its working folder on import: check from a scratch one
    lg_wd="$(mktemp -d)"
    if [ -x "$(R "$VENV/bin/python")" ] && (cd "$lg_wd" && LG_WD="$lg_wd" "$(R "$VENV/bin/python")" -c 'import lgpio' 2>/dev/null); then
      say "ok: gpio backend (lgpio)"
    else
      changed "pip install lgpio into $VENV (gpio backend)"
      # shellcheck disable=SC2086
      run "$(R "$VENV/bin/python")" -m pip install --quiet --disable-pip-version-check $PIP_ARGS lgpio
    fi
    rm -rf "$lg_wd"
  fi
  link="$(R "$BIN_LINK")"
  if [ "$(readlink "$link" 2>/dev/null || true)" = "$VENV/bin/kelly-edge" ]; then
    say "ok: $BIN_LINK"
  elif [ -e "$link" ] || [ -L "$link" ]; then
    say "kept: $BIN_LINK is not ours (run $VENV/bin/kelly-edge, or remove it and run this again)"
  else
    changed "link $BIN_LINK -> $VENV/bin/kelly-edge"
    run mkdir -p "$(dirname "$link")"
    run ln -s "$VENV/bin/kelly-edge" "$link"
  fi
fi

# --- 4. config, unit, governor -------------------------------------------------------------------
conf="$(R "$CONF_DIR/config.yaml")"
if [ -f "$conf" ]; then
  say "ok: $CONF_DIR/config.yaml (kept as it is)"
else
  install_file "$SRC/config/default.yaml" "$CONF_DIR/config.yaml" 0640 "$USER_NAME"
fi
if [ "$(stat -c '%a' "$(R "$CONF_DIR")" 2>/dev/null || true)" != 755 ] && [ -d "$(R "$CONF_DIR")" ]; then
  changed "chmod 755 $CONF_DIR"
  run chmod 755 "$(R "$CONF_DIR")"
fi

install_file "$SRC/systemd/kelly-edge.service" "$UNIT_DIR/kelly-edge.service" 0644
enable_unit kelly-edge.service

if [ "$GOVERNOR" = 1 ]; then
  governor_unit="$(mktemp)"
  cat > "$governor_unit" <<'EOF'
# Installed by kelly-edge's tools/install-pi.sh: steady CPU clocks keep the 10 ms hop on time.
[Unit]
Description=CPU frequency governor: performance (for kelly-edge)
Before=kelly-edge.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'for g in /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor; do [ -w "$g" ] && echo performance > "$g"; done; exit 0'
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
EOF
  install_file "$governor_unit" "$UNIT_DIR/kelly-edge-cpufreq.service" 0644
  rm -f "$governor_unit"
  enable_unit kelly-edge-cpufreq.service
fi

# --- done -----------------------------------------------------------------------------------------
if [ "$CHANGES" -gt 0 ] && [ -z "$ROOT" ] && [ "$DRY_RUN" = 0 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  say "systemd reloaded; start with: systemctl start kelly-edge (or reboot)"
fi
if [ "$DRY_RUN" = 1 ]; then
  say "$CHANGES changes would be made"
else
  say "$CHANGES changes"
fi
