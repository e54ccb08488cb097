#!/usr/bin/env bash
# What the EdgeRouter costs: the same cache-hit GET of one eu-west user's document sent (1) through nginx to the eu-west
# RegionService (keep-alive TLS with eu-west's edge certificate, bench/lib/tls-forwarder.sh: the API takes mutual TLS
# only, which wrk cannot speak, so nginx is the baseline) and (2) through an EdgeRouter of eu-west, in one run, so the
# figures are read as ratios on a shared, noisy machine.
# Per target: a throughput run (wrk, C connections, closed loop) and a latency run (1 connection, so p50/p99 are the
# per-request cost without queueing). The paths take turns, round after round, and the medians are reported, so a
# burst of load from elsewhere on the machine does not land on one path only. Needs the local system (./geo up);
# installs nginx with apt-get when missing.
# Loopback only; every load is bounded by -d.
#   bench/edge-vs-direct.sh [seconds=5] [connections=16] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-5}"
CONNECTIONS="${2:-16}"
ROUNDS="${3:-3}"
UPSTREAM="127.0.0.1:8092"              # eu-west RegionService in config/topology.local.json (mutual TLS)
LOCAL_EDGE="https://127.0.0.1:8082"     # eu-west's ./geo up edge: creates the user
EDGE_PORT=18182; NGINX_PORT=18183       # private to this script: ./geo up uses 8080-8113
EDGE="https://127.0.0.1:$EDGE_PORT"; NGINX="http://127.0.0.1:$NGINX_PORT"
CA=(--cacert .geo/pki/ca.crt)

command -v wrk >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || { echo "needs wrk: apt-get install -y wrk" >&2; exit 2; }
curl -fsS -m 2 "${CA[@]}" "$LOCAL_EDGE/healthz/ready" >/dev/null || { echo "the local system is not running: ./geo up" >&2; exit 2; }
# shellcheck source=lib/tls-forwarder.sh
. bench/lib/tls-forwarder.sh
# A service token of the local development issuer (./geo up made it); every request below carries it.
TOKEN=$(./geo ctl auth token --service --ttl 1h)
AUTH="authorization: Bearer $TOKEN"

TMP=$(mktemp -d); EDGE_PID=""
cleanup() {
  [ -n "$EDGE_PID" ] && kill "$EDGE_PID" 2>/dev/null && wait "$EDGE_PID" 2>/dev/null
  stop_tls_forwarder "$TMP/nginx"
  rm -rf "$TMP"
}
trap cleanup EXIT

# An edge of eu-west with the per-client and per-user limits raised out of the way: the ./geo up edges would answer 429
# after 20 requests/s to one user, which is their job but not what is measured here. Same build, same topology.
dotnet src/EdgeRouter/bin/Release/net10.0/Geo.EdgeRouter.dll --urls="$EDGE" --Geo:Region=eu-west \
  --Geo:Topology=config/topology.local.json --Geo:Edge:ClientRequestsPerSecond=1000000 --Geo:Edge:ClientBurst=1000000 \
  --Geo:Edge:UserRequestsPerSecond=1000000 --Geo:Edge:UserBurst=1000000 --Logging:LogLevel:Default=Warning \
  --Geo:Auth:Audience=geo-api --Geo:Auth:Issuers:0:Issuer=https://dev-issuer.geo.local \
  --Geo:Auth:Issuers:0:SigningKeyFile=.geo/secrets/issuer.pub.pem --Geo:Tls:CaFile=.geo/pki/ca.crt \
  --Geo:Tls:CertificateFile=.geo/pki/eu-west-edge.crt --Geo:Tls:KeyFile=.geo/pki/eu-west-edge.key \
  >"$TMP/edge.log" 2>&1 &
EDGE_PID=$!

tls_forwarder "$TMP/nginx" "$NGINX_PORT" "$UPSTREAM"

for _ in $(seq 300); do curl -fsS -m 1 "${CA[@]}" "$EDGE/healthz/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS -m 1 "${CA[@]}" "$EDGE/healthz/ready" >/dev/null || { echo "benchmark edge not ready; log:" >&2; tail -5 "$TMP/edge.log" >&2; exit 1; }

USER_ID=$(curl -fsS "${CA[@]}" -H "$AUTH" -X POST "$LOCAL_EDGE/v1/users" -H 'content-type: application/json' -d '{"residency":"eu","homeRegion":"eu-west"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["userId"])')
curl -fsS "${CA[@]}" -H "$AUTH" -X PUT "$LOCAL_EDGE/v1/users/$USER_ID/docs/bench/hot" -H 'content-type: application/json' -d '{"n":1}' >/dev/null
DOC="/v1/users/$USER_ID/docs/bench/hot"
for target in "$EDGE" "$NGINX"; do
  code=$(curl -s "${CA[@]}" -H "$AUTH" -o /dev/null -w '%{http_code}' "$target$DOC")
  [ "$code" = 200 ] || { echo "$target$DOC answered $code" >&2; exit 1; }
done
[ "$(curl -fsS "${CA[@]}" -H "$AUTH" -D - -o /dev/null "$EDGE$DOC" | tr -d '\r' | awk -F': ' 'tolower($1)=="geo-region" {print $2}')" = eu-west ] \
  || { echo "the edge did not route to eu-west" >&2; exit 1; }


url_of() { case $1 in edge) echo "$EDGE" ;; nginx) echo "$NGINX" ;; esac; }

# run URL CONNECTIONS -> "rps p50_us p99_us errors"
run() { wrk -H "$AUTH" -t"$(( $2 < 2 ? $2 : 2 ))" -c"$2" -d"${SECONDS_PER_RUN}s" -s bench/wrk-report.lua "$1$DOC" | awk '/^RESULT/ {print $2, $3, $4, $5}'; }
echo "user $USER_ID; $ROUNDS rounds of $SECONDS_PER_RUN s per run, paths interleaved; throughput at $CONNECTIONS connections, latency at 1 connection" >&2
for name in nginx edge; do run "$(url_of $name)" 2 >/dev/null; done   # warm-up (JIT, pools, cache), not reported
: > "$TMP/results"
for round in $(seq "$ROUNDS"); do
  for name in nginx edge; do
    echo "$name tp $(run "$(url_of $name)" "$CONNECTIONS")" >> "$TMP/results"
    echo "$name lat $(run "$(url_of $name)" 1)" >> "$TMP/results"
  done
done

python3 - "$TMP/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, kind, rps, p50, p99, errors = line.split()
    runs.setdefault((name, kind), []).append((float(rps), float(p50), float(p99), int(errors)))
med = lambda xs: statistics.median(xs)
rows = {}
for name in ["nginx", "edge"]:
    tp, lat = runs[(name, "tp")], runs[(name, "lat")]
    rows[name] = (med([r[0] for r in tp]), med([r[1] for r in lat]), med([r[2] for r in lat]), sum(r[3] for r in tp + lat))
d = rows["nginx"]
print(f"medians of {len(runs[('nginx', 'tp')])} interleaved rounds")
print(f"{'path':34} {'req/s':>9} {'x nginx':>8} {'p50 us':>8} {'p99 us':>8} {'+p50 us':>8} {'+p99 us':>8} {'errors':>7}")
labels = {"nginx": "nginx -> RegionService (mTLS)", "edge": "EdgeRouter -> RegionService (mTLS)"}
for name, (rps, p50, p99, err) in rows.items():
    print(f"{labels[name]:34} {rps:9.0f} {rps / d[0]:8.2f} {p50:8.0f} {p99:8.0f} {p50 - d[1]:8.0f} {p99 - d[2]:8.0f} {err:7d}")
PY
