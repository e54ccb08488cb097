# Provider-free: this environment only renders config/topology.local.json.
terraform {
  required_version = ">= 1.9"
}
