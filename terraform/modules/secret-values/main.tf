# The values of a region's secrets (terraform/README.md "Secrets"), the same for every cloud but the three that come
# from the cloud's own resources (database passwords, the cache's AUTH token). Provider-free: the region modules call
# it, and `terraform test` checks it. The names are the topology module's (`regions.*.secret_names`); the output
# refuses to exist when the two disagree, so a secret can be neither unfilled nor unnamed.

locals {
  values = merge(
    {
      tls-ca                = var.tls.ca
      user-hash-key         = var.user_hash_key
      db-password           = var.db_password
      db-migration-password = var.db_migration_password
      redis-password        = var.redis_password
    },
    { for s in var.services : "tls-${s}-certificate" => var.tls.services[s].certificate },
    { for s in var.services : "tls-${s}-key" => var.tls.services[s].key },
  )
}
