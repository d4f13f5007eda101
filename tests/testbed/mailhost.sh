#!/usr/bin/env bash
# mailhost.sh - a throw-away, loopback-only mail host (Postfix + Dovecot) for
# Conclave's integration tests (adapted from the project's testbed notes; the
# 127.0.0.3 endpoints without any TLS are Conclave's addition).  Everything (config, certs, queue, mailboxes, logs, pid
# files, sockets) lives under DIR; nothing under /etc is written except what
# apt itself installs when the packages are missing.
#
#   mailhost.sh start   DIR   install pkgs if missing, make certs, write configs,
#                             start Postfix + Dovecot, wait until ports answer
#   mailhost.sh stop    DIR   stop both (by the PIDs in DIR), wait until gone
#   mailhost.sh restart DIR
#   mailhost.sh status  DIR   exit 0 if both are running
#   mailhost.sh clear   DIR   expunge every message of every user (between tests)
#   mailhost.sh hold    DIR   from now on, Postfix accepts mail as usual but keeps
#                             it in its hold queue instead of delivering it (so
#                             that a benchmark times the mail host accepting
#                             mail without its local delivery on the same cores)
#   mailhost.sh release DIR   stop holding; what was held is delivered now
#   mailhost.sh drop-held DIR stop holding; what was held is deleted
#
# After start, DIR/mailhost.env holds KEY=VALUE lines (ports, CA path,
# self-signed cert path + SHA-256 pin, users, password) for the tests.
#
# Endpoints (defaults; override with the MAILHOST_* variables below):
#   trusted (cert signed by DIR/certs/ca.crt; SAN localhost, mail.example.test,
#            127.0.0.1, ::1):
#     127.0.0.1:10993  IMAPS (implicit TLS)
#     127.0.0.1:10143  IMAP + STARTTLS (NB: Dovecot treats loopback as "secured",
#                      so LOGIN *before* STARTTLS is accepted from 127.0.0.1/::1)
#     127.0.0.1:10465  SMTPS submission (implicit TLS), AUTH required
#     127.0.0.1:10587  submission + STARTTLS (TLS mandatory), AUTH required
#     127.0.0.1:10025  plain SMTP, no AUTH, for test injection (mynetworks)
#   untrusted (self-signed DIR/certs/selfsigned.crt, same SANs + 127.0.0.2):
#     127.0.0.2:11993 IMAPS, 127.0.0.2:11143 IMAP+STARTTLS,
#     127.0.0.2:11465 SMTPS,  127.0.0.2:11587 submission+STARTTLS
#   no TLS at all (STARTTLS is not offered; clients must refuse them):
#     127.0.0.3:12143 IMAP,  127.0.0.3:12587 submission
# Users (IMAP/SMTP login "alice" or "alice@example.test", password "secret"):
#   list alice bob carol  -> mailboxes of <user>@example.test (+detail allowed)
# Other example.test addresses: 550 at RCPT; any address at
# bounce.example.test: accepted, then bounced with a delivery report to the
# envelope sender (5.1.1); any address at defer.example.test: 450 at RCPT on
# the submission ports (a temporary refusal); any address at
# sink.example.test: delivered to alice's mailbox, as alice+LOCALPART (so
# that a benchmark can send to many different recipients, as a list does,
# and count what arrived in one place); other domains: 554 relay denied.
# Mail persists across stop/start; "clear" empties all mailboxes; certs are
# reused if present (rm -rf DIR/certs to regenerate).  Needs root.
set -Eeuo pipefail

die() { echo "mailhost: error: $*" >&2; exit 1; }
log() { echo "mailhost: $*" >&2; }

