variable "names" {
  description = "The region's secret names (module.topology.regions[<region>].secret_names)."
  type        = list(string)
}

variable "services" {
  description = "The region's services (edge, api, directory, replicator): each has a certificate and a key."
  type        = list(string)
}

variable "tls" {
  description = "The region's mutual-TLS material: the CA certificate and, per service, certificate and key (PEM)."
  type = object({
    ca = string
    services = map(object({
      certificate = string
      key         = string
    }))
  })
  sensitive = true
}

variable "user_hash_key" {
  description = "Geo:Logging:UserHashKey (base64)."
  type        = string
  sensitive   = true
}

variable "db_password" {
  description = "Password of the services' database login."
  type        = string
  sensitive   = true
}

variable "db_migration_password" {
  description = "Password of the migration login."
  type        = string
  sensitive   = true
}

variable "redis_password" {
  description = "The cache's AUTH token or access key."
  type        = string
  sensitive   = true
}
