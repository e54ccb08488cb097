#!/usr/bin/env bash
# geo: the one entry point for contributors and CI.
#   ./geo test     restore, build (warnings as errors), run every test project, the terraform checks and the ops
#                  checks (ops/check: promtool on the Prometheus configuration and alerting rules);
#                  the last line is "N passed, N failed".
#   ./geo up|down|status|demo   the local four-region system (see README).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf '%s\n' "$*" >&2; }
die() { say "geo: $*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  # Installs Debian packages when we can; otherwise prints the exact command and fails.
  if ! is_root || ! command -v apt-get >/dev/null; then
    die "missing $*; install it with: sudo apt-get install -y $*"
  fi
  say "geo: installing $* (apt-get)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null || die "apt-get install -y $* failed"
  fi
}

pg_bindir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return; fi
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  return 1
}

ensure_prereqs() {
  command -v dotnet >/dev/null || die "the .NET SDK 10 is required: https://dot.net (dotnet not on PATH)"
  if ! pg_bindir >/dev/null; then apt_install postgresql; fi
  PG_BIN="$(pg_bindir)" || die "PostgreSQL binaries (initdb, pg_ctl) not found after install"
  export PATH="$PG_BIN:$PATH"
  command -v redis-server >/dev/null || apt_install redis-server
  # The Debian package starts a system-wide Redis on 6379; Geo never uses it, and it would only cost memory.
  if is_root && command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server >/dev/null 2>&1 || true
  fi
}

build() {
  dotnet restore Geo.sln -v quiet --nologo >&2
  dotnet build Geo.sln -c Release --no-restore -v quiet --nologo -clp:NoSummary >&2
}

# The four services only (Geo.Services.slnf), skipped when nothing they are built from changed since the last
# build: ./geo up runs the built dlls, and a no-op dotnet build still costs tens of seconds on two cores.
build_services() {
  local stamp="$GEO_DIR/build.stamp" project
  if [ -f "$stamp" ]; then
    local stale=0
    for project in ShardDirectory RegionService EdgeRouter Replicator; do
      [ -f "src/$project/bin/Release/net10.0/Geo.$project.dll" ] || stale=1
    done
    if [ "$stale" = 0 ] && [ -z "$(find src Directory.Build.props Directory.Packages.props global.json -newer "$stamp" -type f \
        -not -path '*/bin/*' -not -path '*/obj/*' -print -quit)" ]; then
      say "geo: services up to date (built $(date -r "$stamp" '+%F %T'))"
      return
    fi
  fi
  say "geo: building the services"
  mkdir -p "$GEO_DIR"
  dotnet build Geo.Services.slnf -c Release -v quiet --nologo "-clp:ErrorsOnly;NoSummary" >&2
  touch "$stamp"
}

