#!/usr/bin/env bash
# Virtual OpenPGP card for Conclave's card tests: pcscd + vsmartcard's vpcd +
# conclave-vcard (opcard on a software Trussed platform, see vcard/README.md).
#
#   card.sh start  [DIR]  install missing packages, build the card if needed, (re)start
#                         pcscd and the card, wait until the card is present
#   card.sh stop   [DIR]  stop the card and pcscd
#   card.sh eject  [DIR]  stop only the card process (the card is pulled out)
#   card.sh insert [DIR]  start the card again on the same state (restarts pcscd too
#                         if it died), wait until it is present
#   card.sh status [DIR]  exit 0 if the card is present, 1 if not
#   card.sh reset  [DIR]  stop the card, wipe its state, start a fresh card
#                         (default PINs: user 123456, admin 12345678)
#
# DIR (default /tmp/conclave-card) holds pcscd.pid, pcscd.log, card.pid, card.log,
# build.log and state/ (the card's storage; it survives stop/eject/start).
# The card is "Virtual PCD 00 00" (vpcd port 35963); its ident is
# FFFF:<serial>, serial from $CONCLAVE_CARD_SERIAL (8 hex digits, default 00000001).
# $CONCLAVE_CARD_TIMEOUT: seconds to wait for the card (default 30).
# $CONCLAVE_CARD_DEBUG=1: pcscd --debug and a card log of every command.
# Needs root (pcscd's socket lives in /run/pcscd). Only one such card per machine:
# there is one pcscd, and vpcd's reader 0 takes one card.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VCARD="$HERE/vcard"
BIN="$VCARD/target/release/conclave-vcard"
PORT=35963
READER="Virtual PCD 00 00"
SERIAL="${CONCLAVE_CARD_SERIAL:-00000001}"
TIMEOUT="${CONCLAVE_CARD_TIMEOUT:-30}"
DEBUG="${CONCLAVE_CARD_DEBUG:-0}"
PACKAGES=(pcscd libpcsclite-dev pcsc-tools vsmartcard-vpcd opensc)

CMD="${1:-}"
DIR="${2:-/tmp/conclave-card}"

die() { echo "card.sh: $*" >&2; exit 1; }
note() { echo "card.sh: $*" >&2; }

# --- processes -------------------------------------------------------------

# cmdline of a live process (empty for a zombie or a missing pid)
cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true; }

# pid from pidfile $1 if that process is alive and its command line contains $2
live_pid() {
    local pid
    [ -s "$1" ] || return 1
    pid="$(cat "$1")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$(cmdline "$pid")" == *"$2"* ]] || return 1
    echo "$pid"
}

# stop pid $1 (TERM, then KILL after 5 s) and wait until it is gone
kill_pid() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        [ -n "$(cmdline "$pid")" ] || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 20); do
        [ -n "$(cmdline "$pid")" ] || return 0
        sleep 0.1
    done
}

# stop the process in pidfile $1 (if it is still the one matching $2)
stop_pidfile() {
    local pid
    if pid="$(live_pid "$1" "$2")"; then kill_pid "$pid"; fi
    rm -f "$1"
}

# spawn PIDFILE LOG CMD...: run CMD detached (own session, no inherited stdio),
# appending its output to LOG and writing its pid to PIDFILE
spawn() {
    local pidfile="$1" log="$2"
    shift 2
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # expanded by the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$log" 2>&1 &
    local i
    for i in $(seq 50); do
        [ -s "$pidfile" ] && return 0
        sleep 0.1
    done
    die "could not start $*"
}

# --- pcscd and vpcd --------------------------------------------------------

