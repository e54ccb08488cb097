#!/usr/bin/env bash
# geo: the one entry point for contributors and CI.
#   ./geo test     restore, build (warnings as errors), run every test project and the terraform checks;
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

cmd_test() {
  ensure_prereqs
  say "geo: building (Release, warnings as errors)"
  build
  local log passed=0 failed=0 skipped=0 rc=0
  log="$(mktemp)"
  say "geo: running tests"
  set +e
  timeout 1500 dotnet test --solution Geo.sln -c Release --no-build --no-progress 2>&1 | tee "$log" >&2
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

  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}

usage() {
  cat >&2 <<'USAGE'
usage: ./geo <command>
  test      install prerequisites, build with warnings as errors, run every test; last line "N passed, N failed"
  up        run the local four-region system under .geo/
  down      stop it (data stays in .geo/)
  status    health of every process
USAGE
}

case "${1:-}" in
  test) shift; cmd_test "$@" ;;
  up|down|status|demo|ctl)
    die "'$1' arrives with the services (issue: EdgeRouter and the local multi-region system); today only './geo test' works" ;;
  -h|--help|help|"") usage ;;
  *) usage; exit 2 ;;
esac
