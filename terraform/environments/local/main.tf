# The local four-region cluster that `./geo up` runs: two US and two EU regions on one machine.
module "topology" {
  source = "../../modules/topology"

  jurisdictions = ["us", "eu"]
  addressing    = { mode = "local" }

  regions = [
    { name = "us-east", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 2 } },
    { name = "us-west", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 2 } },
    { name = "eu-west", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 2 } },
    { name = "eu-central", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 2 } },
  ]

  latency_ms = {
    us-east    = { us-west = 60, eu-west = 75, eu-central = 90 }
    us-west    = { us-east = 60, eu-west = 140, eu-central = 150 }
    eu-west    = { us-east = 75, us-west = 140, eu-central = 20 }
    eu-central = { us-east = 90, us-west = 150, eu-west = 20 }
  }
}

output "topology_json" {
  description = "The content of config/topology.local.json (tests/local.tftest.hcl keeps the two equal)."
  value       = module.topology.topology_json
}

output "replication_peers" {
  description = "region => residency => peer regions."
  value       = module.topology.replication_peers
}
