# The secret values line up with the topology's names, one per name.
variables {
  names    = ["db-migration-password", "db-password", "redis-password", "tls-api-certificate", "tls-api-key", "tls-ca", "tls-edge-certificate", "tls-edge-key", "user-hash-key"]
  services = ["edge", "api"]
  tls = {
    ca = "CA"
    services = {
      edge = { certificate = "EDGE-CRT", key = "EDGE-KEY" }
      api  = { certificate = "API-CRT", key = "API-KEY" }
    }
  }
  user_hash_key         = "HASH"
  db_password           = "DB"
  db_migration_password = "MIG"
  redis_password        = "REDIS"
}

run "every_name_gets_its_value" {
  command = plan

  assert {
    condition = nonsensitive(output.values) == {
      tls-ca               = "CA", user-hash-key = "HASH", db-password = "DB", db-migration-password = "MIG", redis-password = "REDIS",
      tls-edge-certificate = "EDGE-CRT", tls-edge-key = "EDGE-KEY", tls-api-certificate = "API-CRT", tls-api-key = "API-KEY",
    }
    error_message = "Each secret holds its own value."
  }
}

run "a_name_without_a_value_is_refused" {
  command = plan

  variables {
    names = ["db-migration-password", "db-password", "redis-password", "tls-api-certificate", "tls-api-key", "tls-ca", "tls-edge-certificate", "tls-edge-key", "user-hash-key", "tls-directory-key"]
  }

  expect_failures = [output.values]
}
