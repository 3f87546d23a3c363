#!/usr/bin/env bash
# Install kelly-edge as a service on a Raspberry Pi (Raspberry Pi OS / Debian):
#   - the package, in a venv at /opt/kelly-edge/venv (it sees apt's python3-lgpio / python3-rpi.gpio)
#   - the user kelly-edge, in the audio and gpio groups
#   - /etc/kelly-edge/config.yaml (from config/default.yaml; an existing one is never replaced)
#   - /etc/systemd/system/kelly-edge.service, enabled at boot
#   - optionally (--performance-governor) a unit that sets the CPU governor to performance at boot
#
# Idempotent: every step compares before it changes anything, and a second run reports
# "0 changes". Run as root from the source tree:  sudo tools/install-pi.sh [options]
#
# Options:
#   --root DIR               install into DIR instead of / (staging, tests; also ROOT=DIR)
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

USER_NAME=kelly-edge
PREFIX=/opt/kelly-edge
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
    --python) PYTHON="$2"; shift 2 ;;
    --package-from) PACKAGE_FROM="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-pi.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

ROOT="${ROOT%/}"  # "" means the real system
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

# --- 1. groups and the service user --------------------------------------------------------------
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

# --- 2. the package ----------------------------------------------------------------------------
source_stamp() {
  if [ -n "$PACKAGE_FROM" ]; then
    if [ -f "$PACKAGE_FROM" ]; then sha256sum "$PACKAGE_FROM" | cut -d' ' -f1; else printf '%s\n' "$PACKAGE_FROM"; fi
    return
  fi
  (cd "$SRC" && find pyproject.toml README.md kelly_edge -type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null \
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
        # build from a clean copy: no build/ or egg-info left in the source tree
        (cd "$SRC" && tar cf - --exclude=__pycache__ --exclude='*.pyc' \
          pyproject.toml kelly_edge $( [ -f README.md ] && echo README.md )) | tar xf - -C "$spec"
      fi
      # shellcheck disable=SC2086
      "$(R "$VENV/bin/python")" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "$spec"
      printf '%s\n' "$want" > "$stamp_file"
    fi
  fi
fi

# --- 3. config, unit, governor -------------------------------------------------------------------
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
