#!/usr/bin/env bash
# Builds the Debian package of the desktop app with the Tauri bundler, offline
# (the .deb bundler downloads nothing; AppImage would, see the README), and
# checks what went into it. The package carries the app (/usr/bin/conclave-app),
# the command line (/usr/bin/conclave), the desktop file and the icons.
#
#   packaging/build-deb.sh      -> target/release/bundle/deb/Conclave_VERSION_ARCH.deb
set -euo pipefail
cd "$(dirname "$0")/.."

# A package carries no debug information (the release profile keeps some,
# for profiling the benchmarks).
export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols

(cd ui && npm install --no-audit --no-fund && npm run build)
cargo build --release --locked -p conclave-cli
ui/node_modules/.bin/tauri build --bundles deb --ci -- --locked

deb=$(ls -t target/release/bundle/deb/*.deb | head -1)
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./||')
for want in usr/bin/conclave-app usr/bin/conclave usr/share/applications/Conclave.desktop \
    usr/share/icons/hicolor/128x128/apps/conclave-app.png; do
  grep -qx "$want" <<<"$contents" || { echo "build-deb.sh: $deb lacks $want" >&2; exit 1; }
done
dpkg-deb --field "$deb" Package Version Depends Recommends
echo "built $deb"
