# The same inputs for region-aws, region-gcp and region-azure (the other two link to this file).

variable "region" {
  description = "This region's entry of module.topology.regions: name, cloud_region, databases, hostnames, private_zone, redis_host, services."
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
    services = map(object({
      folder      = string
      instances   = number
      hostname    = string
      port        = number
      protocol    = string
      health_port = number
      health_path = string
      environment = map(string)
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

variable "peer_token" {
  description = "Shared secret regions present to each other (replication, directory look-ups). The same value in every region."
  type        = string
  sensitive   = true
}

variable "admin_token" {
  description = "Secret for admin calls (geoctl)."
  type        = string
  sensitive   = true
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
