# syntax=docker/dockerfile:1
# One image recipe for every Geo service; the service is a build argument (its folder under src/):
#   docker build --build-arg SERVICE=EdgeRouter     -t geo-edge .
#   docker build --build-arg SERVICE=RegionService  -t geo-api .
#   docker build --build-arg SERVICE=ShardDirectory -t geo-directory .
#   docker build --build-arg SERVICE=Replicator     -t geo-replicator .
# Build from the repository root; .dockerignore keeps .geo/ (local secrets and data), bin/ and obj/ out of the context.
ARG SERVICE=RegionService

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG SERVICE
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.nuget/packages \
    test -f "src/${SERVICE}/${SERVICE}.csproj" || { echo "SERVICE must name a folder under src/ (got '${SERVICE}')" >&2; exit 1; } \
    && dotnet publish "src/${SERVICE}/${SERVICE}.csproj" -c Release -o /app \
    && printf '%s' "Geo.${SERVICE}.dll" > /app/.geo-entry

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app .
# Entrypoint: cloud platforms pass the topology as GEO_TOPOLOGY_JSON; services read a file (Geo:Topology).
# Health check: GET /healthz/ready over bash's /dev/tcp, so the image needs no curl.
COPY <<'SH' /usr/local/bin/geo-entrypoint
#!/bin/bash
set -e
if [ -n "$GEO_TOPOLOGY_JSON" ]; then
  mkdir -p /tmp/geo && printf '%s' "$GEO_TOPOLOGY_JSON" > /tmp/geo/topology.json
  export Geo__Topology=/tmp/geo/topology.json
fi
exec dotnet "/app/$(cat /app/.geo-entry)" "$@"
SH
COPY <<'SH' /usr/local/bin/geo-healthcheck
#!/bin/bash
exec 3<>/dev/tcp/127.0.0.1/${GEO_HEALTH_PORT:-8080} || exit 1
printf 'GET /healthz/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 _ status _ <&3 && [ "$status" = 200 ]
SH
RUN chmod 0755 /usr/local/bin/geo-entrypoint /usr/local/bin/geo-healthcheck
ENV ASPNETCORE_HTTP_PORTS=8080
EXPOSE 8080 8443
USER $APP_UID
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/geo-healthcheck"]
ENTRYPOINT ["/usr/local/bin/geo-entrypoint"]
