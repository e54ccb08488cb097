#!/usr/bin/env bash
# What authentication costs: the same cache-hit GET of one eu-west user's document through an eu-west EdgeRouter to
# the eu-west RegionService with bearer-JWT authentication ON at both (the edge and the API each validate the token)
# and OFF at both (Geo:Auth:Enabled=false: a second RegionService of eu-west on the same databases and Redis, and an
# edge whose topology copy routes to it), in one run, rounds interleaved; medians and the ratio are printed. Both paths
# send the same token, so only the validation and the policy checks differ. Needs the local system (./geo up).
# Loopback only; every load is bounded by -d.
#   bench/edge-auth.sh [seconds=5] [connections=16] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-5}"
CONNECTIONS="${2:-16}"
ROUNDS="${3:-3}"
EDGE="https://127.0.0.1:8082"                      # eu-west's edge in config/topology.local.json (creates the user)
ON_PORT=18184; OFF_PORT=18185; OFF_API_PORT=18193  # private to this script: ./geo up uses 8080-8113
ON="https://127.0.0.1:$ON_PORT"; OFF="https://127.0.0.1:$OFF_PORT"; OFF_API="https://127.0.0.1:$OFF_API_PORT"
CA=(--cacert .geo/pki/ca.crt)
# Every service speaks TLS with its eu-west certificate of the local CA, as ./geo up starts them (docs/mtls.md).
tls() { echo --Geo:Tls:CaFile=.geo/pki/ca.crt --Geo:Tls:CertificateFile=.geo/pki/eu-west-"$1".crt --Geo:Tls:KeyFile=.geo/pki/eu-west-"$1".key; }

command -v wrk >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -q wrk >/dev/null; } || { echo "needs wrk: apt-get install -y wrk" >&2; exit 2; }
curl -fsS -m 2 "${CA[@]}" "$EDGE/healthz/ready" >/dev/null || { echo "the local system is not running: ./geo up" >&2; exit 2; }
TOKEN=$(./geo ctl auth token --service --ttl 1h)
AUTH="authorization: Bearer $TOKEN"

TMP=$(mktemp -d); PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT

# The topology copy of the OFF path: eu-west's API is the auth-off RegionService.
python3 - "$TMP/topology.json" "$OFF_API" <<'PY'
import json, sys
t = json.load(open("config/topology.local.json"))
t["regions"]["eu-west"]["api"] = [sys.argv[2]]
json.dump(t, open(sys.argv[1], "w"), indent=2)
PY

LIMITS=(--Geo:Edge:ClientRequestsPerSecond=1000000 --Geo:Edge:ClientBurst=1000000 --Geo:Edge:UserRequestsPerSecond=1000000
  --Geo:Edge:UserBurst=1000000 --Logging:LogLevel:Default=Warning)
TRUST=(--Geo:Auth:Audience=geo-api --Geo:Auth:Issuers:0:Issuer=https://dev-issuer.geo.local
  --Geo:Auth:Issuers:0:SigningKeyFile=.geo/secrets/issuer.pub.pem)
dotnet src/RegionService/bin/Release/net10.0/Geo.RegionService.dll --urls="$OFF_API" --Geo:Region=eu-west \
  --Geo:Topology="$TMP/topology.json" --Geo:Auth:Enabled=false --Logging:LogLevel:Default=Warning $(tls api) >"$TMP/api-off.log" 2>&1 &
PIDS+=($!)
dotnet src/EdgeRouter/bin/Release/net10.0/Geo.EdgeRouter.dll --urls="$ON" --Geo:Region=eu-west \
  --Geo:Topology=config/topology.local.json "${LIMITS[@]}" "${TRUST[@]}" $(tls edge) >"$TMP/edge-on.log" 2>&1 &
PIDS+=($!)
dotnet src/EdgeRouter/bin/Release/net10.0/Geo.EdgeRouter.dll --urls="$OFF" --Geo:Region=eu-west \
  --Geo:Topology="$TMP/topology.json" "${LIMITS[@]}" --Geo:Auth:Enabled=false $(tls edge) >"$TMP/edge-off.log" 2>&1 &
PIDS+=($!)
for url in "$OFF_API" "$ON" "$OFF"; do
  for _ in $(seq 300); do curl -fsS -m 1 "${CA[@]}" "$url/healthz/ready" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fsS -m 1 "${CA[@]}" "$url/healthz/ready" >/dev/null || { echo "$url not ready; logs:" >&2; tail -5 "$TMP"/*.log >&2; exit 1; }
done

USER_ID=$(curl -fsS "${CA[@]}" -H "$AUTH" -X POST "$EDGE/v1/users" -H 'content-type: application/json' -d '{"residency":"eu","homeRegion":"eu-west"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["userId"])')
curl -fsS "${CA[@]}" -H "$AUTH" -X PUT "$EDGE/v1/users/$USER_ID/docs/bench/hot" -H 'content-type: application/json' -d '{"n":1}' >/dev/null
DOC="/v1/users/$USER_ID/docs/bench/hot"
for target in "$ON" "$OFF"; do
  code=$(curl -s "${CA[@]}" -H "$AUTH" -o /dev/null -w '%{http_code}' "$target$DOC")
  [ "$code" = 200 ] || { echo "$target$DOC answered $code" >&2; exit 1; }
done
# The checks are real on the ON path and absent on the OFF path.
[ "$(curl -s "${CA[@]}" -o /dev/null -w '%{http_code}' "$ON$DOC")" = 401 ] || { echo "the auth-on edge served a request without a token" >&2; exit 1; }
[ "$(curl -s "${CA[@]}" -o /dev/null -w '%{http_code}' "$OFF$DOC")" = 200 ] || { echo "the auth-off path refused a request without a token" >&2; exit 1; }

url_of() { case $1 in on) echo "$ON" ;; off) echo "$OFF" ;; esac; }
run() { wrk -H "$AUTH" -t"$(( $2 < 2 ? $2 : 2 ))" -c"$2" -d"${SECONDS_PER_RUN}s" -s bench/wrk-report.lua "$1$DOC" | awk '/^RESULT/ {print $2, $3, $4, $5}'; }
echo "user $USER_ID; $ROUNDS rounds of $SECONDS_PER_RUN s per run, paths interleaved; throughput at $CONNECTIONS connections, latency at 1 connection" >&2
for name in on off; do run "$(url_of $name)" 2 >/dev/null; done   # warm-up, not reported
: > "$TMP/results"
for round in $(seq "$ROUNDS"); do
  for name in on off; do
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
med = statistics.median
rows = {n: (med([r[0] for r in runs[(n, "tp")]]), med([r[1] for r in runs[(n, "lat")]]), med([r[2] for r in runs[(n, "lat")]]),
            sum(r[3] for r in runs[(n, "tp")] + runs[(n, "lat")])) for n in ["off", "on"]}
print(f"medians of {len(runs[('on', 'tp')])} interleaved rounds (cache-hit GET through the edge)")
print(f"{'authentication':16} {'req/s':>9} {'x off':>7} {'p50 us':>8} {'p99 us':>8} {'errors':>7}")
for name, (rps, p50, p99, err) in rows.items():
    print(f"{name:16} {rps:9.0f} {rps / rows['off'][0]:7.2f} {p50:8.0f} {p99:8.0f} {err:7d}")
PY
