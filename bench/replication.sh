#!/usr/bin/env bash
# Replication benchmark (see bench/README.md): applied changes/s of one receiving Replicator vs a raw batched INSERT of
# the same rows into the same Postgres (ratio, same run), then lag p50/p99 through the real sender at half that rate.
# Starts its own throwaway Postgres, Redis, ShardDirectory and Replicator processes on loopback; needs no ./geo up.
#   bench/replication.sh [--changes=20000] [--rounds=3] [--batch=200] [--window=4] [--lag-seconds=20] [--writers=16] [--users=1000] [--lag-rate=N]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build Geo.sln -c Release -v quiet -nologo >/dev/null
dotnet build bench/ReplicationBench -c Release -v quiet -nologo >/dev/null
exec dotnet bench/ReplicationBench/bin/Release/net10.0/Geo.ReplicationBench.dll "$@"