[[ $# -ge 2 ]] || { echo "usage: $0 {start|stop|restart|status|clear} DIR" >&2; exit 2; }
CMD=$1
DIR=$2

: "${MAILHOST_DOMAIN:=example.test}"
: "${MAILHOST_HOSTNAME:=mail.${MAILHOST_DOMAIN}}"
: "${MAILHOST_USERS:=list alice bob carol}"
: "${MAILHOST_BOUNCE_DOMAIN:=bounce.$MAILHOST_DOMAIN}"   # accepted, then bounced
: "${MAILHOST_DEFER_DOMAIN:=defer.$MAILHOST_DOMAIN}"     # 450 at RCPT (submission)
: "${MAILHOST_SINK_DOMAIN:=sink.$MAILHOST_DOMAIN}"       # every address -> alice+LOCALPART
: "${MAILHOST_PASSWORD:=secret}"
: "${MAILHOST_ADDR:=127.0.0.1}"
: "${MAILHOST_PORT_OFFSET:=0}"      # added to every default port (parallel instances)
o=$MAILHOST_PORT_OFFSET
: "${MAILHOST_IMAPS_PORT:=$((10993 + o))}"
: "${MAILHOST_IMAP_PORT:=$((10143 + o))}"
: "${MAILHOST_SMTPS_PORT:=$((10465 + o))}"
: "${MAILHOST_SUBMISSION_PORT:=$((10587 + o))}"
: "${MAILHOST_SMTP_PORT:=$((10025 + o))}"
: "${MAILHOST_UNTRUSTED_ADDR:=127.0.0.2}"
: "${MAILHOST_UNTRUSTED_IMAPS_PORT:=$((11993 + o))}"
: "${MAILHOST_UNTRUSTED_IMAP_PORT:=$((11143 + o))}"
: "${MAILHOST_UNTRUSTED_SMTPS_PORT:=$((11465 + o))}"
: "${MAILHOST_UNTRUSTED_SUBMISSION_PORT:=$((11587 + o))}"
: "${MAILHOST_PLAIN_ADDR:=127.0.0.3}"
: "${MAILHOST_PLAIN_IMAP_PORT:=$((12143 + o))}"
: "${MAILHOST_PLAIN_SUBMISSION_PORT:=$((12587 + o))}"
: "${MAILHOST_IPV6:=auto}"          # auto|yes|no : also listen on [::1] (trusted ports)
: "${MAILHOST_START_TIMEOUT:=30}"   # seconds to wait for the ports
: "${MAILHOST_MAIL_USER:=mail}"     # system user owning the mailboxes (Debian: uid 8)
: "${MAILHOST_KEY_ALG:=ec}"         # ec (P-256, instant) | rsa (2048, 0.1-1 s per key)

[[ $EUID -eq 0 ]] || die "must run as root (Postfix master and Dovecot master need it)"

case $CMD in
  start|restart) mkdir -p "$DIR" ;;
  *) [[ -d $DIR ]] || { [[ $CMD == stop ]] && exit 0; die "no such directory: $DIR"; } ;;
esac
DIR=$(cd "$DIR" && pwd -P)
[[ $DIR != *[[:space:],\$]* ]] || die "DIR must not contain whitespace, ',' or '\$' (Postfix lists): $DIR"

PF_CONF=$DIR/etc/postfix
DC_CONF=$DIR/etc/dovecot/dovecot.conf
DC_BASE=$DIR/run/dovecot
PF_QUEUE=$DIR/spool/postfix
CERTS=$DIR/certs
LOGS=$DIR/log

# Unix socket paths are limited to 107 bytes; Dovecot's longest socket under
# base_dir is about 30 chars ("login/imap-urlauth-login..." etc.).
(( ${#DC_BASE} <= 70 )) || die "DIR path too long for unix sockets (${#DC_BASE} > 70 chars): $DC_BASE"

ipv6_on() {
  case $MAILHOST_IPV6 in
    yes) return 0 ;; no) return 1 ;;
    *) [[ -r /proc/net/if_inet6 ]] && grep -q '^0\{31\}1 ' /proc/net/if_inet6 ;;
  esac
}

