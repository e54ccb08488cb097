# The same outputs for region-aws, region-gcp and region-azure.

output "name" {
  description = "The Geo region name."
  value       = var.region.name
}

output "dns_records" {
  description = "key => public record the environment must publish in the domain's zone: each service name and Azure's domain-ownership TXT record."
  value = merge(
    { for s, app in azurerm_container_app.this : s => { name = var.region.hostnames[s], type = "CNAME", value = app.ingress[0].fqdn } },
    { for s, h in var.region.hostnames : "asuid-${s}" => { name = "asuid.${h}", type = "TXT", value = azurerm_container_app_environment.this.custom_domain_verification_id } },
  )
}

output "service_urls" {
  description = "service => public HTTPS URL."
  value       = { for s, h in var.region.hostnames : s => "https://${h}" }
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
  description = "secret name => where it is stored (peer_token, admin_token, db_password, redis_password)."
  value       = { for k, s in azurerm_key_vault_secret.this : replace(k, "-", "_") => s.versionless_id }
}