cmd_test() {
  ensure_prereqs
  # The status page's test loads it in a real browser (headless Chromium).
  command -v chromium >/dev/null || apt_install chromium
  say "geo: building (Release, warnings as errors)"
  build
  local log passed=0 failed=0 skipped=0 rc=0
  log="$(mktemp)"
  say "geo: running tests"
  set +e
  # One test project at a time: several of them start a dozen processes each, and two cores shared by all of
  # them turn timing-sensitive checks (write rates, replication races) into noise.
  timeout 1500 dotnet test --solution Geo.sln -c Release --no-build --no-progress --max-parallel-test-modules 1 2>&1 | tee "$log" >&2
  rc=${PIPESTATUS[0]}
  set -e
  # The runner's final summary: "  total: N / failed: N / succeeded: N / skipped: N".
  local total f s k
  total=$(awk '/^  total:/ {v=$2} END {print v+0}' "$log")
  f=$(awk '/^  failed:/ {v=$2} END {print v+0}' "$log")
  s=$(awk '/^  succeeded:/ {v=$2} END {print v+0}' "$log")
  k=$(awk '/^  skipped:/ {v=$2} END {print v+0}' "$log")
  passed=$((passed + s)); failed=$((failed + f)); skipped=$((skipped + k))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    say "geo: the test run exited with $rc without a failed test (crash, timeout or zero tests in a project); counted as 1 failure"
    failed=$((failed + 1))
  fi
  [ "$total" -gt 0 ] || { say "geo: no test ran"; failed=$((failed + 1)); }
  rm -f "$log"

  if command -v terraform >/dev/null && [ -x terraform/check ]; then
    say "geo: terraform checks"
    local tflog tfline
    tflog="$(mktemp)"
    set +e
    terraform/check 2>&1 | tee "$tflog" >&2
    local tfrc=${PIPESTATUS[0]}
    set -e
    tfline=$(grep -E '^terraform: [0-9]+ passed, [0-9]+ failed' "$tflog" | tail -n 1 || true)
    if [ -n "$tfline" ]; then
      passed=$((passed + $(echo "$tfline" | awk '{print $2}')))
      failed=$((failed + $(echo "$tfline" | awk '{print $4}')))
    fi
    if [ "$tfrc" -ne 0 ] && { [ -z "$tfline" ] || [ "$(echo "$tfline" | awk '{print $4}')" = 0 ]; }; then
      failed=$((failed + 1))
    fi
    rm -f "$tflog"
  else
    say "geo: terraform not installed; terraform checks skipped"
  fi

  ops_checks

  [ "$skipped" -eq 0 ] || echo "$skipped skipped"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

ensure_promtool() {
  command -v promtool >/dev/null && return
  apt_install prometheus
  # Debian's package starts a system-wide Prometheus on 9090; Geo starts its own (./geo up --prometheus).
  if is_root && command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus >/dev/null 2>&1 || true
  fi
}

# ops/check (promtool check config/rules, promtool test rules, scrape configuration vs topology), counted in the
# summary like the terraform checks: its "ops: N passed, M failed" line, and one failure if it fails without one.
ops_checks() {
  ensure_promtool
  say "geo: ops checks (Prometheus configuration and alerting rules)"
  local opslog opsline opsrc
  opslog="$(mktemp)"
  set +e
  ops/check 2>&1 | tee "$opslog" >&2
  opsrc=${PIPESTATUS[0]}
  set -e
  opsline=$(grep -E '^ops: [0-9]+ passed, [0-9]+ failed' "$opslog" | tail -n 1 || true)
  if [ -n "$opsline" ]; then
    passed=$((passed + $(echo "$opsline" | awk '{print $2}')))
    failed=$((failed + $(echo "$opsline" | awk '{print $4}')))
  fi
  if [ "$opsrc" -ne 0 ] && { [ -z "$opsline" ] || [ "$(echo "$opsline" | awk '{print $4}')" = 0 ]; }; then
    failed=$((failed + 1))
  fi
  rm -f "$opslog"
}

# ---- the local system --------------------------------------------------------------------------------
GEO_DIR="$ROOT/.geo"
TOPOLOGY="$ROOT/config/topology.local.json"
PG_PORT=5433
REDIS_PORT=6380
# Mutual TLS between the services: the local CA and a certificate per region and role (geoctl auth certs), never
# checked in. curl talks to the services as the admin (health is anonymous; the API and /metrics are not).
PKI_DIR="$GEO_DIR/pki"
TLS="--cacert .geo/pki/ca.crt --cert .geo/pki/global-admin.crt --key .geo/pki/global-admin.key"
# Services started per region, in start order; each entry is project:topology-key.
SERVICES="ShardDirectory:directory RegionService:api EdgeRouter:edge Replicator:replicator"

pg_data_dir() {
  # Postgres refuses to run as root; as root the cluster belongs to the postgres user, who must be able to reach it.
  if is_root && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    echo "/var/tmp/geo-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)/pgdata"
  else
    echo "$GEO_DIR/pgdata"
  fi
}

as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

topology_databases() {
  python3 - "$TOPOLOGY" <<'PY'
import json, re, sys
for region in json.load(open(sys.argv[1]))["regions"].values():
    for cs in list(region["shards"].values()) + [region.get("directoryDatabase", "")]:
        m = re.search(r"Database=([^;]+)", cs)
        if m:
            print(m.group(1))
PY
}

start_postgres() {
  local data; data="$(pg_data_dir)"
  mkdir -p "$GEO_DIR/logs" "$(dirname "$data")"
  if is_root; then chown postgres "$(dirname "$data")"; fi
  if [ ! -s "$data/PG_VERSION" ]; then
    say "geo: creating the PostgreSQL cluster in $data"
    as_pg initdb -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    printf "listen_addresses = '127.0.0.1'\nport = %s\nmax_connections = 400\nunix_socket_directories = '%s'\n" "$PG_PORT" "$data" >> "$data/postgresql.conf"
  fi
  if ! as_pg pg_ctl -D "$data" status >/dev/null 2>&1; then
    local log="$GEO_DIR/logs/postgres.log"
    touch "$log"; if is_root; then chown postgres "$log"; fi
    as_pg pg_ctl -D "$data" -l "$log" -w -t 60 start >/dev/null || die "PostgreSQL did not start; see $log"
  fi
  local db
  for db in $(topology_databases); do
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" postgres | grep -q 1 \
      || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE $db" postgres
  done
}

start_redis() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return; fi
  mkdir -p "$GEO_DIR/redis" "$GEO_DIR/logs"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$GEO_DIR/redis" --save "" --appendonly no \
    --daemonize yes --pidfile "$GEO_DIR/redis/redis.pid" --logfile "$GEO_DIR/logs/redis.log" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  die "Redis did not start; see $GEO_DIR/logs/redis.log"
}

