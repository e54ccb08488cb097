# The same outputs for region-aws, region-gcp and region-azure.

output "name" {
  description = "The Geo region name."
  value       = var.region.name
}

output "dns_records" {
  description = "key => public record the environment must publish in the domain's zone: the edge's name and Azure's domain-ownership TXT record (the internal services have no public name)."
  value = {
    edge       = { name = var.region.hostnames.edge, type = "CNAME", value = azurerm_container_app.this["edge"].ingress[0].fqdn }
    asuid-edge = { name = "asuid.${var.region.hostnames.edge}", type = "TXT", value = azurerm_container_app_environment.this.custom_domain_verification_id }
  }
}

output "service_urls" {
  description = "service => HTTPS URL: the edge's public name; the internal services' environment-internal names."
  value = merge(
    { for s, h in var.region.hostnames : s => "https://${h}" if s == "edge" },
    { for s, app in azurerm_container_app.this : s => "https://${app.ingress[0].fqdn}" if s != "edge" },
  )
}

output "databases" {
  description = "database id => the cloud's own endpoint (the topology uses the private names that point at these)."
  value       = { for id, db in azurerm_postgresql_flexible_server.this : id => db.fqdn }
}

output "redis_endpoint" {
  description = "The cache's own endpoint."
  value       = azurerm_redis_cache.this.hostname
}

output "secrets" {
  description = "secret name => where it is stored (terraform/README.md lists what each holds and who reads it)."
  value       = { for k, s in azurerm_key_vault_secret.this : k => s.versionless_id }
}

output "migration" {
  description = "How to run migrations (`geoctl migrate`): the owning login, the secret with its password, and each database's connection string without the password."
  value = {
    user            = var.migration_user
    password_secret = azurerm_key_vault_secret.this["db-migration-password"].versionless_id
    connections = { for id, db in var.region.databases :
    id => "Host=${db.host};Port=${db.port};Database=${db.database};Username=${var.migration_user};SSL Mode=Require" }
  }
}
