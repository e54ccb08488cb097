# The same outputs for region-aws, region-gcp and region-azure.

output "name" {
  description = "The Geo region name."
  value       = var.region.name
}

output "dns_records" {
  description = "key => public record the environment must publish in the domain's zone: the service names and certificate validation."
  value = merge(
    { for s, h in var.region.hostnames : s => { name = h, type = "CNAME", value = aws_lb.this.dns_name } },
    { for o in aws_acm_certificate.this.domain_validation_options : "acm-${o.domain_name}" => {
      name = trimsuffix(o.resource_record_name, "."), type = o.resource_record_type, value = trimsuffix(o.resource_record_value, ".")
    } },
  )
}

output "service_urls" {
  description = "service => public HTTPS URL."
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
  description = "secret name => where it is stored (peer_token, admin_token, db_password, redis_password)."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}
