# The outputs have the shape ARCHITECTURE §3 and the region modules rely on (cloud / dns mode).
variables {
  addressing = { mode = "dns", domain = "geo.example.com" }
  regions = [
    { name = "us-east", cloud = "aws", cloud_region = "us-east-1", jurisdiction = "us", shards = { count = 2, size = "medium" }, continents = ["NA", "SA"] },
    { name = "eu-west", cloud = "gcp", cloud_region = "europe-west1", jurisdiction = "eu", shards = { count = 1 }, continents = ["EU", "AF"], instances = { api = 3 } },
    { name = "eu-central", cloud = "azure", cloud_region = "germanywestcentral", jurisdiction = "eu", shards = { count = 3 } },
  ]
  latency_ms = {
    us-east    = { eu-west = 75, eu-central = 90 }
    eu-west    = { us-east = 75, eu-central = 20 }
    eu-central = { us-east = 90, eu-west = 20 }
  }
}

run "topology_document_shape" {
  command = plan

  assert {
    condition     = keys(output.topology) == ["latencyMs", "regions"] && keys(output.topology.regions) == ["eu-central", "eu-west", "us-east"]
    error_message = "The document has top-level regions and latencyMs, one entry per region."
  }

  assert {
    condition = alltrue([for r in values(output.topology.regions) : keys(r) == [
      "api", "directory", "directoryDatabase", "edge", "jurisdiction", "redis", "replicator", "shards",
    ]])
    error_message = "Every region carries exactly the §3 keys."
  }

  assert {
    condition     = jsondecode(output.topology_json) == jsondecode(jsonencode(output.topology))
    error_message = "topology_json is the JSON form of topology."
  }

  assert {
    condition     = output.topology.regions["us-east"].edge == "https://edge.us-east.geo.example.com" && output.topology.regions["us-east"].api == ["https://api.us-east.geo.example.com"] && output.topology.regions["eu-central"].replicator == "https://replicator.eu-central.geo.example.com"
    error_message = "Cloud endpoints are HTTPS names <service>.<region>.<domain>, got ${jsonencode(output.topology.regions["us-east"])}."
  }

  assert {
    condition     = keys(output.topology.regions["eu-central"].shards) == ["eu-central-0", "eu-central-1", "eu-central-2"]
    error_message = "Shards are named <region>-<n>, one per shard count."
  }

  assert {
    condition     = output.topology.regions["us-east"].shards["us-east-1"] == "Host=db-1.us-east.geo.internal;Port=5432;Database=geo;Username=geo;SSL Mode=Require"
    error_message = "Cloud shards are reached through the region's private zone with TLS, got ${output.topology.regions["us-east"].shards["us-east-1"]}."
  }

  assert {
    condition     = output.topology.regions["us-east"].directoryDatabase == "Host=db-directory.us-east.geo.internal;Port=5432;Database=geo;Username=geo;SSL Mode=Require"
    error_message = "The directory has its own database per region."
  }

  assert {
    condition     = jsonencode(output.topology.latencyMs["eu-west"]) == jsonencode({ us-east = 75, eu-central = 20 })
    error_message = "latencyMs is passed through unchanged."
  }
}

run "region_plans_for_cloud_modules" {
  command = plan

  assert {
    condition     = output.regions["eu-west"].instances == { edge = 2, api = 3, directory = 2, replicator = 1 }
    error_message = "Cloud instance counts default to 2 (replicator 1) and explicit counts win, got ${jsonencode(output.regions["eu-west"].instances)}."
  }

  assert {
    condition     = length(output.regions["us-east"].databases) == 3 && output.regions["us-east"].databases["us-east-0"].size == "medium" && output.regions["us-east"].databases["us-east-directory"].role == "directory"
    error_message = "A region gets one database per shard (with the shard size) plus a directory database."
  }

  assert {
    condition     = jsonencode(output.regions["eu-central"].hostnames) == jsonencode({ edge = "edge.eu-central.geo.example.com", api = "api.eu-central.geo.example.com", directory = "directory.eu-central.geo.example.com", replicator = "replicator.eu-central.geo.example.com" })
    error_message = "Each region serves four public names."
  }

  assert {
    condition     = jsonencode(output.regions["eu-west"].peers) == jsonencode(["eu-central", "us-east"]) && jsonencode(output.regions["us-east"].peers) == jsonencode(["eu-central", "eu-west"])
    error_message = "Peers (for network and TLS) are every region sharing a residency; with global that is every other region."
  }
}

