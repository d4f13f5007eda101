#!/usr/bin/env bash
# An OS keyring for Conclave's tests: a private D-Bus session bus with GNOME
# Keyring's Secret Service on it, unlocked, its storage in a scratch folder.
# The app and the CLI find it through DBUS_SESSION_BUS_ADDRESS, as they find
# the desktop's keyring on an owner's machine.
#
#   keyring.sh start   [DIR]  install missing packages, (re)start the bus and the keyring,
#                             wait until the Secret Service answers; prints the bus address
#   keyring.sh stop    [DIR]  stop both, remove DIR
#   keyring.sh address [DIR]  print the bus address (exit 1 if not running)
#
# DIR (default /tmp/conclave-keyring) holds the bus socket, the pids, the logs and
# the keyring files. The keyring's password is "conclave-test"; it holds only
# test passwords, and is wiped on every start.
set -euo pipefail

CMD="${1:-}"
DIR="${2:-/tmp/conclave-keyring}"
BUS="unix:path=$DIR/bus"
PACKAGES=(dbus-daemon dbus-bin gnome-keyring)

die() { echo "keyring.sh: $*" >&2; exit 1; }

running() {
  [[ -S "$DIR/bus" ]] &&
    DBUS_SESSION_BUS_ADDRESS="$BUS" dbus-send --session --print-reply \
      --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
      string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true"
}

stop() {
  for p in keyring dbus; do
    if [[ -f "$DIR/$p.pid" ]]; then
      kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
    fi
  done
  sleep 0.2
  rm -rf "$DIR"
}

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    [[ $EUID -eq 0 ]] || die "missing packages: ${missing[*]} (run as root to install them)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

start() {
  install_missing
  stop
  mkdir -p "$DIR/data" "$DIR/run"
  chmod 700 "$DIR" "$DIR/run"
  dbus-daemon --session --address="$BUS" --fork --print-pid=3 3>"$DIR/dbus.pid" \
    >"$DIR/dbus.log" 2>&1 || die "dbus-daemon did not start: $(cat "$DIR/dbus.log")"
  printf 'conclave-test' |
    DBUS_SESSION_BUS_ADDRESS="$BUS" XDG_DATA_HOME="$DIR/data" XDG_RUNTIME_DIR="$DIR/run" \
      HOME="$DIR" setsid gnome-keyring-daemon --foreground --unlock --components=secrets \
      >"$DIR/keyring.log" 2>&1 &
  echo $! >"$DIR/keyring.pid"
  for _ in $(seq 100); do
    running && { echo "$BUS"; return 0; }
    sleep 0.1
  done
  die "the Secret Service did not come up: $(cat "$DIR/keyring.log")"
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  address) running && echo "$BUS" ;;
  *) die "usage: keyring.sh start|stop|address [DIR]" ;;
esac
