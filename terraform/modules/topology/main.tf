locals {
  services = ["edge", "api", "directory", "replicator"]

  # How each service runs in a container (the root Dockerfile, service as a build argument): HTTPS on 8443 with HTTP/1.1
  # and HTTP/2 by ALPN (the service's certificate; internal services ask for a client certificate there, docs/mtls.md),
  # and cleartext HTTP/1.1 on 8080 for health probes and for platforms that terminate TLS in front of the container.
  # A cleartext request carries no client certificate, so on the internal services it reaches nothing but /healthz.
  containers = {
    edge       = { folder = "EdgeRouter" }
    api        = { folder = "RegionService" }
    directory  = { folder = "ShardDirectory" }
    replicator = { folder = "Replicator" }
  }
  # TLS ports of the managed caches: ElastiCache, Memorystore, Azure Cache for Redis.
  redis_tls_port = { aws = 6379, gcp = 6378, azure = 6380 }
  local          = var.addressing.mode == "local"
  ports          = var.addressing.ports
  pg_user        = coalesce(var.addressing.postgres_user, local.local ? "postgres" : "geo")

  residencies = coalesce(var.residencies, concat(var.jurisdictions, ["global"]))

  # Allowed regions per residency (docs/architecture.md §1): same jurisdiction, or every region for global.
  allowed = {
    for res in local.residencies : res => [
      for r in var.regions : r.name if res == "global" || r.jurisdiction == res
    ]
  }

  default_instances = local.local ? 1 : 2

  # Geo:Auth for the services that take bearer tokens (edge, api): public settings, plain environment.
  auth_env = var.auth == null ? {} : merge(
    { Geo__Auth__Audience = var.auth.audience },
    [for i, issuer in var.auth.issuers : merge(
      { "Geo__Auth__Issuers__${i}__Issuer" = issuer.issuer },
      issuer.authority == null ? {} : { "Geo__Auth__Issuers__${i}__Authority" = issuer.authority },
      issuer.metadata_address == null ? {} : { "Geo__Auth__Issuers__${i}__MetadataAddress" = issuer.metadata_address },
    )]...
  )

  # Secrets, named alike on every cloud (terraform/README.md "Secrets"); each region module fills in the values from its
  # cloud's sources. Names derive from non-sensitive inputs only, so they can key for_each.
  secret_names = sort(concat(
    ["tls-ca", "user-hash-key", "db-password", "db-migration-password", "redis-password"],
    flatten([for s in local.services : ["tls-${s}-certificate", "tls-${s}-key"]]),
  ))
  # service => environment variable => secret, under the configuration names the services bind (Geo:Tls,
  # Geo:Logging:UserHashKey). PGPASSWORD is read by Npgsql when a connection string has none (the edge has no database).
  # redis-password is the cache's AUTH token; no service setting reads it yet (terraform/README.md).
  secret_env = { for s in local.services : s => merge(
    {
      Geo__Tls__Ca              = "tls-ca"
      Geo__Tls__Certificate     = "tls-${s}-certificate"
      Geo__Tls__Key             = "tls-${s}-key"
      Geo__Logging__UserHashKey = "user-hash-key"
    },
    s == "edge" ? {} : { PGPASSWORD = "db-password" },
  ) }

  regions = [for i, r in var.regions : merge(r, {
    index = i
    instances = {
      for s in local.services : s => coalesce(r.instances[s], s == "replicator" ? 1 : local.default_instances)
    }
    # Public HTTPS names in dns mode; the region modules serve them, the environment publishes them.
    hostnames    = local.local ? {} : { for s in local.services : s => "${s}.${r.name}.${var.addressing.domain}" }
    private_zone = local.local ? null : "${r.name}.${var.addressing.private_domain}"
    redis_host   = local.local ? var.addressing.host : "redis.${r.name}.${var.addressing.private_domain}"
    # One Postgres database per shard plus the region's directory database.
    databases = merge(
      { for n in range(r.shards.count) : "${r.name}-${n}" => {
        role     = "shard"
        host     = local.local ? var.addressing.host : "db-${n}.${r.name}.${var.addressing.private_domain}"
        port     = local.local ? local.ports.postgres : 5432
        database = local.local ? "geo_${replace(r.name, "-", "_")}_${n}" : "geo"
        size     = r.shards.size
      } },
      { "${r.name}-directory" = {
        role     = "directory"
        host     = local.local ? var.addressing.host : "db-directory.${r.name}.${var.addressing.private_domain}"
        port     = local.local ? local.ports.postgres : 5432
        database = local.local ? "geo_${replace(r.name, "-", "_")}_directory" : "geo"
        size     = "small"
      } },
    )
  })]

  connection_strings = {
    for r in local.regions : r.name => {
      for id, db in r.databases : id => join(";", concat(
        ["Host=${db.host}", "Port=${db.port}", "Database=${db.database}", "Username=${local.pg_user}"],
        local.local ? [] : ["SSL Mode=Require"],
      ))
    }
  }

  urls = {
    for r in local.regions : r.name => local.local ? {
      edge       = "https://${var.addressing.host}:${local.ports.edge + r.index}"
      api        = ["https://${var.addressing.host}:${local.ports.api + r.index}"]
      directory  = "https://${var.addressing.host}:${local.ports.directory + r.index}"
      replicator = "https://${var.addressing.host}:${local.ports.replicator + r.index}"
      redis      = "${var.addressing.host}:${local.ports.redis},defaultDatabase=${r.index}"
      } : {
      edge       = "https://${r.hostnames.edge}"
      api        = ["https://${r.hostnames.api}"]
      directory  = "https://${r.hostnames.directory}"
      replicator = "https://${r.hostnames.replicator}"
      redis      = "${r.redis_host}:${local.redis_tls_port[r.cloud]},ssl=true,abortConnect=false"
    }
  }

  # docs/architecture.md §3: the document every service and the CLI read.
  topology = {
    regions = {
      for r in local.regions : r.name => merge(local.urls[r.name], {
        jurisdiction      = r.jurisdiction
        directoryDatabase = local.connection_strings[r.name]["${r.name}-directory"]
        shards            = { for id, cs in local.connection_strings[r.name] : id => cs if r.databases[id].role == "shard" }
      })
    }
    latencyMs = { for r in local.regions : r.name => lookup(var.latency_ms, r.name, {}) }
  }

  # Peers per region and residency: where a change to a user with that residency must be shipped.
  replication_peers = {
    for r in local.regions : r.name => {
      for res, names in local.allowed : res => [for n in names : n if n != r.name]
      if contains(names, r.name)
    }
  }

  global_name = local.local ? null : "edge.${var.addressing.domain}"
  geo_records = local.local ? [] : concat(
    flatten([for r in local.regions : [for c in r.continents : {
      set_identifier = "${r.name}-${c}"
      region         = r.name
      continent      = c
      country        = null
    }]]),
    # Anything no continent claims goes to the first region.
    [{ set_identifier = "default", region = local.regions[0].name, continent = null, country = "*" }],
  )
}
