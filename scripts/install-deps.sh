#!/usr/bin/env bash
# Installs what Conclave needs to build and test on Debian: the C libraries the
# crypto backends bind to (Botan for Sequoia, Nettle for the X25519 fan-out), the subscriber clients the tests drive (GnuPG,
# RNP, Sequoia sq), and the smart card stack the card tests use (pcscd and its
# library, vsmartcard's virtual reader, pcsc-tools and opensc for looking at the
# card; see tests/testbed/card.sh), and the OS keyring (D-Bus and GNOME Keyring,
# for the keyring tests: tests/testbed/keyring.sh). Installs only what is missing; needs root
# (or sudo) for that.
set -euo pipefail

packages=(build-essential pkg-config clang libclang-dev nettle-dev libbotan-2-dev gnupg rnp sq ca-certificates
    pcscd libpcsclite-dev pcsc-tools vsmartcard-vpcd opensc
    libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev libgtk-3-dev librsvg2-dev
    libayatana-appindicator3-dev libxdo-dev libssl-dev xvfb xauth webkit2gtk-driver imagemagick curl
    dbus-daemon dbus-bin gnome-keyring)
# The UI builds with Node.js and npm; Debian's are recent enough for Vite 5.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    # Debian's own cargo is too old for this workspace (it needs rustc 1.95).
    echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
    exit 1
fi

# The GUI tests drive the app through tauri-driver (WebDriver for Tauri).
if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
    echo "installing tauri-driver"
    cargo install tauri-driver --locked --quiet
fi