# ----------------------------------------------------------------- packages
ensure_packages() {
  local missing=()
  [[ -x /usr/sbin/postfix ]]        || missing+=(postfix)
  [[ -x /usr/sbin/dovecot ]]        || missing+=(dovecot-core)
  [[ -x /usr/lib/dovecot/imap ]]    || missing+=(dovecot-imapd)
  [[ -x /usr/lib/dovecot/lmtp ]]    || missing+=(dovecot-lmtpd)
  command -v openssl >/dev/null     || missing+=(openssl)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} via apt-get"
  # "No configuration": the package must not create /etc/postfix/main.cf
  # (we never use the system instance).
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q
             install --no-install-recommends "${missing[@]}")
  if ! "${apt[@]}"; then
    apt-get -o DPkg::Lock::Timeout=600 -q update
    "${apt[@]}"
  fi
}

# ----------------------------------------------------------------- certs
make_certs() {
  mkdir -p "$CERTS"; chmod 755 "$CERTS"
  [[ -s $CERTS/ca.crt && -s $CERTS/server.crt && -s $CERTS/selfsigned.crt && -s $CERTS/dh.pem ]] && return 0
  log "generating test CA, server cert and self-signed cert in $CERTS"
  local cnf=$CERTS/openssl.cnf ku_rsa= san="DNS:localhost, DNS:${MAILHOST_HOSTNAME}, IP:127.0.0.1, IP:::1"
  [[ $MAILHOST_ADDR == 127.0.0.1 ]] || san+=", IP:$MAILHOST_ADDR"
  [[ $MAILHOST_KEY_ALG == rsa ]] && ku_rsa=", keyEncipherment"
  cat >"$cnf" <<EOF
[ req ]
distinguished_name = dn
prompt             = no
[ dn ]
CN = placeholder
[ ca_ext ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[ server_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature${ku_rsa}
extendedKeyUsage       = serverAuth
subjectAltName         = ${san}
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
[ selfsigned_ext ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature${ku_rsa}
extendedKeyUsage       = serverAuth
subjectAltName         = ${san}, IP:${MAILHOST_UNTRUSTED_ADDR}
subjectKeyIdentifier   = hash
EOF
  local newkey
  case $MAILHOST_KEY_ALG in
    rsa) newkey=(-newkey rsa:2048) ;;
    ec)  openssl ecparam -name prime256v1 -out "$CERTS/p256.param" 2>/dev/null
         newkey=(-newkey "ec:$CERTS/p256.param") ;;
    *) die "MAILHOST_KEY_ALG must be ec or rsa" ;;
  esac
  (
    cd "$CERTS"; umask 077
    rm -f ca.* server.* selfsigned.* dh.pem
    openssl req -x509 -new "${newkey[@]}" -nodes -sha256 -days 3650 -config openssl.cnf \
      -extensions ca_ext -subj "/O=mailhost test/CN=mailhost Test CA" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -new "${newkey[@]}" -nodes -sha256 -config openssl.cnf \
      -subj "/O=mailhost test/CN=${MAILHOST_HOSTNAME}" -keyout server.key -out server.csr 2>/dev/null
    # 365 days: stays under Apple's 825-day limit for TLS server certs
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -sha256 -days 365 -extfile openssl.cnf -extensions server_ext -out server.crt 2>/dev/null
    cat server.crt ca.crt > server-chain.crt
    openssl req -x509 -new "${newkey[@]}" -nodes -sha256 -days 365 -config openssl.cnf \
      -extensions selfsigned_ext -subj "/O=untrusted/CN=${MAILHOST_HOSTNAME}" \
      -keyout selfsigned.key -out selfsigned.crt 2>/dev/null
    openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048 -out dh.pem 2>/dev/null
    rm -f server.csr p256.param
    chmod 644 ./*.crt dh.pem; chmod 600 ./*.key
    # SHA-256 of the DER certificate (what pinning code usually compares)
    openssl x509 -in selfsigned.crt -outform DER | sha256sum | cut -d' ' -f1 > selfsigned.sha256
    openssl x509 -in server.crt -outform DER | sha256sum | cut -d' ' -f1 > server.sha256
    chmod 644 ./*.sha256
  )
}

# ----------------------------------------------------------------- configs
write_configs() {
  local mail_uid mail_gid u
  mail_uid=$(id -u "$MAILHOST_MAIL_USER") || die "no user $MAILHOST_MAIL_USER"
  mail_gid=$(id -g "$MAILHOST_MAIL_USER")
  mkdir -p "$PF_CONF" "$DIR/etc/dovecot" "$PF_QUEUE" "$DIR/lib/postfix" "$DIR/lib/dovecot" \
           "$DIR/run" "$LOGS" "$DIR/mail"
  chmod 755 "$DIR" "$DIR/etc" "$DIR/spool" "$PF_QUEUE" "$DIR/run" "$DIR/lib" "$LOGS"
  chown "$mail_uid:$mail_gid" "$DIR/mail"; chmod 750 "$DIR/mail"
  chown postfix:postfix "$DIR/lib/postfix"; chmod 700 "$DIR/lib/postfix"

  local listen_dc=$MAILHOST_ADDR pf_ifaces=$MAILHOST_ADDR pf_proto=ipv4 mynet=127.0.0.0/8
  if ipv6_on; then
    listen_dc="$MAILHOST_ADDR, ::1"; pf_ifaces="$MAILHOST_ADDR, [::1]"; pf_proto=all
    mynet="127.0.0.0/8, [::1]/128"
  fi

  # --- Dovecot users: name:{PLAIN}password:uid:gid::home::
  : >"$DIR/etc/dovecot/users.tmp"
  : >"$PF_CONF/vmailbox.tmp"
  for u in $MAILHOST_USERS; do
    echo "$u:{PLAIN}$MAILHOST_PASSWORD:$mail_uid:$mail_gid::$DIR/mail/$u::" >>"$DIR/etc/dovecot/users.tmp"
    echo "$u@$MAILHOST_DOMAIN OK" >>"$PF_CONF/vmailbox.tmp"
  done
  chown root:dovecot "$DIR/etc/dovecot/users.tmp"; chmod 640 "$DIR/etc/dovecot/users.tmp"
  mv -f "$DIR/etc/dovecot/users.tmp" "$DIR/etc/dovecot/users"
  mv -f "$PF_CONF/vmailbox.tmp" "$PF_CONF/vmailbox"
  # Dovecot's LMTP knows no user there, and refuses each recipient (550
  # 5.1.1) after Postfix accepted the message (an error: transport would be
  # refused at RCPT already).
  echo "$MAILHOST_BOUNCE_DOMAIN lmtp:unix:$DC_BASE/lmtp" >"$PF_CONF/transport"
  # Empty unless "hold" is in force (then every message goes to the hold queue).
  : >"$PF_CONF/hold.regexp"
  # A domain whose every recipient is refused for now (450) at submission.
  echo "$MAILHOST_DEFER_DOMAIN 450 4.2.1 mailbox busy, try again later" >"$PF_CONF/deferred"
  # Every address of the sink domain is one of alice's +detail addresses.
  sink_user=${MAILHOST_USERS#* }; sink_user=${sink_user%% *}
  printf '/^([^@+]+)@%s$/ %s+${1}@%s\n' "${MAILHOST_SINK_DOMAIN//./\\.}" \
    "$sink_user" "$MAILHOST_DOMAIN" >"$PF_CONF/sink.regexp"

  cat >"$DC_CONF" <<EOF
# generated by mailhost.sh - do not edit
instance_name = mailhost
base_dir = $DC_BASE
state_dir = $DIR/lib/dovecot
log_path = $LOGS/dovecot.log
info_log_path = $LOGS/dovecot.log
hostname = $MAILHOST_HOSTNAME
protocols = imap lmtp
listen = $listen_dc
shutdown_clients = yes

ssl = yes
ssl_cert = <$CERTS/server-chain.crt
ssl_key = <$CERTS/server.key
ssl_dh = <$CERTS/dh.pem
ssl_min_protocol = TLSv1.2
# connections to the untrusted address get the self-signed certificate
local $MAILHOST_UNTRUSTED_ADDR {
  ssl_cert = <$CERTS/selfsigned.crt
  ssl_key = <$CERTS/selfsigned.key
}
# connections to the plain address get no TLS at all (no STARTTLS offered)
local $MAILHOST_PLAIN_ADDR {
  ssl = no
}

disable_plaintext_auth = yes
auth_mechanisms = plain login
# "alice", "Alice@example.test" and LMTP rcpt alice@example.test -> "alice"
auth_username_format = %Ln
auth_verbose = yes
# fast failures for tests: no 2 s failure delay and no per-IP auth penalty
# (the penalty otherwise delays even *successful* logins from 127.0.0.1 by
# up to 15 s after a failed one); mode = 0 removes the anvil penalty socket.
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN $DIR/etc/dovecot/users
}
userdb {
  driver = passwd-file
  args = $DIR/etc/dovecot/users
}
first_valid_uid = $mail_uid
first_valid_gid = $mail_gid
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
}
recipient_delimiter = +
postmaster_address = postmaster@$MAILHOST_DOMAIN

service imap-login {
  inet_listener imap {
    address = $listen_dc
    port = $MAILHOST_IMAP_PORT
  }
  inet_listener imaps {
    address = $listen_dc
    port = $MAILHOST_IMAPS_PORT
    ssl = yes
  }
  inet_listener imap_untrusted {
    address = $MAILHOST_UNTRUSTED_ADDR
    port = $MAILHOST_UNTRUSTED_IMAP_PORT
  }
  inet_listener imaps_untrusted {
    address = $MAILHOST_UNTRUSTED_ADDR
    port = $MAILHOST_UNTRUSTED_IMAPS_PORT
    ssl = yes
  }
  inet_listener imap_plain {
    address = $MAILHOST_PLAIN_ADDR
    port = $MAILHOST_PLAIN_IMAP_PORT
  }
}
protocol imap {
  mail_max_userip_connections = 100
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF

  cat >"$PF_CONF/main.cf" <<EOF
# generated by mailhost.sh - do not edit
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $DIR/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $LOGS/postfix.log
maillog_file_prefixes = $LOGS
myhostname = $MAILHOST_HOSTNAME
mydomain = $MAILHOST_DOMAIN
myorigin = \$mydomain
inet_interfaces = $pf_ifaces
inet_protocols = $pf_proto
mynetworks = $mynet
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled on the test mail host
alias_maps =
alias_database =
# bounce.example.test: accepted at submission, then undeliverable: Postfix
# writes a delivery report (RFC 3464) to the envelope sender at once.
relay_domains = $MAILHOST_BOUNCE_DOMAIN
transport_maps = texthash:$PF_CONF/transport
virtual_mailbox_domains = $MAILHOST_DOMAIN
virtual_alias_domains = $MAILHOST_SINK_DOMAIN
virtual_alias_maps = regexp:$PF_CONF/sink.regexp
header_checks = regexp:$PF_CONF/hold.regexp
virtual_mailbox_maps = texthash:$PF_CONF/vmailbox
virtual_transport = lmtp:unix:$DC_BASE/lmtp
# one LMTP transaction per recipient: Dovecot adds "Delivered-To: <rcpt>"
# (incl. +detail) only when a transaction has a single recipient
lmtp_destination_recipient_limit = 1
default_transport = error:5.7.1 outbound delivery disabled on the test mail host
relay_transport = \$default_transport
recipient_delimiter = +
biff = no
append_dot_mydomain = no
smtpd_banner = \$myhostname ESMTP mailhost-test
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
in_flow_delay = 0
smtpd_error_sleep_time = 0
message_size_limit = 52428800
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_tls_chain_files = $CERTS/server.key, $CERTS/server-chain.crt
untrusted_tls_chain_files = $CERTS/selfsigned.key, $CERTS/selfsigned.crt
smtpd_tls_security_level = may
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DC_BASE/auth-postfix
smtpd_sasl_auth_enable = no
submission_restrictions = permit_sasl_authenticated, reject
submission_recipient_restrictions = check_recipient_access texthash:$PF_CONF/deferred, reject_unauth_destination
EOF

  # The untrusted services share tlsmgr's session-ticket keys with the trusted
  # ones; without disabling tickets on the untrusted services
  # a client that resumes a ticket obtained from the trusted port skips the
  # certificate check entirely (seen with rustls + TLS 1.2).  Note that
  # smtpd_tls_session_cache_timeout=0 as a master.cf -o does NOT help (it is
  # a tlsmgr setting); tls_ssl_options=NO_TICKET per service does.
  # service  type  private unpriv chroot wakeup maxproc command
  local sub_opts='
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=$submission_restrictions
  -o smtpd_recipient_restrictions=$submission_recipient_restrictions'
  cat >"$PF_CONF/master.cf" <<EOF
# generated by mailhost.sh - do not edit.  chroot is "n" everywhere.
$MAILHOST_SMTP_PORT inet n - n - - smtpd
  -o syslog_name=postfix/inject
$MAILHOST_SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes$sub_opts
$MAILHOST_SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes$sub_opts
$MAILHOST_UNTRUSTED_ADDR:$MAILHOST_UNTRUSTED_SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission-untrusted
  -o smtpd_tls_chain_files=\$untrusted_tls_chain_files
  -o tls_ssl_options=NO_TICKET
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes$sub_opts
$MAILHOST_UNTRUSTED_ADDR:$MAILHOST_UNTRUSTED_SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/smtps-untrusted
  -o smtpd_tls_chain_files=\$untrusted_tls_chain_files
  -o tls_ssl_options=NO_TICKET
  -o smtpd_tls_wrappermode=yes$sub_opts
$MAILHOST_PLAIN_ADDR:$MAILHOST_PLAIN_SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission-plain
  -o smtpd_tls_security_level=none$sub_opts
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
lmtp       unix  - - n -    - lmtp
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF

  # Postfix re-reads main.cf (and texthash files) until their mtime is >= 2 s
  # in the past ("let the file cool down", 300 ms sleeps) - backdate them so
  # that postconf/postfix start immediately.
  touch -d "@$(( $(date +%s) - 60 ))" "$PF_CONF/main.cf" "$PF_CONF/master.cf" "$PF_CONF/vmailbox" "$PF_CONF/transport" "$PF_CONF/deferred"

  cat >"$DIR/mailhost.env" <<EOF
MAILHOST_DIR=$DIR
MAILHOST_HOST=$MAILHOST_ADDR
MAILHOST_TLS_NAME=$MAILHOST_HOSTNAME
MAILHOST_DOMAIN=$MAILHOST_DOMAIN
MAILHOST_USERS=$MAILHOST_USERS
MAILHOST_BOUNCE_DOMAIN=$MAILHOST_BOUNCE_DOMAIN
MAILHOST_DEFER_DOMAIN=$MAILHOST_DEFER_DOMAIN
MAILHOST_SINK_DOMAIN=$MAILHOST_SINK_DOMAIN
MAILHOST_PASSWORD=$MAILHOST_PASSWORD
MAILHOST_IMAPS_PORT=$MAILHOST_IMAPS_PORT
MAILHOST_IMAP_PORT=$MAILHOST_IMAP_PORT
MAILHOST_SMTPS_PORT=$MAILHOST_SMTPS_PORT
MAILHOST_SUBMISSION_PORT=$MAILHOST_SUBMISSION_PORT
MAILHOST_SMTP_PORT=$MAILHOST_SMTP_PORT
MAILHOST_UNTRUSTED_HOST=$MAILHOST_UNTRUSTED_ADDR
MAILHOST_UNTRUSTED_IMAPS_PORT=$MAILHOST_UNTRUSTED_IMAPS_PORT
MAILHOST_UNTRUSTED_IMAP_PORT=$MAILHOST_UNTRUSTED_IMAP_PORT
MAILHOST_UNTRUSTED_SMTPS_PORT=$MAILHOST_UNTRUSTED_SMTPS_PORT
MAILHOST_UNTRUSTED_SUBMISSION_PORT=$MAILHOST_UNTRUSTED_SUBMISSION_PORT
MAILHOST_PLAIN_HOST=$MAILHOST_PLAIN_ADDR
MAILHOST_PLAIN_IMAP_PORT=$MAILHOST_PLAIN_IMAP_PORT
MAILHOST_PLAIN_SUBMISSION_PORT=$MAILHOST_PLAIN_SUBMISSION_PORT
MAILHOST_CA_CERT=$CERTS/ca.crt
MAILHOST_SERVER_CERT_SHA256=$(cat "$CERTS/server.sha256")
MAILHOST_SELFSIGNED_CERT=$CERTS/selfsigned.crt
MAILHOST_SELFSIGNED_CERT_SHA256=$(cat "$CERTS/selfsigned.sha256")
EOF
  chmod 644 "$DIR/mailhost.env"
}

# ----------------------------------------------------------------- processes
# alive PID [COMM]: process exists, is not a zombie (PID 1 in containers may
# reap orphans late, and kill -0 succeeds on zombies), and has that comm.
alive() {
  local pid=$1 comm=${2:-} c state
  [[ -r /proc/$pid/stat ]] || return 1
  read -r _ c state _ </proc/"$pid"/stat 2>/dev/null || return 1
  [[ $state != Z && $state != X ]] || return 1
  [[ -z $comm || $c == "($comm)" ]]
}
pf_pid() {  # prints the Postfix master PID if running
  local f=$PF_QUEUE/pid/master.pid p
  [[ -s $f ]] || return 1
  p=$(tr -dc 0-9 <"$f"); [[ -n $p ]] && alive "$p" master || return 1
  echo "$p"
}
dc_pid() {  # prints the Dovecot master PID if running
  local f=$DC_BASE/master.pid p
  [[ -s $f ]] || return 1
  p=$(tr -dc 0-9 <"$f"); [[ -n $p ]] && alive "$p" dovecot || return 1
  echo "$p"
}

# wait until host:port sends a banner starting with $3 (or just accepts, if $3 empty)
probe() {
  local host=$1 port=$2 want=${3:-} line=
  (
    exec 3<>"/dev/tcp/$host/$port" || exit 1
    if [[ -n $want ]]; then IFS= read -r -t 2 line <&3 || exit 1; [[ $line == "$want"* ]] || exit 1; fi
    exit 0
  ) 2>/dev/null
}

wait_ready() {  # [timeout]
  local timeout=${1:-$MAILHOST_START_TIMEOUT} pending
  local deadline=$((SECONDS + timeout))
  while :; do
    pending=()
    probe "$MAILHOST_ADDR" "$MAILHOST_SMTP_PORT" 220 || pending+=(smtp:$MAILHOST_SMTP_PORT)
    probe "$MAILHOST_ADDR" "$MAILHOST_SUBMISSION_PORT" 220 || pending+=(submission:$MAILHOST_SUBMISSION_PORT)
    probe "$MAILHOST_ADDR" "$MAILHOST_SMTPS_PORT" || pending+=(smtps:$MAILHOST_SMTPS_PORT)
    probe "$MAILHOST_ADDR" "$MAILHOST_IMAP_PORT" '* OK' || pending+=(imap:$MAILHOST_IMAP_PORT)
    probe "$MAILHOST_ADDR" "$MAILHOST_IMAPS_PORT" || pending+=(imaps:$MAILHOST_IMAPS_PORT)
    probe "$MAILHOST_UNTRUSTED_ADDR" "$MAILHOST_UNTRUSTED_IMAPS_PORT" || pending+=(untrusted-imaps)
    probe "$MAILHOST_UNTRUSTED_ADDR" "$MAILHOST_UNTRUSTED_SMTPS_PORT" || pending+=(untrusted-smtps)
    probe "$MAILHOST_PLAIN_ADDR" "$MAILHOST_PLAIN_IMAP_PORT" '* OK' || pending+=(plain-imap)
    probe "$MAILHOST_PLAIN_ADDR" "$MAILHOST_PLAIN_SUBMISSION_PORT" 220 || pending+=(plain-submission)
    [[ -S $DC_BASE/lmtp ]] || pending+=(lmtp-socket)
    [[ -S $DC_BASE/auth-postfix ]] || pending+=(auth-socket)
    ((${#pending[@]})) || return 0
    if ((SECONDS >= deadline)); then
      log "not ready after ${timeout}s: ${pending[*]}"
      tail -n 20 "$LOGS/postfix.log" "$LOGS/dovecot.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.05
  done
}

do_stop() {
  local p pids=()
  if p=$(dc_pid); then kill -TERM "$p"; pids+=("$p"); fi
  if p=$(pf_pid); then
    /usr/sbin/postfix -c "$PF_CONF" stop >/dev/null 2>&1 || kill -TERM "$p"
    pids+=("$p")
  fi
  local deadline=$((SECONDS + 15))
  for p in "${pids[@]}"; do
    while alive "$p"; do
      if ((SECONDS >= deadline)); then log "PID $p did not exit, sending KILL"; kill -KILL "$p" 2>/dev/null || true; break; fi
      sleep 0.05
    done
  done
  ((${#pids[@]})) && log "stopped (PIDs ${pids[*]})" || log "not running"
}

# Makes Postfix read hold.regexp again: a reload, after which the daemons
# that read the old one exit as soon as they are idle (they all are between
# two benchmark runs); a moment later every new one has the new rule.
set_hold() {
  /usr/sbin/postfix -c "$PF_CONF" reload >/dev/null 2>&1 || die "postfix reload failed"
  sleep 1
}

do_start() {
  if pf_pid >/dev/null && dc_pid >/dev/null; then
    wait_ready 3 2>/dev/null && { log "already running in $DIR"; return 0; }
    log "running but not answering; restarting"
  fi
  do_stop >/dev/null 2>&1 || true
  ensure_packages
  make_certs
  write_configs
  # validate configs before starting (fail fast with readable errors)
  /usr/bin/doveconf -c "$DC_CONF" >/dev/null
  /usr/sbin/postconf -c "$PF_CONF" -n >/dev/null
  # Detach the daemons from our stdio: dovecot's master keeps the caller's
  # stderr open forever, which makes a caller that captures our output
  # through a pipe (Rust Command::output(), "| tee") hang waiting for EOF.
  /usr/sbin/dovecot -c "$DC_CONF" </dev/null >>"$LOGS/dovecot-stderr.log" 2>&1 ||
    { cat "$LOGS/dovecot-stderr.log" >&2; die "dovecot start failed"; }
  /usr/sbin/postfix -c "$PF_CONF" start </dev/null >>"$LOGS/postfix-start.log" 2>&1 ||
    { cat "$LOGS/postfix-start.log" >&2; die "postfix start failed"; }
  wait_ready || die "services did not come up (logs in $LOGS)"
  log "ready in $DIR (postfix master $(pf_pid), dovecot master $(dc_pid)); env: $DIR/mailhost.env"
}

case $CMD in
  start)   do_start ;;
  stop)    do_stop ;;
  restart) do_stop; do_start ;;
  status)
    pf=$(pf_pid || echo -) dc=$(dc_pid || echo -)
    echo "postfix master: $pf  dovecot master: $dc"
    [[ $pf != - && $dc != - ]] ;;
  clear)
    dc_pid >/dev/null || die "dovecot not running"
    /usr/bin/doveadm -c "$DC_CONF" expunge -A mailbox '*' all ;;
  hold)
    pf_pid >/dev/null || die "postfix not running"
    echo '/^/ HOLD held by mailhost.sh hold' >"$PF_CONF/hold.regexp"
    set_hold ;;
  release)
    pf_pid >/dev/null || die "postfix not running"
    : >"$PF_CONF/hold.regexp"
    set_hold
    /usr/sbin/postsuper -c "$PF_CONF" -H ALL 2>/dev/null
    /usr/sbin/postqueue -c "$PF_CONF" -f ;;
  drop-held)
    pf_pid >/dev/null || die "postfix not running"
    : >"$PF_CONF/hold.regexp"
    set_hold
    /usr/sbin/postsuper -c "$PF_CONF" -d ALL hold 2>/dev/null ;;
  *) echo "usage: $0 {start|stop|restart|status|clear|hold|release|drop-held} DIR" >&2; exit 2 ;;
esac
