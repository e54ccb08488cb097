# The same outputs for region-aws, region-gcp and region-azure.

output "name" {
  description = "The Geo region name."
  value       = var.region.name
}

output "dns_records" {
  description = "key => public record the environment must publish in the domain's zone. The managed certificate is issued once they resolve."
  value       = { for s, h in var.region.hostnames : s => { name = h, type = "A", value = google_compute_global_address.lb.address } }
}

output "service_urls" {
  description = "service => public HTTPS URL."
  value       = { for s, h in var.region.hostnames : s => "https://${h}" }
}

output "databases" {
  description = "database id => the cloud's own endpoint (the topology uses the private names that point at these)."
  value       = { for id, db in google_sql_database_instance.this : id => db.private_ip_address }
}

output "redis_endpoint" {
  description = "The cache's own endpoint."
  value       = google_redis_instance.this.host
}

output "secrets" {
  description = "secret name => where it is stored (peer_token, admin_token, db_password, redis_password)."
  value       = { for k, s in google_secret_manager_secret.this : k => s.id }
}
