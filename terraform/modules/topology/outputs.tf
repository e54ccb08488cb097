output "topology" {
  description = "The topology document of docs/architecture.md §3, as an object."
  value       = local.topology
}

output "topology_json" {
  description = "The topology document of docs/architecture.md §3, as JSON: what services read from Geo:Topology."
  value       = jsonencode(local.topology)
}

output "allowed_regions" {
  description = "residency => the regions a user with that residency may live in."
  value       = local.allowed
}

output "replication_peers" {
  description = "region => residency => the other regions that region replicates that residency's users to. Only residencies the region may hold appear."
  value       = local.replication_peers
}

output "peer_regions" {
  description = "region => every other region it exchanges data with (union over residencies): what its network and TLS must reach."
  value       = { for name, by_res in local.replication_peers : name => sort(distinct(flatten(values(by_res)))) }
}

output "regions" {
  description = "region => everything a region module needs: cloud, cloud_region, jurisdiction, instances, databases, hostnames, private zone, URLs."
  value = {
    for r in local.regions : r.name => {
      name         = r.name
      cloud        = r.cloud
      cloud_region = r.cloud_region
      jurisdiction = r.jurisdiction
      instances    = r.instances
      continents   = r.continents
      databases    = r.databases
      hostnames    = r.hostnames
      private_zone = r.private_zone
      redis_host   = r.redis_host
      peers        = sort(distinct(flatten(values(local.replication_peers[r.name]))))
      secret_names = local.secret_names
      services = {
        for name, c in local.containers : name => {
          folder      = c.folder
          instances   = r.instances[name]
          hostname    = lookup(r.hostnames, name, null)
          port        = 8443
          protocol    = "https"
          health_port = 8080
          health_path = "/healthz/ready"
          # Read by the image's entrypoint (GEO_TOPOLOGY_JSON) and by ASP.NET Core configuration.
          environment = merge(
            {
              GEO_TOPOLOGY_JSON                   = jsonencode(local.topology)
              Geo__Region                         = r.name
              Kestrel__Endpoints__Https__Url      = "https://+:8443"
              Kestrel__Endpoints__Http__Url       = "http://+:8080"
              Kestrel__Endpoints__Http__Protocols = "Http1"
            },
            contains(["edge", "api"], name) ? local.auth_env : {},
          )
          # Environment variable => secret name (values from the region's secret store).
          secret_env = local.secret_env[name]
        }
      }
    }
  }
}

output "dns_records" {
  description = <<-EOT
    Geo-DNS routing for the public entry name (empty in local mode): one record per
    (region, continent) plus a default. Each points the global name at that region's edge and
    is guarded by a health check on /healthz/ready, so DNS stops answering with a failed region.
  EOT
  value = [for g in local.geo_records : merge(g, {
    name              = local.global_name
    type              = "CNAME"
    value             = "edge.${g.region}.${var.addressing.domain}"
    health_check_fqdn = "edge.${g.region}.${var.addressing.domain}"
    health_check_path = "/healthz/ready"
  })]
}

output "entry_hostname" {
  description = "The geo-routed public name clients use (null in local mode)."
  value       = local.global_name
}