# endpoint REGION KEY: a region's URL from the topology (first one for lists).
endpoint() {
  python3 - "$TOPOLOGY" "$1" "$2" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))["regions"][sys.argv[2]][sys.argv[3]]
print(value[0] if isinstance(value, list) else value)
PY
}

# service_table: "project region url" for every service of every region, in start order (one python start, not 16).
service_table() {
  python3 - "$TOPOLOGY" $SERVICES <<'PY'
import json, sys
regions = json.load(open(sys.argv[1]))["regions"]
for entry in sys.argv[2:]:
    project, key = entry.split(":")
    for region, spec in regions.items():
        url = spec[key][0] if isinstance(spec[key], list) else spec[key]
        print(project, region, url)
PY
}

# ensure_pki: the local CA and every region's certificates under .geo/pki (made once; geoctl is built only then).
ensure_pki() {
  local missing=0 region role
  for region in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["regions"]))' "$TOPOLOGY"); do
    for role in edge api directory replicator; do [ -s "$PKI_DIR/$region-$role.key" ] || missing=1; done
  done
  [ -s "$PKI_DIR/ca.crt" ] && [ -s "$PKI_DIR/global-admin.key" ] || missing=1
  [ "$missing" = 1 ] || return 0
  say "geo: creating the local CA and service certificates in .geo/pki"
  dotnet build src/Cli -c Release -v quiet --nologo "-clp:ErrorsOnly;NoSummary" >&2
  dotnet src/Cli/bin/Release/net10.0/geoctl.dll auth certs --out "$PKI_DIR" --topology "$TOPOLOGY" >&2
}

# role_of PROJECT: the certificate role a service runs as.
role_of() {
  case "$1" in ShardDirectory) echo directory ;; RegionService) echo api ;; EdgeRouter) echo edge ;; Replicator) echo replicator ;; esac
}