run "containers_and_caches" {
  command = plan

  assert {
    condition     = alltrue([for s in values(output.regions["us-east"].services) : s.port == 8443 && s.protocol == "https" && s.environment.Kestrel__Endpoints__Https__Url == "https://+:8443" && s.environment.Kestrel__Endpoints__Http__Url == "http://+:8080"])
    error_message = "Every service serves HTTPS (mutual TLS for internal ones) on 8443 and cleartext health on 8080."
  }

  assert {
    condition     = alltrue([for s in values(output.regions["eu-west"].services) : s.health_port == 8080 && s.health_path == "/healthz/ready" && jsondecode(s.environment.GEO_TOPOLOGY_JSON) == jsondecode(output.topology_json)])
    error_message = "Every container is probed on 8080 /healthz/ready and gets the whole topology."
  }

  assert {
    condition     = [for n in ["us-east", "eu-west", "eu-central"] : output.topology.regions[n].redis] == ["redis.us-east.geo.internal:6379,ssl=true,abortConnect=false", "redis.eu-west.geo.internal:6378,ssl=true,abortConnect=false", "redis.eu-central.geo.internal:6380,ssl=true,abortConnect=false"]
    error_message = "Each cloud's cache is reached on its TLS port."
  }
}

run "geo_dns_records" {
  command = plan

  assert {
    condition     = output.entry_hostname == "edge.geo.example.com" && length(output.dns_records) == 5
    error_message = "One geo record per claimed continent (4) plus a default, on edge.<domain>, got ${length(output.dns_records)}."
  }

  assert {
    condition = contains([for r in output.dns_records : jsonencode(r)], jsonencode({
      name  = "edge.geo.example.com", type = "CNAME", set_identifier = "eu-west-AF", region = "eu-west", continent = "AF", country = null,
      value = "edge.eu-west.geo.example.com", health_check_fqdn = "edge.eu-west.geo.example.com", health_check_path = "/healthz/ready"
    }))
    error_message = "Africa is answered by eu-west's edge, guarded by its readiness check."
  }

  assert {
    condition     = [for r in output.dns_records : r.region if r.country == "*"] == ["us-east"]
    error_message = "Unclaimed locations fall back to the first region."
  }
}

run "local_mode_has_no_dns" {
  command = plan

  variables {
    addressing = { mode = "local" }
    regions = [
      { name = "us-east", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 1 } },
      { name = "eu-west", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 1 } },
    ]
    latency_ms = { us-east = { eu-west = 75 }, eu-west = { us-east = 75 } }
  }

  assert {
    condition     = length(output.dns_records) == 0 && output.entry_hostname == null && length(output.regions["eu-west"].hostnames) == 0
    error_message = "Local mode publishes no DNS."
  }

  assert {
    condition     = output.topology.regions["eu-west"].edge == "https://127.0.0.1:8081" && output.topology.regions["eu-west"].redis == "127.0.0.1:6380,defaultDatabase=1"
    error_message = "Local ports are base + region index in list order."
  }
}

# The secret and Geo:Auth wiring every region module takes from here (once for the three clouds).
run "secrets_and_auth_environment" {
  command = plan

  variables {
    auth = {
      audience = "geo-api"
      issuers = [
        { issuer = "https://login.example.com/", authority = "https://login.example.com/" },
        { issuer = "https://other.example.com", metadata_address = "https://other.example.com/.well-known/openid-configuration" },
      ]
    }
  }

  assert {
    condition = alltrue([for name, s in output.regions["us-east"].services : s.secret_env == merge(
      { Geo__Tls__Ca = "tls-ca", Geo__Tls__Certificate = "tls-${name}-certificate", Geo__Tls__Key = "tls-${name}-key", Geo__Logging__UserHashKey = "user-hash-key" },
      name == "edge" ? {} : { PGPASSWORD = "db-password" },
    )])
    error_message = "Each service reads its own certificate and key, the CA and the log hash key; all but the edge the database password."
  }

  assert {
    condition     = alltrue([for r in values(output.regions) : alltrue([for s in values(r.services) : alltrue([for n in values(s.secret_env) : contains(r.secret_names, n)])])])
    error_message = "Every secret a service reads is one the region module stores."
  }

  assert {
    condition = alltrue([for name in ["edge", "api"] : output.regions["eu-west"].services[name].environment.Geo__Auth__Audience == "geo-api"
      && output.regions["eu-west"].services[name].environment.Geo__Auth__Issuers__0__Authority == "https://login.example.com/"
    && output.regions["eu-west"].services[name].environment.Geo__Auth__Issuers__1__MetadataAddress == "https://other.example.com/.well-known/openid-configuration"])
    error_message = "The edge and the API trust every configured issuer."
  }

  assert {
    condition     = alltrue([for name in ["directory", "replicator"] : !contains(keys(output.regions["eu-west"].services[name].environment), "Geo__Auth__Audience")])
    error_message = "Only the edge and the API take bearer tokens."
  }
}

run "auth_issuer_without_discovery_is_refused" {
  command = plan

  variables {
    auth = { audience = "geo-api", issuers = [{ issuer = "https://login.example.com/" }] }
  }

  expect_failures = [var.auth]
}
