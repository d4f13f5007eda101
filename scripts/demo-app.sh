#!/usr/bin/env bash
# `make demo`: brings up the loopback mail host of the tests, makes a demo
# list with three GnuPG subscribers (alice, bob, carol) pointed at it, writes
# a script that sends a signed, encrypted post from alice, and starts the
# desktop app on the list. Needs root (the mail host binds privileged
# addresses) and a display. Everything lives in ./demo-app.
#
# CONCLAVE_DEMO_DIR: where instead of ./demo-app. CONCLAVE_DEMO_NO_APP=1: set
# everything up but do not start the app (the tests do this). A mail host
# already running in MAILHOST_DIR is reused rather than restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CONCLAVE_BIN:-target/debug/conclave}
APP=${CONCLAVE_APP_BIN:-target/debug/conclave-app}
DEMO=${CONCLAVE_DEMO_DIR:-$PWD/demo-app}
MH=${MAILHOST_DIR:-/tmp/conclave-mh}
LIST=list@example.test

if ! tests/testbed/mailhost.sh status "$MH" >/dev/null 2>&1; then
    tests/testbed/mailhost.sh stop "$MH" >/dev/null 2>&1 || true
    tests/testbed/mailhost.sh start "$MH"
fi
# shellcheck disable=SC1090
source <(sed 's/^/export /' "$MH/mailhost.env")

rm -rf "$DEMO"; mkdir -p "$DEMO"
(umask 077; printf 'demo passphrase' > "$DEMO/passphrase")
export CONCLAVE_PASSPHRASE_FILE="$DEMO/passphrase"
C=("$BIN" --home "$DEMO/list")
"${C[@]}" init --address $LIST --name "Demo List" --generate-key
"${C[@]}" key export > "$DEMO/list.asc"
install -m 600 /dev/null "$DEMO/password"
printf '%s' "$MAILHOST_PASSWORD" > "$DEMO/password"
for p in imap smtp; do
    port_var=MAILHOST_IMAPS_PORT; [ $p = smtp ] && port_var=MAILHOST_SMTPS_PORT
    "${C[@]}" config set $p.host "$MAILHOST_HOST" >/dev/null
    "${C[@]}" config set $p.port "${!port_var}" >/dev/null
    "${C[@]}" config set $p.security tls >/dev/null
    "${C[@]}" config set $p.username list >/dev/null
    "${C[@]}" config set $p.password_file "$DEMO/password" >/dev/null
done
"${C[@]}" config set tls.ca_file "$MAILHOST_CA_CERT" >/dev/null
for who in alice bob carol; do
    g="$DEMO/g-$who"; mkdir -m 700 "$g"
    gpg --homedir "$g" -q --batch --pinentry-mode loopback --passphrase '' \
        --quick-gen-key "$who@example.test" future-default default never 2>/dev/null
    gpg --homedir "$g" -q --armor --export "$who@example.test" > "$DEMO/$who.asc"
    gpg --homedir "$g" -q --import "$DEMO/list.asc" 2>/dev/null
    "${C[@]}" subscriber add "$who@example.test" --key "$DEMO/$who.asc" >/dev/null
done

# The one command that sends a post: alice's GnuPG signs and encrypts it to
# the list key, and it goes to the list over the mail host's SMTP port.
cat > "$DEMO/send-post.sh" <<SEND
#!/usr/bin/env bash
set -euo pipefail
text=\${1:-"Hello everyone, this is Alice, at \$(date)."}
inner=\$(mktemp); post=\$(mktemp)
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n' "\$text" > "\$inner"
{
    printf 'From: Alice <alice@example.test>\r\nTo: $LIST\r\nSubject: ...\r\nDate: %s\r\n' "\$(date -R)"
    printf 'MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n'
    printf -- '--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n'
    gpg --homedir "$DEMO/g-alice" -q --batch --trust-model always --armor --sign --encrypt \
        -r $LIST -u alice@example.test -o - "\$inner"
    printf '\r\n--b--\r\n'
} > "\$post"
curl -s --url "smtp://$MAILHOST_HOST:$MAILHOST_SMTP_PORT" --mail-from alice@example.test \
    --mail-rcpt $LIST --upload-file "\$post"
rm -f "\$inner" "\$post"
echo 'sent. Watch the dashboard; once the copies are out, bob can read his:'
echo '    gpg --homedir $DEMO/g-bob -d "\$(ls -t $MH/mail/bob/Maildir/new/* | head -1)"'
SEND
chmod +x "$DEMO/send-post.sh"

printf '\nThe demo list is in %s (passphrase: demo passphrase).\n' "$DEMO/list"
printf 'Send a signed, encrypted post from alice with:\n\n    %s\n\n' "$DEMO/send-post.sh"
[ "${CONCLAVE_DEMO_NO_APP:-0}" = 1 ] && exit 0
CONCLAVE_HOME="$DEMO/list" exec "$APP"