# alive PID: the process exists and is not a zombie. `kill -0` is no test: a killed process whose parent does not reap it
# (a container whose init reaps no orphans) stays in the process table as a zombie, and kill -0 succeeds on it.
alive() {
  local stat
  [ -n "${1:-}" ] && stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"   # the fields after "(comm)"; the first is the state
  case "${stat%% *}" in Z|X|x|"") return 1 ;; *) return 0 ;; esac
}

# service_alive NAME: the process recorded in .geo/run/NAME.pid is alive and still that service (pids get reused).
service_alive() {
  local pidfile="$GEO_DIR/run/$1.pid" pid
  [ -f "$pidfile" ] && pid="$(cat "$pidfile")" && alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "Geo.${1%%-*}.dll"
}

# stop_service NAME [SECONDS]: SIGTERM (the service drains: readiness down, in-flight requests finish), waits until it is
# gone, SIGKILL after SECONDS (default 40: the default shutdown delay + drain is 22 s).
stop_service() {
  local name="$1" limit="${2:-40}" pidfile="$GEO_DIR/run/$1.pid" pid _
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if service_alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $(( limit * 10 ))); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then say "geo: $name did not stop within $limit s; killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

# The local development issuer (issue 11): a signing key pair under .geo/secrets/ (never checked in), made once by
# geoctl; every local service trusts its public key, and ./geo ctl auth token signs tokens with its private key.
GEOCTL_DLL="src/Cli/bin/Release/net10.0/geoctl.dll"
geoctl() { dotnet "$GEOCTL_DLL" "$@"; }
ensure_dev_issuer() {
  if [ ! -f "$GEOCTL_DLL" ] || [ -n "$(find src/Cli -newer "$GEOCTL_DLL" -type f -not -path '*/bin/*' -not -path '*/obj/*' -print -quit)" ]; then
    dotnet build src/Cli -c Release -v quiet --nologo "-clp:ErrorsOnly;NoSummary" >&2
  fi
  geoctl auth dev-issuer --dir "$GEO_DIR/secrets" >/dev/null
  # The key of the users' hashes in logs (docs/security.md): one per local system, so every process names a user alike.
  [ -s "$GEO_DIR/secrets/user-hash-key" ] || (umask 077; head -c 32 /dev/urandom | base64 > "$GEO_DIR/secrets/user-hash-key")
}
auth_args() {
  printf '%s\n' --Geo:Auth:Audience=geo-api --Geo:Auth:Issuers:0:Issuer=https://dev-issuer.geo.local \
    "--Geo:Auth:Issuers:0:SigningKeyFile=$GEO_DIR/secrets/issuer.pub.pem"
}

start_service() {
  local project="$1" region="$2" url="$3" name="$1-$2" role
  role="$(role_of "$1")"
  local pidfile="$GEO_DIR/run/$name.pid"
  if service_alive "$name"; then return; fi
  mkdir -p "$GEO_DIR/run" "$GEO_DIR/logs"
  # Sixteen processes on a small machine: workstation GC (server GC gives each process a heap and GC thread per core)
  # and no tiered-PGO instrumentation make start-up cheaper; neither changes behaviour.
  # The log hash key travels in the environment, not on the command line that ps shows.
  Geo__Logging__UserHashKey="$(cat "$GEO_DIR/secrets/user-hash-key")" DOTNET_gcServer=0 DOTNET_TieredPGO=0 nohup dotnet "src/$project/bin/Release/net10.0/Geo.$project.dll" --urls="$url" \
    --Geo:Region="$region" --Geo:Topology="$TOPOLOGY" --Geo:Tls:CaFile="$PKI_DIR/ca.crt" \
    --Geo:Tls:CertificateFile="$PKI_DIR/$region-$role.crt" --Geo:Tls:KeyFile="$PKI_DIR/$region-$role.key" \
    $(auth_args) >"$GEO_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! > "$pidfile"
}

ready() {
  # Every service serves HTTPS (HTTP/1.1 and HTTP/2 by ALPN); health is anonymous but the server is checked against the CA.
  # shellcheck disable=SC2086
  curl $TLS -fsS -m 1 "$1/healthz/ready" >/dev/null 2>&1
}

