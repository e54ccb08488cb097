# One Geo region on Azure: VNet, a Flexible Server per shard, Azure Cache for Redis, Container Apps.
# The azurerm provider comes from the caller; location is var.region.cloud_region.

data "azurerm_client_config" "current" {}

locals {
  name     = "geo-${var.region.name}"
  location = var.region.cloud_region
  tags     = merge(var.labels, { geo-region = var.region.name, geo-jurisdiction = var.region.jurisdiction })

  db_sku     = { small = "GP_Standard_D2ds_v5", medium = "GP_Standard_D4ds_v5", large = "GP_Standard_D8ds_v5" }
  db_storage = { small = 32768, medium = 131072, large = 524288 }

  # Secret names and the environment that reads them come from the topology module (one mapping for every cloud);
  # module.secret_values fills in the values, from this cloud's sources where they are the cloud's.
  secret_names = toset(var.region.secret_names)

  # Only the edge is public; the API, directory and replicator are reachable on private networking only.
  public   = { for s, svc in var.region.services : s => svc if s == "edge" }
  internal = { for s, svc in var.region.services : s => svc if s != "edge" }
}

module "secret_values" {
  source = "../secret-values"

  names                 = var.region.secret_names
  services              = keys(var.region.services)
  tls                   = var.tls
  user_hash_key         = var.user_hash_key
  db_password           = random_password.db.result
  db_migration_password = random_password.db_migration.result
  redis_password        = azurerm_redis_cache.this.primary_access_key
}

resource "azurerm_resource_group" "this" {
  name     = local.name
  location = local.location
  tags     = local.tags
}

# --- network: apps, databases and private endpoints each get a subnet ---

resource "azurerm_virtual_network" "this" {
  name                = local.name
  location            = local.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.network_cidr]
  tags                = local.tags
}

resource "azurerm_subnet" "apps" {
  name                 = "apps"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [cidrsubnet(var.network_cidr, 7, 0)]
  delegation {
    name = "container-apps"
    service_delegation {
      name    = "Microsoft.App/environments"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "db" {
  name                 = "db"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [cidrsubnet(var.network_cidr, 8, 2)]
  delegation {
    name = "postgres"
    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

resource "azurerm_subnet" "endpoints" {
  name                 = "endpoints"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.this.name
  address_prefixes     = [cidrsubnet(var.network_cidr, 8, 3)]
}

# Zones Azure requires for VNet-integrated Postgres and the cache's private endpoint, plus the
# region's own zone with the names the topology uses.
resource "azurerm_private_dns_zone" "this" {
  for_each = {
    postgres = "${local.name}.postgres.database.azure.com"
    redis    = "privatelink.redis.cache.windows.net"
    geo      = var.region.private_zone
  }
  name                = each.value
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "this" {
  for_each              = azurerm_private_dns_zone.this
  name                  = each.key
  resource_group_name   = azurerm_resource_group.this.name
  private_dns_zone_name = each.value.name
  virtual_network_id    = azurerm_virtual_network.this.id
}

# --- secrets in Key Vault, read by the apps' identity ---

resource "random_password" "db" {
  length  = 32
  special = false
}

resource "random_password" "db_migration" {
  length  = 32
  special = false
}

resource "azurerm_key_vault" "this" {
  name                      = substr(replace("${local.name}-kv", "-", ""), 0, 24)
  location                  = local.location
  resource_group_name       = azurerm_resource_group.this.name
  tenant_id                 = data.azurerm_client_config.current.tenant_id
  sku_name                  = "standard"
  enable_rbac_authorization = true
  purge_protection_enabled  = false
  tags                      = local.tags
}

resource "azurerm_role_assignment" "deployer_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_secret" "this" {
  for_each     = local.secret_names
  name         = each.key
  value        = module.secret_values.values[each.key]
  key_vault_id = azurerm_key_vault.this.id
  depends_on   = [azurerm_role_assignment.deployer_secrets]
}

# --- Postgres: one Flexible Server per shard plus the directory database ---

resource "azurerm_postgresql_flexible_server" "this" {
  for_each = var.region.databases

  name                          = "geo-${each.key}"
  location                      = local.location
  resource_group_name           = azurerm_resource_group.this.name
  version                       = "16"
  sku_name                      = local.db_sku[each.value.size]
  storage_mb                    = local.db_storage[each.value.size]
  delegated_subnet_id           = azurerm_subnet.db.id
  private_dns_zone_id           = azurerm_private_dns_zone.this["postgres"].id
  public_network_access_enabled = false
  administrator_login           = var.migration_user # owns the schema; the services' login (geo) is created by the migration step
  administrator_password        = random_password.db_migration.result
  backup_retention_days         = 7
  zone                          = "1"
  tags                          = merge(local.tags, { geo-shard = each.key })
  depends_on                    = [azurerm_private_dns_zone_virtual_network_link.this]

  dynamic "high_availability" {
    for_each = each.value.size == "small" ? [] : [1]
    content {
      mode = "ZoneRedundant"
    }
  }

  lifecycle {
    # Azure may move the primary/standby zone on failover.
    ignore_changes = [zone, high_availability]
  }
}

resource "azurerm_postgresql_flexible_server_database" "this" {
  for_each  = var.region.databases
  name      = each.value.database
  server_id = azurerm_postgresql_flexible_server.this[each.key].id
}

resource "azurerm_management_lock" "db" {
  for_each   = var.deletion_protection ? azurerm_postgresql_flexible_server.this : {}
  name       = "geo-no-delete"
  scope      = each.value.id
  lock_level = "CanNotDelete"
  notes      = "Set deletion_protection = false to remove."
}

# --- Redis, reached through a private endpoint ---

resource "azurerm_redis_cache" "this" {
  name                          = local.name
  location                      = local.location
  resource_group_name           = azurerm_resource_group.this.name
  capacity                      = 1
  family                        = "C"
  sku_name                      = "Standard"
  minimum_tls_version           = "1.2"
  non_ssl_port_enabled          = false
  public_network_access_enabled = false
  tags                          = local.tags
}

resource "azurerm_private_endpoint" "redis" {
  name                = "${local.name}-redis"
  location            = local.location
  resource_group_name = azurerm_resource_group.this.name
  subnet_id           = azurerm_subnet.endpoints.id
  private_service_connection {
    name                           = "redis"
    private_connection_resource_id = azurerm_redis_cache.this.id
    subresource_names              = ["redisCache"]
    is_manual_connection           = false
  }
  private_dns_zone_group {
    name                 = "redis"
    private_dns_zone_ids = [azurerm_private_dns_zone.this["redis"].id]
  }
}

resource "azurerm_private_dns_cname_record" "this" {
  for_each = merge(
    { for id, db in var.region.databases : db.host => azurerm_postgresql_flexible_server.this[id].fqdn },
    { (var.region.redis_host) = azurerm_redis_cache.this.hostname },
  )
  name                = trimsuffix(each.key, ".${var.region.private_zone}")
  zone_name           = azurerm_private_dns_zone.this["geo"].name
  resource_group_name = azurerm_resource_group.this.name
  ttl                 = 60
  record              = each.value
  depends_on          = [azurerm_private_endpoint.redis]
}
