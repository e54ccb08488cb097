output "name_servers" {
  description = "Delegate var.domain to these name servers at your registrar or parent zone."
  value       = aws_route53_zone.public.name_servers
}

output "entry_url" {
  description = "The geo-routed public URL."
  value       = "https://${module.topology.entry_hostname}"
}

output "topology_json" {
  description = "The topology every service reads; also handy for geoctl (--topology)."
  value       = module.topology.topology_json
}

output "replication_peers" {
  description = "region => residency => peer regions."
  value       = module.topology.replication_peers
}

output "migrations" {
  description = "region => how to run `geoctl migrate` there: the owning login, the secret holding its password, connection strings without the password."
  value       = { for m in [module.us_east, module.eu_west, module.eu_central] : m.name => m.migration }
}
