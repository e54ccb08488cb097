# The same outputs for region-aws, region-gcp and region-azure.

output "name" {
  description = "The Geo region name."
  value       = var.region.name
}

output "dns_records" {
  description = "key => record the environment must publish in the domain's zone: the edge (public load balancer), the internal services (internal load balancers, private addresses only) and certificate validation."
  value = merge(
    { for s, h in var.region.hostnames : s => { name = h, type = "CNAME", value = s == "edge" ? aws_lb.this.dns_name : aws_lb.internal[s].dns_name } },
    { for o in aws_acm_certificate.this.domain_validation_options : "acm-${o.domain_name}" => {
      name = trimsuffix(o.resource_record_name, "."), type = o.resource_record_type, value = trimsuffix(o.resource_record_value, ".")
    } },
  )
}

output "service_urls" {
  description = "service => HTTPS URL (public for the edge; reachable only from connected private networks for the others)."
  value       = { for s, h in var.region.hostnames : s => "https://${h}" }
}

output "databases" {
  description = "database id => the cloud's own endpoint (the topology uses the private names that point at these)."
  value       = { for id, db in aws_db_instance.this : id => db.address }
}

output "redis_endpoint" {
  description = "The cache's own endpoint."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "secrets" {
  description = "secret name => where it is stored (terraform/README.md lists what each holds and who reads it)."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}

output "migration" {
  description = "How to run migrations (`geoctl migrate`): the owning login, the secret with its password, and each database's connection string without the password."
  value = {
    user            = var.migration_user
    password_secret = aws_secretsmanager_secret.this["db-migration-password"].arn
    connections = { for id, db in var.region.databases :
    id => "Host=${db.host};Port=${db.port};Database=${db.database};Username=${var.migration_user};SSL Mode=Require" }
  }
}
