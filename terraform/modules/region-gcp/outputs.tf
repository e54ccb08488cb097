# The same outputs for region-aws, region-gcp and region-azure.

output "name" {
  description = "The Geo region name."
  value       = var.region.name
}

output "dns_records" {
  description = "key => public record the environment must publish in the domain's zone: the edge only (the internal services have no public address). The managed certificate is issued once it resolves."
  value       = { edge = { name = var.region.hostnames.edge, type = "A", value = google_compute_global_address.lb.address } }
}

output "service_urls" {
  description = "service => HTTPS URL: the edge's public name; the internal services' Cloud Run URLs (internal ingress only)."
  value = merge(
    { for s, h in var.region.hostnames : s => "https://${h}" if s == "edge" },
    { for s, svc in google_cloud_run_v2_service.this : s => svc.uri if s != "edge" },
  )
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
  description = "secret name => where it is stored (terraform/README.md lists what each holds and who reads it)."
  value       = { for k, s in google_secret_manager_secret.this : k => s.id }
}

output "migration" {
  description = "How to run migrations (`geoctl migrate`): the owning login, the secret with its password, and each database's connection string without the password."
  value = {
    user            = var.migration_user
    password_secret = google_secret_manager_secret.this["db-migration-password"].id
    connections = { for id, db in var.region.databases :
    id => "Host=${db.host};Port=${db.port};Database=${db.database};Username=${var.migration_user};SSL Mode=Require" }
  }
}