port_listening() {
    local hex
    hex="$(printf '%04X' "$PORT")"
    # local_address is field 2 (ADDR:PORT), st is field 4 (0A = LISTEN)
    awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p && $4 == "0A" { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

pcscd_alive() { live_pid "$DIR/pcscd.pid" pcscd >/dev/null; }

# pcscd processes that are not ours (a system one, or one from another DIR)
foreign_pcscd() {
    local p ours=""
    ours="$(live_pid "$DIR/pcscd.pid" pcscd || true)"
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        [ "$p" != "$ours" ] || continue
        [ "$(cat "/proc/$p/comm" 2>/dev/null || true)" = pcscd ] || continue
        [ -n "$(cmdline "$p")" ] || continue
        echo "$p"
    done
}

start_pcscd() {
    local p args
    stop_pidfile "$DIR/pcscd.pid" pcscd
    for p in $(foreign_pcscd); do
        args="$(cmdline "$p")"
        if [ "${args% }" = "pcscd --foreground" ] || [ "${args% }" = "pcscd --foreground --debug" ]; then
            # the kind card.sh starts: a leftover from another DIR
            note "stopping leftover pcscd (pid $p)"
            kill_pid "$p"
        else
            die "another pcscd is running (pid $p: $args); card.sh needs its own. Stop it first (under systemd: systemctl stop pcscd.socket pcscd)"
        fi
    done
    # No pcscd is alive now. A pcscd killed with SIGKILL leaves its socket and pid
    # file behind, and if its pid still exists (a zombie nobody reaped, as under a
    # container init that does not reap) a new pcscd refuses to start.
    rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
    local extra=()
    [ "$DEBUG" = 1 ] && extra=(--debug)
    spawn "$DIR/pcscd.pid" "$DIR/pcscd.log" pcscd --foreground "${extra[@]}"
    local i
    for i in $(seq $((TIMEOUT * 10))); do
        port_listening && return 0
        pcscd_alive || die "pcscd exited; see $DIR/pcscd.log: $(tail -n 3 "$DIR/pcscd.log" | tr '\n' ' ')"
        sleep 0.1
    done
    die "vpcd is not listening on port $PORT after ${TIMEOUT}s (is vsmartcard-vpcd installed?); see $DIR/pcscd.log"
}

# --- the card --------------------------------------------------------------

card_present() {
    opensc-tool -l 2>/dev/null | grep -Eq "^[0-9]+ +Yes +.*${READER}\$"
}

# pcscd notices a card coming or going only by polling its reader every 0.4 s.
# If a card is pulled and a new one attached between two polls, pcscd never
# sees the removal, never powers the new card up, and reports "no card" for
# good. So after a card goes, give pcscd time to see it gone.
settle() {
    if pcscd_alive; then sleep 1; fi
}

# wait until the card is present ($1 = yes) or absent ($1 = no)
wait_card() {
    local want="$1" i
    for i in $(seq $((TIMEOUT * 5))); do
        if card_present; then [ "$want" = yes ] && return 0; else [ "$want" = no ] && return 0; fi
        if [ "$want" = yes ] && ! live_pid "$DIR/card.pid" conclave-vcard >/dev/null; then
            die "the card process exited; see $DIR/card.log: $(tail -n 3 "$DIR/card.log" | tr '\n' ' ')"
        fi
        if [ "$want" = yes ] && [ $((i % 25)) -eq 0 ]; then
            # 5 s attached but not seen: pcscd missed a removal (see settle); re-attach
            note "card not seen by pcscd after 5 s; attaching it again"
            stop_pidfile "$DIR/card.pid" conclave-vcard
            settle
            spawn_card
        fi
        sleep 0.2
    done
    if [ "$want" = yes ]; then
        die "no card in \"$READER\" after ${TIMEOUT}s; see $DIR/card.log and $DIR/pcscd.log"
    fi
    die "the card is still present in \"$READER\" after ${TIMEOUT}s"
}

# card processes attached to our vpcd port that are not in our pidfile
stray_cards() {
    local p ours
    ours="$(live_pid "$DIR/card.pid" conclave-vcard || true)"
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        [ "$p" != "$ours" ] || continue
        [ "$(cat "/proc/$p/comm" 2>/dev/null || true)" = conclave-vcard ] || continue
        [[ "$(cmdline "$p")" == *"--port $PORT "* ]] || continue
        echo "$p"
    done
}

stop_card() {
    local p
    stop_pidfile "$DIR/card.pid" conclave-vcard
    for p in $(stray_cards); do
        note "stopping leftover card process (pid $p)"
        kill_pid "$p"
    done
}

spawn_card() {
    mkdir -p "$DIR/state"
    local extra=()
    [ "$DEBUG" = 1 ] && extra=(--verbose)
    spawn "$DIR/card.pid" "$DIR/card.log" "$BIN" --state "$DIR/state" --port "$PORT" \
        --serial "$SERIAL" "${extra[@]}"
}

start_card() {
    spawn_card
    wait_card yes
}

# --- setup -----------------------------------------------------------------

ensure_packages() {
    local p missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    note "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_binary() {
    if [ -x "$BIN" ] && [ -z "$(find "$VCARD/src" "$VCARD/Cargo.toml" "$VCARD/Cargo.lock" -newer "$BIN" 2>/dev/null)" ]; then
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found (needed to build $BIN)"
    note "building conclave-vcard (a few minutes the first time; log: $DIR/build.log)"
    # From inside the repository, so that rust-toolchain.toml applies; into vcard/target.
    if ! (cd "$VCARD" && env -u CARGO_TARGET_DIR \
        cargo build --release --locked --manifest-path "$VCARD/Cargo.toml") >"$DIR/build.log" 2>&1; then
        tail -n 20 "$DIR/build.log" >&2
        die "building conclave-vcard failed; see $DIR/build.log"
    fi
}

check_serial() {
    [[ "$SERIAL" =~ ^[0-9A-Fa-f]{8}$ ]] || die "CONCLAVE_CARD_SERIAL must be 8 hex digits, got '$SERIAL'"
    SERIAL="${SERIAL^^}"
}

summary() {
    echo "card FFFF:$SERIAL present in \"$READER\": card pid $(cat "$DIR/card.pid"), pcscd pid $(cat "$DIR/pcscd.pid"), state $DIR/state, logs in $DIR"
}

# --- commands --------------------------------------------------------------

case "$CMD" in
start)
    check_serial
    mkdir -p "$DIR"
    ensure_packages
    ensure_binary
    stop_card
    start_pcscd
    start_card
    summary
    ;;
stop)
    stop_card
    stop_pidfile "$DIR/pcscd.pid" pcscd
    ;;
eject)
    stop_card
    if pcscd_alive; then wait_card no; fi
    settle
    ;;
insert | reset)
    check_serial
    mkdir -p "$DIR"
    ensure_binary
    stop_card
    settle
    if [ "$CMD" = reset ]; then rm -rf "$DIR/state"; fi
    # when pcscd has died the card must come back with a new one
    if ! pcscd_alive || ! port_listening; then start_pcscd; fi
    start_card
    summary
    ;;
status)
    if card_present; then
        echo "card present in \"$READER\""
        exit 0
    fi
    echo "no card in \"$READER\""
    exit 1
    ;;
*)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
