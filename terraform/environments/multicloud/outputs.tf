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

output "admin_token" {
  description = "Token for geoctl admin calls."
  value       = random_password.admin_token.result
  sensitive   = true
}
