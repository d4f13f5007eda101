#!/usr/bin/env bash
# A walkthrough of Conclave on this machine: it creates a demo list with three
# GnuPG subscribers, has one of them post a signed, encrypted message, runs it
# through the list, and shows another subscriber decrypting their copy.
# Everything lives in ./demo (removed and made anew on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CONCLAVE_BIN:-target/debug/conclave}
DEMO=$PWD/demo
rm -rf "$DEMO"; mkdir -p "$DEMO"
LIST=list@example.test
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

(umask 077; printf 'demo passphrase' > "$DEMO/passphrase")
export CONCLAVE_PASSPHRASE_FILE="$DEMO/passphrase"
C=("$BIN" --home "$DEMO/list")

step "Create the list and its key"
run "${C[@]}" init --address $LIST --name "Demo List" --generate-key
"${C[@]}" key export > "$DEMO/list.asc"

step "Three subscribers, each with their own GnuPG key"
for who in alice bob carol; do
    g="$DEMO/g-$who"; mkdir -m 700 "$g"
    gpg --homedir "$g" -q --batch --pinentry-mode loopback --passphrase '' \
        --quick-gen-key "$who@example.test" future-default default never 2>/dev/null
    gpg --homedir "$g" -q --armor --export "$who@example.test" > "$DEMO/$who.asc"
    gpg --homedir "$g" -q --import "$DEMO/list.asc" 2>/dev/null
    run "${C[@]}" subscriber add "$who@example.test" --key "$DEMO/$who.asc"
done

step "Alice writes a signed, encrypted PGP/MIME post to the list"
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nHello everyone, this is Alice.\r\n' > "$DEMO/inner.txt"
gpg --homedir "$DEMO/g-alice" -q --batch --trust-model always --armor --sign --encrypt \
    -r $LIST -u alice@example.test -o "$DEMO/inner.asc" "$DEMO/inner.txt"
{
    printf 'From: Alice <alice@example.test>\r\nTo: %s\r\nSubject: ...\r\n' "$LIST"
    printf 'MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n'
    printf -- '--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n'
    cat "$DEMO/inner.asc"; printf '\r\n--b--\r\n'
} > "$DEMO/post.eml"

step "The list processes it: decrypt, verify Alice, re-encrypt to each subscriber"
run "${C[@]}" process "$DEMO/post.eml"
run "${C[@]}" outbox export "$DEMO/out"

step "Bob decrypts his copy with GnuPG"
gpg --homedir "$DEMO/g-bob" --batch -d "$DEMO/out/bob@example.test.eml" 2>&1 | sed -n '1,12p'

step "The audit log"
run "${C[@]}" log
printf '\nEverything is in %s. Try: %s --home %s --help\n' "$DEMO" "$BIN" "$DEMO/list"
