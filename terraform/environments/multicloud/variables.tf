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
