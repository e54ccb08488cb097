#!/usr/bin/env bash
# Throughput of one RegionService (PUT, cache-hit GET) against pgbench running the same write transaction on the
# same shard database, in the same run, so the figures are read as ratios on a shared, noisy machine.
# Needs the local system: ./geo up. The API takes mutual TLS only, so wrk's requests pass a loopback nginx holding
# eu-west's edge certificate (bench/lib/tls-forwarder.sh); its cost counts against Geo. Loopback only; every load is bounded by -d.
#   bench/region-vs-pgbench.sh [seconds=15] [connections=8]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-15}"
CONNECTIONS="${2:-8}"
UPSTREAM="127.0.0.1:8092"            # eu-west's RegionService in config/topology.local.json (mutual TLS)
API="http://127.0.0.1:18194"         # the TLS forwarder in front of it: wrk cannot present a client certificate
PG="-h 127.0.0.1 -p 5433 -U postgres"
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 2; }
curl -fsS -m 2 --cacert .geo/pki/ca.crt "https://$UPSTREAM/healthz/ready" >/dev/null || { echo "the local system is not running: ./geo up" >&2; exit 2; }
# shellcheck source=lib/tls-forwarder.sh
. bench/lib/tls-forwarder.sh
TMP=$(mktemp -d); trap 'stop_tls_forwarder "$TMP/nginx"; rm -rf "$TMP"' EXIT
tls_forwarder "$TMP/nginx" 18194 "$UPSTREAM"
# A service token of the local development issuer (./geo up made it); every request below carries it.
TOKEN=$(./geo ctl auth token --service --ttl 1h)
AUTH="authorization: Bearer $TOKEN"

USER_ID=$(curl -fsS -H "$AUTH" -X POST "$API/v1/users" -H 'content-type: application/json' -d '{"residency":"eu","homeRegion":"eu-west"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["userId"])')
curl -fsS -H "$AUTH" -X PUT "$API/v1/users/$USER_ID/docs/bench/hot" -H 'content-type: application/json' -d '{"n":1}' >/dev/null
curl -fsS -H "$AUTH" "$API/v1/users/$USER_ID/docs/bench/hot" >/dev/null     # populate the cache
SHARD_DB=""
for db in geo_eu_west_0 geo_eu_west_1; do
  if [ "$(psql $PG -d "$db" -tAc "SELECT count(*) FROM documents WHERE user_id = '$USER_ID'")" = 1 ]; then SHARD_DB=$db; fi
done
[ -n "$SHARD_DB" ] || { echo "could not find the user's shard" >&2; exit 1; }

cat > "$TMP/put.lua" <<LUA
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"n":1,"text":"benchmark body of a typical small document"}'
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/users/$USER_ID/docs/bench/k" .. (n % 1000))
end
LUA
cat > "$TMP/upsert.sql" <<SQL
\set k random(0, 999)
\set hlc random(1, 1000000000000)
BEGIN;
SELECT pg_advisory_xact_lock_shared(26469, hashtext('$USER_ID'));
SELECT body FROM documents WHERE user_id = '$USER_ID' AND collection = 'pgbench' AND key = 'k' || :k FOR UPDATE;
INSERT INTO documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, updated_at)
VALUES ('$USER_ID', 'pgbench', 'k' || :k, 0, '{"n":1,"text":"benchmark body of a typical small document"}', false, :hlc, 'eu-west', now())
ON CONFLICT (user_id, collection, key) DO UPDATE SET body = EXCLUDED.body, version_hlc = EXCLUDED.version_hlc, updated_at = now();
SELECT pg_advisory_xact_lock(29103451617914727);
INSERT INTO change_log (bucket, user_id, kind, collection, key, body, deleted, version_hlc, version_origin, origin, created_at)
VALUES (0, '$USER_ID', 'doc', 'pgbench', 'k' || :k, '{"n":1,"text":"benchmark body of a typical small document"}', false, :hlc, 'eu-west', 'eu-west', now());
END;
SQL

rps() { awk '/Requests\/sec/ {print $2}'; }
echo "user $USER_ID on $SHARD_DB; $CONNECTIONS connections, $SECONDS_PER_RUN s each" >&2
PUT_RPS=$(wrk -H "$AUTH" -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s "$TMP/put.lua" "$API" | tee "$TMP/put.txt" | rps)
GET_RPS=$(wrk -H "$AUTH" -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "$API/v1/users/$USER_ID/docs/bench/hot" | tee "$TMP/get.txt" | rps)
PG_TPS=$(pgbench $PG -n -c "$CONNECTIONS" -j 2 -T "$SECONDS_PER_RUN" -f "$TMP/upsert.sql" "$SHARD_DB" 2>/dev/null | awk '/^tps/ {print $3; exit}')
grep -E "Latency|Non-2xx" "$TMP/put.txt" "$TMP/get.txt" >&2 || true
python3 - "$PUT_RPS" "$GET_RPS" "$PG_TPS" <<'PY'
import sys
put, get, pg = map(float, sys.argv[1:])
print(f"RegionService PUT        {put:10.0f} req/s   {put/pg:5.2f} x pgbench")
print(f"RegionService GET (hit)  {get:10.0f} req/s   {get/pg:5.2f} x pgbench")
print(f"pgbench same upsert      {pg:10.0f} tx/s    1.00")
PY
