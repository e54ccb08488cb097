#!/usr/bin/env bash
# Rows moved per second by `geoctl shards apply` against `psql \copy` (out of the source, into the target) between the
# same two shard databases, in the same run, so the figure is read as a ratio on a shared, noisy machine.
# Self-contained: starts a throwaway PostgreSQL (as the postgres user when root) and one ShardDirectory on free
# loopback ports, seeds the source shard, and removes everything at exit. Needs `dotnet build Geo.sln -c Release` first.
#   bench/move-vs-copy.sh [rows=300000]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROWS="${1:-300000}"
[[ "$ROWS" =~ ^[0-9]+$ ]] && [ "$ROWS" -ge 1000 ] && [ "$ROWS" -le 20000000 ] || { echo "rows: 1000 to 20000000" >&2; exit 2; }
GEOCTL="$ROOT/src/Cli/bin/Release/net10.0/geoctl.dll"
DIRECTORY_DLL="$ROOT/src/ShardDirectory/bin/Release/net10.0/Geo.ShardDirectory.dll"
[ -f "$GEOCTL" ] && [ -f "$DIRECTORY_DLL" ] || { echo "build first: dotnet build Geo.sln -c Release" >&2; exit 2; }

pg_bindir() {
  if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  echo "PostgreSQL binaries (initdb, pg_ctl) not found; apt-get install -y postgresql" >&2; exit 2
}
PG_BIN=$(pg_bindir)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

