#!/usr/bin/env bash
# geo: the one entry point for contributors and CI.
#   ./geo test     restore, build (warnings as errors), run every test project, the terraform checks and the ops
#                  checks (ops/check: promtool on the Prometheus configuration and alerting rules);
#                  the last line is "N passed, N failed".
#   ./geo up|down|status|demo   the local four-region system (see README): geoctl dev up|down|status|demo
#                  (src/Cli/Dev) after the prerequisites and the build.
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

# ---- the local system: geoctl dev (src/Cli/Dev), on the process harness the tests use (src/Dev) --------------
GEO_DIR="$ROOT/.geo"
GEOCTL_DLL="src/Cli/bin/Release/net10.0/geoctl.dll"

# build_local: the four services and geoctl (Geo.Local.slnf), skipped when nothing they are built from changed since the
# last build: ./geo up runs the built dlls, and a no-op dotnet build still costs tens of seconds on two cores.
build_local() {
  local stamp="$GEO_DIR/build.stamp" project
  if [ -f "$stamp" ] && [ -f "$GEOCTL_DLL" ]; then
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
  dotnet build Geo.Local.slnf -c Release -v quiet --nologo "-clp:ErrorsOnly;NoSummary" >&2
  touch "$stamp"
}

# runner ARGS: geoctl dev ARGS, with PostgreSQL's tools on PATH; geoctl is built first when missing or older than its
# sources (up builds it with the services).
runner() {
  if [ "${1:-}" != up ] && { [ ! -f "$GEOCTL_DLL" ] || [ -n "$(find src/Cli src/Dev src/Core -newer "$GEOCTL_DLL" -type f -not -path '*/bin/*' -not -path '*/obj/*' -print -quit)" ]; }; then
    dotnet build src/Cli -c Release -v quiet --nologo "-clp:ErrorsOnly;NoSummary" >&2
  fi
  if PG_BIN="$(pg_bindir)"; then export PATH="$PG_BIN:$PATH"; fi
  exec dotnet "$GEOCTL_DLL" dev "$@"
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
  up) shift; ensure_prereqs; command -v curl >/dev/null || apt_install curl; [ "${1:-}" != --prometheus ] || ensure_promtool; begun=$(date +%s); build_local; runner up --build-began "$begun" "$@" ;;
  down) runner down ;;
  status) runner status ;;
  ctl) shift; dotnet build src/Cli -c Release -v quiet --nologo "-clp:ErrorsOnly;NoSummary" >&2; exec dotnet src/Cli/bin/Release/net10.0/geoctl.dll "$@" ;;
  demo) runner demo ;;
  -h|--help|help|"") usage ;;
  *) usage; exit 2 ;;
esac
