# Provider-free on purpose: the topology is pure data, so it can be planned and tested anywhere.
terraform {
  required_version = ">= 1.9"
}