TMP=$(mktemp -d /tmp/geo-move-bench.XXXXXX); chmod 755 "$TMP"
DIR_PID=""
cleanup() {
  [ -n "$DIR_PID" ] && kill "$DIR_PID" 2>/dev/null || true
  [ -f "$TMP/data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

PG_PORT=$(free_port)
mkdir "$TMP/data"; [ "$(id -u)" = 0 ] && chown postgres "$TMP/data"
as_pg "$PG_BIN/initdb" -D "$TMP/data" -U postgres -A trust -E UTF8 --locale=C --no-instructions >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$TMP/data" -l "$TMP/data/postgres.log" -w -t 60 -o "-p $PG_PORT -k $TMP/data -c listen_addresses=127.0.0.1" start >/dev/null
PSQL_BIN=$(command -v psql || echo "$PG_BIN/psql")
PSQL="$PSQL_BIN -h 127.0.0.1 -p $PG_PORT -U postgres -v ON_ERROR_STOP=1 -q"
CS() { echo "Host=127.0.0.1;Port=$PG_PORT;Database=$1;Username=postgres"; }
for db in bench_dir bench_src bench_dst; do $PSQL -d postgres -c "CREATE DATABASE $db"; done

# One region with one shard (the source, owning every bucket); the target is added with `geoctl shards add`, so the
# plan is one move between exactly these two databases.
DIR_PORT=$(free_port)
python3 - "$ROOT/config/topology.local.json" "$TMP/topology.json" "$DIR_PORT" "$(CS bench_dir)" "$(CS bench_src)" <<'PY'
import json, sys
src, out, port, directory, s0 = sys.argv[1:]
t = json.load(open(src))
region = t["regions"]["us-east"]
region.update({"directory": f"http://127.0.0.1:{port}", "directoryDatabase": directory, "shards": {"us-east-0": s0}})
t["regions"] = {"us-east": region}
t["latencyMs"] = {}
json.dump(t, open(out, "w"), indent=2)
PY
export GEO_ADMIN_TOKEN=bench-admin-token
geoctl() { dotnet "$GEOCTL" "$@" --topology "$TMP/topology.json"; }
geoctl migrate --yes >/dev/null 2>&1
dotnet "$DIRECTORY_DLL" --urls="http://127.0.0.1:$DIR_PORT" --Geo:Region=us-east --Geo:Topology="$TMP/topology.json" >"$TMP/directory.log" 2>&1 &
DIR_PID=$!
for _ in $(seq 1 120); do
  curl -fsS --http2-prior-knowledge -m 2 "http://127.0.0.1:$DIR_PORT/healthz/ready" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS --http2-prior-knowledge -m 2 "http://127.0.0.1:$DIR_PORT/healthz/ready" >/dev/null || { tail -20 "$TMP/directory.log" >&2; exit 1; }

# Documents spread over every bucket of the source.
$PSQL -d bench_src -c "
  INSERT INTO documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, updated_at)
  SELECT 'u' || i, 'notes', 'k', i % 4096, jsonb_build_object('n', i, 'pad', repeat('x', 100)), false, (extract(epoch FROM now())::bigint * 1000 - 60000) * 65536 + i, 'us-east', now()
  FROM generate_series(1, $ROWS) AS i;
  ANALYZE documents;"
geoctl shards add --region us-east --id us-east-2 --connection "$(CS bench_dst)" --yes >/dev/null 2>&1
geoctl shards plan --region us-east --onto us-east-2 --out "$TMP/plan.json" -o json >/dev/null 2>"$TMP/plan.err" || { cat "$TMP/plan.err" >&2; exit 1; }
BUCKETS=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(",".join(str(b) for m in p["moves"] for b in m["buckets"]))' "$TMP/plan.json")
COLUMNS="user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, prev_version_hlc, prev_version_origin, updated_at"

now() { date +%s.%N; }
# Baseline: psql \copy out of the source into the target's documents table, the same rows the move copies.
t0=$(now)
$PSQL -d bench_src -c "\copy (SELECT $COLUMNS FROM documents WHERE bucket = ANY('{$BUCKETS}'::int[])) TO STDOUT" \
  | $PSQL -d bench_dst -c "\copy documents ($COLUMNS) FROM STDIN"
t1=$(now)
COPY_ROWS=$($PSQL -d bench_dst -tAc "SELECT count(*) FROM documents")
$PSQL -d bench_dst -c "TRUNCATE documents" -c "VACUUM ANALYZE documents"

# geoctl shards apply: copy, catch up, fence, flip, verify row by row, clean the source.
t2=$(now)
# Progress lines on stderr, each stamped with the time it arrived: the copy step's own duration comes from them.
geoctl shards apply --plan "$TMP/plan.json" --yes -o json >"$TMP/apply.json" 2> >(while IFS= read -r line; do echo "$(date +%s.%N) $line"; done >"$TMP/apply.err") \
  || { sleep 1; cat "$TMP/apply.err" >&2; exit 1; }
t3=$(now)
sleep 1 # the stamping loop drains
python3 - "$TMP/apply.json" "$COPY_ROWS" "$t0" "$t1" "$t2" "$t3" "$TMP/apply.err" <<'PY'
import json, sys, re
moves = json.load(open(sys.argv[1]))
copy_rows = int(sys.argv[2]); t0, t1, t2, t3 = map(float, sys.argv[3:7])
moved = sum(m["rowsCopied"] for m in moves)
copy_rate = copy_rows / (t1 - t0); apply_rate = moved / (t3 - t2)
print(f"psql \\copy            {copy_rows:9d} rows in {t1 - t0:6.2f} s = {copy_rate:9.0f} rows/s")
print(f"geoctl shards apply   {moved:9d} rows in {t3 - t2:6.2f} s = {apply_rate:9.0f} rows/s   {apply_rate / copy_rate:5.2f} x psql \\copy")
print("  (apply includes the process start, catch-up, fence, flip, row-by-row verify and the clean of the source)")
lines = [l.rstrip("\n").split(" ", 1) for l in open(sys.argv[7]) if " " in l]
starts = [float(t) for t, l in lines if "] copying " in l]
ends = [float(t) for t, l in lines if "copied idempotency:" in l]
if starts and len(starts) == len(ends):
    copy_seconds = sum(e - s for s, e in zip(starts, ends))
    copy_step = moved / copy_seconds
    print(f"  its copy step alone   {moved:9d} rows in {copy_seconds:6.2f} s = {copy_step:9.0f} rows/s   {copy_step / copy_rate:5.2f} x psql \\copy  (binary COPY into staging + newer-wins merge)")
for _, line in lines:
    if "flipped" in line or "verified" in line:
        print("  " + re.sub(r"\s+", " ", line.strip()))
PY
