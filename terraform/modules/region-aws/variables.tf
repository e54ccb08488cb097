# The same inputs for region-aws, region-gcp and region-azure (the other two link to this file).

variable "region" {
  description = "This region's entry of module.topology.regions: name, cloud_region, databases, hostnames, private_zone, redis_host, secret_names, services (with their environment and secret-to-environment mapping)."
  type = object({
    name         = string
    cloud_region = string
    jurisdiction = string
    databases = map(object({
      role     = string
      host     = string
      port     = number
      database = string
      size     = string
    }))
    hostnames    = map(string)
    private_zone = string
    redis_host   = string
    secret_names = list(string)
    services = map(object({
      folder      = string
      instances   = number
      hostname    = string
      port        = number
      protocol    = string
      health_port = number
      health_path = string
      environment = map(string)
      secret_env  = map(string)
    }))
  })
}

variable "images" {
  description = "service (edge, api, directory, replicator) => container image built from the root Dockerfile (--build-arg SERVICE=<Folder>) and pushed where this cloud can pull it."
  type        = map(string)

  validation {
    condition     = alltrue([for s in ["edge", "api", "directory", "replicator"] : contains(keys(var.images), s)])
    error_message = "images needs an image for each of edge, api, directory and replicator (build them from the root Dockerfile with --build-arg SERVICE=<Folder>)."
  }
}

variable "tls" {
  description = <<-EOT
    Mutual-TLS material (docs/mtls.md), stored in this cloud's secret store and injected as Geo__Tls__Ca,
    Geo__Tls__Certificate and Geo__Tls__Key: the deployment CA certificate (PEM, the same in every region) and, per
    service (edge, api, directory, replicator), this region's certificate naming geo://<region>/<service> and its
    PKCS#8 private key (PEM). Issue them with `geoctl auth certs` or the organisation's CA; never commit them.
  EOT
  type = object({
    ca = string
    services = map(object({
      certificate = string
      key         = string
    }))
  })
  sensitive = true

  validation {
    condition     = alltrue([for s in ["edge", "api", "directory", "replicator"] : contains(keys(var.tls.services), s)])
    error_message = "tls.services needs a certificate and key for each of edge, api, directory and replicator (geoctl auth certs issues them)."
  }
}

variable "user_hash_key" {
  description = "Geo:Logging:UserHashKey: base64 of at least 16 random bytes (32 recommended), the same in every region; keys the user names in logs."
  type        = string
  sensitive   = true
}

variable "migration_user" {
  description = <<-EOT
    Database login that owns the schema and runs migrations (`geoctl migrate`): the server's administrator login, with
    its password in the db-migration-password secret. The services connect as the topology's user (geo), which has
    no DDL rights; terraform/README.md shows the grants the migration step gives it.
  EOT
  type        = string
  default     = "geo_migrator"

  validation {
    condition     = var.migration_user != "geo"
    error_message = "migration_user must differ from the services' login (geo): the services' role has no DDL rights."
  }
}

variable "network_cidr" {
  description = "Address space of this region's network; give every region its own."
  type        = string
  default     = "10.10.0.0/16"
}

variable "dns_ready" {
  description = "Any value known once the environment has published this module's dns_records; resources that need them (certificates, custom domains) wait for it."
  type        = any
  default     = null
}

variable "deletion_protection" {
  description = "Protect databases from deletion. Set false before `terraform destroy`."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Tags/labels added to every resource that takes them."
  type        = map(string)
  default     = {}
}
