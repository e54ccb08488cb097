output "values" {
  description = "secret name => value, exactly for the names given."
  value       = local.values
  sensitive   = true

  precondition {
    condition     = sort(keys(local.values)) == sort(var.names)
    error_message = "The secret names of the topology and the values filled here disagree: without a value ${jsonencode(setsubtract(var.names, keys(local.values)))}, without a name ${jsonencode(setsubtract(keys(local.values), var.names))}."
  }
}