# wait_ready DEADLINE < "project region url" lines: polls every pending service (in parallel) until all are ready.
wait_ready() {
  local deadline=$1 project region url pending=() next
  : > "$GEO_DIR/run/ready.out"
  while read -r project region url; do pending+=("$project $region $url"); done
  while [ ${#pending[@]} -gt 0 ]; do
    local probes=()
    for entry in "${pending[@]}"; do
      read -r project region url <<<"$entry"
      ( ready "$url" && echo "$entry" ) >>"$GEO_DIR/run/ready.out" &
      probes+=($!)
    done
    wait "${probes[@]}" || true   # only the probes: a bare wait would wait for the services themselves
    next=()
    for entry in "${pending[@]}"; do
      grep -qxF "$entry" "$GEO_DIR/run/ready.out" && continue
      read -r project region url <<<"$entry"
      service_alive "$project-$region" || die "$project-$region exited; see .geo/logs/$project-$region.log"
      next+=("$entry")
    done
    pending=("${next[@]+"${next[@]}"}")
    [ ${#pending[@]} -eq 0 ] && break
    [ "$(date +%s)" -lt "$deadline" ] || die "not ready after 300 s: ${pending[*]%% http*}; see .geo/logs/"
    sleep 0.2
  done
}

PROMETHEUS_ADDR=127.0.0.1:9090

# start_prometheus: a Prometheus with the alerting rules (ops/prometheus/rules) and a scrape configuration written by
# ops/prometheus/generate for the local topology (every service over https with the admin certificate of .geo/pki),
# config and data in .geo/prometheus; ./geo down stops it.
start_prometheus() {
  ensure_promtool
  command -v prometheus >/dev/null || die "prometheus not found after installing Debian's prometheus package"
  local dir="$GEO_DIR/prometheus" pid
  mkdir -p "$dir/data" "$GEO_DIR/logs"
  if [ -f "$dir/prometheus.pid" ] && pid="$(cat "$dir/prometheus.pid")" && [ -d "/proc/$pid" ] \
      && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$dir/prometheus.yml"; then
    return
  fi
  "$ROOT/ops/prometheus/generate" --topology "$TOPOLOGY" --ca-file "$PKI_DIR/ca.crt" --cert-file "$PKI_DIR/global-admin.crt" \
    --key-file "$PKI_DIR/global-admin.key" --rules-dir "$ROOT/ops/prometheus/rules" -o "$dir/prometheus.yml"
  nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="$PROMETHEUS_ADDR" >"$GEO_DIR/logs/prometheus.log" 2>&1 </dev/null &
  echo $! > "$dir/prometheus.pid"
  local _
  for _ in $(seq 100); do curl -fsS -m 1 "http://$PROMETHEUS_ADDR/-/ready" >/dev/null 2>&1 && { say "geo: prometheus on http://$PROMETHEUS_ADDR"; return; }; sleep 0.3; done
  die "prometheus did not become ready; see .geo/logs/prometheus.log"
}

stop_prometheus() {
  local pidfile="$GEO_DIR/prometheus/prometheus.pid" pid _
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if [ -d "/proc/$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "prometheus/prometheus.yml"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

cmd_up() {
  local with_prometheus=0
  case "${1:-}" in
    --prometheus) with_prometheus=1 ;;
    "") ;;
    *) die "up: unknown option $1 (only --prometheus)" ;;
  esac
  ensure_prereqs
  command -v curl >/dev/null || apt_install curl
  local begun; begun=$(date +%s)
  build_services
  ensure_dev_issuer
  ensure_pki
  local started; started=$(date +%s)
  start_postgres
  start_redis
  local table project region url
  table="$(service_table)"
  say "geo: postgres and redis ready after $(( $(date +%s) - started )) s; starting 16 services"
  # Directories first (the APIs, edges and replicators read users and shard maps from them), then the rest at once.
  while read -r project region url; do start_service "$project" "$region" "$url"; done < <(grep '^ShardDirectory ' <<<"$table")
  wait_ready $(( started + 300 )) < <(grep '^ShardDirectory ' <<<"$table")
  say "geo: directories ready after $(( $(date +%s) - started )) s"
  while read -r project region url; do start_service "$project" "$region" "$url"; done < <(grep -v '^ShardDirectory ' <<<"$table")
  wait_ready $(( started + 300 )) < <(grep -v '^ShardDirectory ' <<<"$table")
  rm -f "$GEO_DIR/run/ready.out"
  [ "$with_prometheus" = 0 ] || start_prometheus
  cmd_status
  local edge; edge="$(endpoint us-east edge)"
  cat <<TRY

Ready in $(( $(date +%s) - started )) s after the build ($(( $(date +%s) - begun )) s in all). Try it through the us-east edge (an eu user lands in an eu region;
the edge serves HTTPS with a certificate of the local CA in .geo/pki; every call carries a bearer token):
  TOKEN=\$(./geo ctl auth token --service)
  USER_ID=\$(curl -s --cacert .geo/pki/ca.crt -X POST $edge/v1/users -H "authorization: Bearer \$TOKEN" -H 'content-type: application/json' -d '{"residency":"eu"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["userId"])')
  USER_TOKEN=\$(./geo ctl auth token --user \$USER_ID)
  curl -s --cacert .geo/pki/ca.crt -X PUT $edge/v1/users/\$USER_ID/docs/notes/hello -H "authorization: Bearer \$USER_TOKEN" -H 'content-type: application/json' -d '{"text":"hi"}'
  curl -si --cacert .geo/pki/ca.crt $edge/v1/users/\$USER_ID/docs/notes/hello -H "authorization: Bearer \$USER_TOKEN"
  curl -si --cacert .geo/pki/ca.crt $edge/v1/users/\$USER_ID/docs/notes/hello    # no token: 401
Stop with ./geo down (data stays in .geo/).
TRY
}

cmd_down() {
  local pidfile name
  # Every service at once: each drains (readiness down, in-flight requests finish) and exits; databases stop after them.
  for pidfile in "$GEO_DIR"/run/*.pid; do
    [ -f "$pidfile" ] || continue
    name="$(basename "$pidfile" .pid)"
    stop_service "$name" &
  done
  wait
  stop_prometheus
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  local data; data="$(pg_data_dir)"
  if [ -s "$data/PG_VERSION" ]; then as_pg pg_ctl -D "$data" -m fast -w stop >/dev/null 2>&1 || true; fi
  local crashed
  crashed="$(grep -l 'Unhandled exception' "$GEO_DIR"/logs/*.log 2>/dev/null || true)"
  [ -z "$crashed" ] || say "geo: a service crashed (\"Unhandled exception\") — see $(echo $crashed)"
  say "geo: stopped (data kept in .geo/)"
}

cmd_status() {
  local project region url state pidfile
  printf '%-16s %-12s %-26s %s\n' SERVICE REGION ENDPOINT STATE
  while read -r project region url; do
    pidfile="$GEO_DIR/run/$project-$region.pid"
    if ready "$url"; then state=ready
    elif service_alive "$project-$region"; then state=starting
    else state=down; fi
    printf '%-16s %-12s %-26s %s\n' "$project" "$region" "$url" "$state"
  done < <(service_table)
  printf '%-16s %-12s %-26s %s\n' postgres - "127.0.0.1:$PG_PORT" "$(pg_isready -h 127.0.0.1 -p "$PG_PORT" >/dev/null 2>&1 && echo ready || echo down)"
  printf '%-16s %-12s %-26s %s\n' redis - "127.0.0.1:$REDIS_PORT" "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && echo ready || echo down)"
  status_replication
}

# Replication lag between regions, read from each replicator's /metrics (mutual TLS, as the admin): seconds since the peer
# was last known to hold every change of the region (grows during a partition), and changes it has not acknowledged.
status_replication() {
  local project region url
  printf '\n%-12s %-12s %10s %10s\n' FROM TO LAG_S PENDING
  while read -r project region url; do
    [ "$project" = Replicator ] || continue
    # shellcheck disable=SC2086
    curl $TLS -fsS -m 2 "$url/metrics" 2>/dev/null | python3 -c '
import re, sys
region = sys.argv[1]
lag, pending = {}, {}
for line in sys.stdin:
    m = re.match(r"geo_replicator_(lag_seconds|pending)\{([^}]*)\} (\S+)", line)
    if not m: continue
    peer = re.search(r"peer=\"([^\"]+)\"", m.group(2))
    if peer: (lag if m.group(1) == "lag_seconds" else pending)[peer.group(1)] = float(m.group(3))
dash, down = "-", "down"
if not lag: print(f"{region:<12} {dash:<12} {down:>10} {dash:>10}")
for peer in sorted(lag):
    print(f"{region:<12} {peer:<12} {lag[peer]:>10.1f} {int(pending.get(peer, 0)):>10}")
' "$region" || true
  done < <(service_table)
}

# ---- the demo: a scripted walk-through of the whole story on the running local system --------------------
demo_step() { printf '\n== %s\n' "$*"; }
demo_fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

# demo_json FIELD: a field of the JSON on stdin.
demo_json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# demo_until SECONDS COMMAND...: retries COMMAND every 0.5 s until it succeeds or the time is up.
demo_until() {
  local limit=$1; shift
  local deadline=$(( $(date +%s) + limit ))
  until "$@"; do [ "$(date +%s)" -lt "$deadline" ] || return 1; sleep 0.5; done
}

cmd_demo() {
  local us_edge eu_central_api user headers value
  us_edge="$(endpoint us-east edge)"
  eu_central_api="$(endpoint eu-central api)"
  ready "$us_edge" || die "the local system is not running: ./geo up"
  headers="$(mktemp)"; trap 'rm -f "$headers"' RETURN
  # Every call carries a service token of the local development issuer (./geo ctl auth token --service).
  ensure_dev_issuer
  local token auth
  token="$(geoctl auth token --service --ttl 15m)"
  auth="authorization: Bearer $token"

  demo_step "1. An eu user created through the us-east edge lands in an eu region"
  user=$(curl $TLS -fsS -H "$auth" -D "$headers" -X POST "$us_edge/v1/users" -H 'content-type: application/json' -d '{"residency":"eu"}' | demo_json userId)
  grep -i '^geo-home-region: eu-' "$headers" || demo_fail "home region is not in eu"
  echo "user $user"

  demo_step "2. A write through the edge is read back from the other eu region after replication"
  curl $TLS -fsS -H "$auth" -o /dev/null -X PUT "$us_edge/v1/users/$user/docs/notes/demo" -H 'content-type: application/json' -d '{"step":2}'
  demo_until 30 sh -c "curl $TLS -fs -H '$auth' '$eu_central_api/v1/users/$user/docs/notes/demo' | grep -q '\"step\": 2'" \
    || demo_fail "eu-central did not receive the write within 30 s"
  echo "eu-central serves {\"step\": 2}"

  demo_step "3. The us databases hold nothing of that user"
  local db count
  for db in geo_us_east_0 geo_us_east_1 geo_us_west_0 geo_us_west_1; do
    count=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$db" -tAc "SELECT (SELECT count(*) FROM documents WHERE user_id = '$user') + (SELECT count(*) FROM change_log WHERE user_id = '$user')")
    [ "$count" = 0 ] || demo_fail "$db holds $count rows of $user"
    echo "$db: 0 rows"
  done

  demo_step "4. eu-west's API stops: the edge fails over to eu-central for reads and writes"
  kill -TERM "$(cat "$GEO_DIR/run/RegionService-eu-west.pid")"
  demo_until 30 sh -c "curl $TLS -fsS -H '$auth' -D '$headers' -o /dev/null -X PUT '$us_edge/v1/users/$user/docs/notes/demo' -H 'content-type: application/json' -d '{\"step\":4}' && grep -qi '^geo-region: eu-central' '$headers'" \
    || demo_fail "no failover write to eu-central within 30 s"
  grep -i '^geo-failover' "$headers" || demo_fail "the failover was not flagged"
  value=$(curl $TLS -fsS -H "$auth" "$us_edge/v1/users/$user/docs/notes/demo" | demo_json step)
  [ "$value" = 4 ] || demo_fail "read after failover returned step $value"
  echo "write and read served by eu-central (step $value)"

  demo_step "5. eu-west comes back and both eu regions converge"
  stop_service RegionService-eu-west   # waits until the drained process is gone
  ! grep -q 'Unhandled exception' "$GEO_DIR/logs/RegionService-eu-west.log" || demo_fail "eu-west's API crashed while stopping; see .geo/logs/RegionService-eu-west.log"
  echo "eu-west's API drained and exited cleanly"
  start_service RegionService eu-west "$(endpoint eu-west api)"
  demo_until 60 ready "$(endpoint eu-west api)" || demo_fail "eu-west did not come back within 60 s"
  demo_until 30 sh -c "curl $TLS -fs -H '$auth' '$(endpoint eu-west api)/v1/users/$user/docs/notes/demo' | grep -q '\"step\": 4'" \
    || demo_fail "eu-west did not converge to step 4 within 30 s"
  echo "eu-west and eu-central both serve {\"step\": 4}"

  demo_step "6. Every call needs a token, and a user's token opens that user only"
  local code other
  code=$(curl $TLS -s -o /dev/null -w '%{http_code}' "$us_edge/v1/users/$user/docs/notes/demo")
  [ "$code" = 401 ] || demo_fail "a call without a token answered $code, not 401"
  other=$(curl $TLS -fsS -H "$auth" -X POST "$us_edge/v1/users" -H 'content-type: application/json' -d '{"residency":"eu"}' | demo_json userId)
  code=$(curl $TLS -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $(geoctl auth token --user "$other" --ttl 5m)" "$us_edge/v1/users/$user/docs/notes/demo")
  [ "$code" = 403 ] || demo_fail "another user's token answered $code, not 403"
  code=$(curl $TLS -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $(geoctl auth token --user "$user" --ttl 5m)" "$us_edge/v1/users/$user/docs/notes/demo")
  [ "$code" = 200 ] || demo_fail "the user's own token answered $code, not 200"
  echo "no token: 401; another user's token: 403; the user's own token: 200"
  printf '\ndemo: every step passed\n'
}

usage() {
  cat >&2 <<'USAGE'
usage: ./geo <command>
  test      install prerequisites, build with warnings as errors, run every test; last line "N passed, N failed"
  up        run the local four-region system under .geo/ (directory, API, replicator, edge per region)
  up --prometheus   also start a Prometheus (127.0.0.1:9090) with ops/prometheus: scrape configuration and alerting rules
  down      stop it (data stays in .geo/)
  status    health of every process
  demo      a scripted walk-through on the running system (placement, replication, residency, failover)
  ctl ...   geoctl, the admin CLI
USAGE
}

case "${1:-}" in
  test) shift; cmd_test "$@" ;;
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  ctl) shift; dotnet build src/Cli -c Release -v quiet --nologo "-clp:ErrorsOnly;NoSummary" >&2; exec dotnet src/Cli/bin/Release/net10.0/geoctl.dll "$@" ;;
  demo) cmd_demo ;;
  -h|--help|help|"") usage ;;
  *) usage; exit 2 ;;
esac
