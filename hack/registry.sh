#!/usr/bin/env bash
# Local OCI registries for the tests of profiles as OCI artifacts (push, pull, auth, TLS), and
# the oras CLI to put artifacts there. Two instances of Debian's docker-registry
# (distribution 2.8), each with its own config, data and log in .local-registry/:
#   tls     0.0.0.0:5443, TLS (a CA of its own) + basic auth (user tenant, random password);
#           pods of the local cluster reach it at this machine's node IP
#   plain   127.0.0.1:5080, plain HTTP, no auth (oras --plain-http)
#
#   hack/registry.sh up            install what is missing (hack/deps.sh test, oras through
#                                  hack/k8s-build.sh oras), make the CA, the server certificate
#                                  and the htpasswd file once, start both registries and wait
#                                  for them; idempotent (running and healthy: nothing to do)
#   hack/registry.sh down [--wipe] stop both (by their recorded PIDs); --wipe also deletes
#                                  .local-registry/ (certificates, password, stored blobs)
#   hack/registry.sh env           print the path of .local-registry/env, or fail when not up
#
# .local-registry/env holds REGISTRY_TLS (node IP:5443), REGISTRY_TLS_LOCAL, REGISTRY_PLAIN,
# REGISTRY_CA, REGISTRY_USER, REGISTRY_PASSWORD and ORAS, one KEY=VALUE a line:
#   set -a; . "$(hack/registry.sh env)"; set +a
# The ports are the machine's: one checkout's registries at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STATE=$REPO/.local-registry
ENV_FILE=$STATE/env
TLS_PORT=5443
PLAIN_PORT=5080
USER_NAME=tenant
# This machine's own primary address (as hack/lib/cluster-env.sh's NODE_IP): the server
# certificate names it, and pods reach the TLS registry there.
NODE_IP=${NODE_IP:-$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)}

say() { echo "hack/registry.sh: $*"; }
die() { echo "hack/registry.sh: $*" >&2; exit 1; }

# The PID recorded for an instance, when that process still runs docker-registry (a recycled
# PID is not ours).
pid_of() {
  local f=$STATE/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -q "docker-registry serve $STATE/$1.yml" || return 1
  echo "$pid"
}
alive() { pid_of "$1" >/dev/null; }
# GET /v2/ answers 401 on the TLS instance (no credentials) and 200 on the plain one.
status_of() {
  case "$1" in
    tls)   curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$STATE/ca.crt" "https://127.0.0.1:$TLS_PORT/v2/" || true ;;
    plain) curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PLAIN_PORT/v2/" || true ;;
  esac
}
healthy() {
  local want=200
  [ "$1" = tls ] && want=401
  [ "$(status_of "$1")" = "$want" ]
}
stop() { # instance: SIGTERM, then SIGKILL after 10 s
  local pid
  if pid=$(pid_of "$1"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$STATE/$1.pid"
}

cmd_down() {
  local wipe=false
  case "${1:-}" in
    "") ;;
    --wipe) wipe=true ;;
    *) echo "usage: hack/registry.sh down [--wipe]" >&2; exit 2 ;;
  esac
  stop tls
  stop plain
  if $wipe; then
    rm -rf "$STATE"
    say "registries stopped and wiped"
  else
    say "registries stopped (state kept in $STATE; --wipe removes it)"
  fi
}

cmd_env() {
  [ -f "$ENV_FILE" ] || die "not up ($ENV_FILE is missing): run hack/registry.sh up"
  local i
  for i in tls plain; do
    alive "$i" && healthy "$i" || die "the $i registry is not running: run hack/registry.sh up"
  done
  echo "$ENV_FILE"
}

# The CA and the server certificate (EC P-256, 10 years), made once; the server certificate
# is made again when it does not name this machine's current address.
make_pki() {
  if [ ! -f "$STATE/ca.crt" ] || [ ! -f "$STATE/ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
      -keyout "$STATE/ca.key" -out "$STATE/ca.crt" -subj "/CN=seccomp-operator local registry CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null \
      || die "making the CA failed"
    rm -f "$STATE/server.crt"
  fi
  if [ -f "$STATE/server.crt" ] && [ -f "$STATE/server.key" ] \
    && openssl x509 -in "$STATE/server.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$NODE_IP\(,\|$\)"; then
    return 0
  fi
  local ext csr
  ext=$(mktemp) csr=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=serverAuth"
    echo "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$NODE_IP"
  } >"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "$STATE/server.key" -out "$csr" -subj "/CN=seccomp-operator local registry" 2>/dev/null \
    && openssl x509 -req -in "$csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -sha256 -days 3650 \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$STATE/server.crt" 2>/dev/null \
    || { rm -f "$ext" "$csr"; die "making the server certificate failed"; }
  rm -f "$ext" "$csr"
  chmod 600 "$STATE/ca.key" "$STATE/server.key"
}

# The config of an instance (tls or plain) on stdout; http.secret is kept from the config
# already there, so that an unchanged config reads the same.
config() {
  local secret
  secret=$(awk '$1 == "secret:" {print $2; exit}' "$STATE/$1.yml" 2>/dev/null || true)
  [ -n "$secret" ] || secret=$(openssl rand -hex 32)
  cat <<EOF
# Written by hack/registry.sh: the $1 registry of the OCI artifact tests.
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/data/$1
  delete:
    enabled: true
http:
  secret: $secret
EOF
  if [ "$1" = tls ]; then
    cat <<EOF
  addr: 0.0.0.0:$TLS_PORT
  tls:
    certificate: $STATE/server.crt
    key: $STATE/server.key
auth:
  htpasswd:
    realm: seccomp-operator-local-registry
    path: $STATE/htpasswd
EOF
  else
    echo "  addr: 127.0.0.1:$PLAIN_PORT"
  fi
}

