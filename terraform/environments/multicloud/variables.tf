variable "domain" {
  description = "Public DNS name delegated to the Route 53 zone this environment creates, e.g. geo.example.com."
  type        = string
}

variable "gcp_project" {
  description = "Google Cloud project id for the europe-west1 region."
  type        = string
}

variable "azure_subscription_id" {
  description = "Azure subscription id for the germanywestcentral region."
  type        = string
}

variable "images" {
  description = "cloud (aws, gcp, azure) => service (edge, api, directory, replicator) => image in a registry that cloud can pull from (ECR, Artifact Registry, ACR)."
  type        = map(map(string))
}

variable "deletion_protection" {
  description = "Protect databases from deletion; set false and apply before `terraform destroy`."
  type        = bool
  default     = true
}

variable "tls" {
  description = "region (us-east, eu-west, eu-central) => mutual-TLS material: the deployment CA (PEM) and per service (edge, api, directory, replicator) the certificate naming geo://<region>/<service> and its key (PEM). Issue with `geoctl auth certs`; pass through TF_VAR_tls or an untracked tfvars file, never commit it."
  type = map(object({
    ca = string
    services = map(object({
      certificate = string
      key         = string
    }))
  }))
  sensitive = true
}

variable "auth" {
  description = "Geo:Auth of the edge and the API: the audience tokens must name and the trusted issuers (OIDC authority or metadata address), e.g. { audience = \"geo-api\", issuers = [{ issuer = \"https://login.example.com/\", authority = \"https://login.example.com/\" }] }."
  type = object({
    audience = string
    issuers = list(object({
      issuer           = string
      authority        = optional(string)
      metadata_address = optional(string)
    }))
  })
}