# Fails, naming the holder, when another process listens on an instance's port: most often
# the registries another checkout's tests left running.
port_free() {
  local port=$TLS_PORT pid cmd
  [ "$1" = plain ] && port=$PLAIN_PORT
  pid=$(ss -Htlnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2) || true
  [ -n "$pid" ] || return 0
  cmd=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || true
  case "$cmd" in
    *"docker-registry serve "*/.local-registry/*)
      local other=${cmd#*docker-registry serve }
      other=${other%/.local-registry/*}
      die "port $port is taken by the registry of the checkout $other (PID $pid): run hack/registry.sh down there first" ;;
    *) die "port $port is taken by PID $pid (${cmd:-unknown}): the $1 registry needs it" ;;
  esac
}

# Starts an instance unless it runs healthy with the config it should have (a changed config
# or certificate restarts it), then waits until GET /v2/ answers.
ensure() {
  local i=$1 cfg=$STATE/$1.yml log=$STATE/$1.log new changed=false
  new=$(config "$i")
  if [ ! -f "$cfg" ] || [ "$(cat "$cfg")" != "$new" ]; then
    printf '%s\n' "$new" >"$cfg"
    chmod 600 "$cfg"
    changed=true
  fi
  if [ "$i" = tls ] && [ "$STATE/server.crt" -nt "$STATE/tls.pid" ]; then changed=true; fi
  if ! $changed && alive "$i" && healthy "$i"; then
    return 0
  fi
  stop "$i"
  port_free "$i"
  mkdir -p "$STATE/data/$i"
  # docker-registry reads REGISTRY_* variables as config overrides: none of ours reaches it.
  local unset=()
  while read -r v; do unset+=(-u "$v"); done < <(compgen -e | grep '^REGISTRY_' || true)
  echo "== $(date -u +%FT%TZ) started by hack/registry.sh" >>"$log"
  setsid nohup env "${unset[@]}" docker-registry serve "$cfg" >>"$log" 2>&1 </dev/null &
  echo $! >"$STATE/$i.pid"
  for _ in $(seq 150); do
    healthy "$i" && return 0
    alive "$i" || break
    sleep 0.2
  done
  echo "hack/registry.sh: the $i registry did not come up (GET /v2/: '$(status_of "$i")'); the last lines it logged ($log):" >&2
  awk '/^== .* started by hack\/registry.sh$/ {n = 0} {line[++n] = $0} END {for (k = (n > 20 ? n - 19 : 1); k <= n; k++) print line[k]}' "$log" >&2
  stop "$i"
  exit 1
}

cmd_up() {
  [ $# -eq 0 ] || { echo "usage: hack/registry.sh up" >&2; exit 2; }
  [ -n "$NODE_IP" ] || die "this machine has no non-loopback IPv4 address (ip -4 -o addr)"
  hack/deps.sh test
  hack/k8s-build.sh oras
  local ORAS_BIN
  eval "$(hack/k8s-build.sh --print | grep '^ORAS_BIN=')"
  [ -x "$ORAS_BIN/oras" ] || die "oras is not built ($ORAS_BIN/oras): run hack/k8s-build.sh oras as root"

  mkdir -p "$STATE"
  make_pki
  if [ ! -s "$STATE/password" ]; then
    (umask 077; openssl rand -hex 16 >"$STATE/password")
    rm -f "$STATE/htpasswd"
  fi
  local password
  password=$(cat "$STATE/password")
  if [ ! -s "$STATE/htpasswd" ]; then
    (umask 077; htpasswd -Bbn "$USER_NAME" "$password" | sed '/^$/d' >"$STATE/htpasswd")
  fi

  ensure tls
  ensure plain
  # The address the cluster's pods use, through the certificate's own name for it.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$STATE/ca.crt" \
    -u "$USER_NAME:$password" "https://$NODE_IP:$TLS_PORT/v2/" || true)
  [ "$code" = 200 ] || die "https://$NODE_IP:$TLS_PORT/v2/ with the tenant's credentials answered '$code', not 200 (see $STATE/tls.log)"

  local tmp
  tmp=$(mktemp "$STATE/env.XXXXXX")
  {
    echo "# Written by hack/registry.sh up: set -a; . $ENV_FILE; set +a"
    printf 'REGISTRY_TLS=%q\n' "$NODE_IP:$TLS_PORT"
    printf 'REGISTRY_TLS_LOCAL=%q\n' "127.0.0.1:$TLS_PORT"
    printf 'REGISTRY_PLAIN=%q\n' "127.0.0.1:$PLAIN_PORT"
    printf 'REGISTRY_CA=%q\n' "$STATE/ca.crt"
    printf 'REGISTRY_USER=%q\n' "$USER_NAME"
    printf 'REGISTRY_PASSWORD=%q\n' "$password"
    printf 'ORAS=%q\n' "$ORAS_BIN/oras"
  } >"$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$ENV_FILE"
  say "up: https://$NODE_IP:$TLS_PORT (TLS, user $USER_NAME), http://127.0.0.1:$PLAIN_PORT (plain); env in $ENV_FILE"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  env) shift; [ $# -eq 0 ] || { echo "usage: hack/registry.sh env" >&2; exit 2; }; cmd_env ;;
  *) echo "usage: hack/registry.sh up | down [--wipe] | env" >&2; exit 2 ;;
esac
