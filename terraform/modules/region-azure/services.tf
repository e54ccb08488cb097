# The four services as Container Apps in one VNet-integrated environment. Only the edge has external HTTPS ingress
# (its own host name); the API, directory and replicator take traffic from inside the environment's network only.

resource "azurerm_log_analytics_workspace" "this" {
  name                = local.name
  location            = local.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = 30
  tags                = local.tags
}

resource "azurerm_user_assigned_identity" "apps" {
  name                = "${local.name}-apps"
  location            = local.location
  resource_group_name = azurerm_resource_group.this.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "apps_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.apps.principal_id
}

resource "azurerm_container_app_environment" "this" {
  name                       = local.name
  location                   = local.location
  resource_group_name        = azurerm_resource_group.this.name
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id
  infrastructure_subnet_id   = azurerm_subnet.apps.id
  workload_profile {
    name                  = "Consumption"
    workload_profile_type = "Consumption"
  }
  tags = local.tags
}

resource "azurerm_container_app" "this" {
  for_each = var.region.services

  name                         = "${local.name}-${each.key}"
  container_app_environment_id = azurerm_container_app_environment.this.id
  resource_group_name          = azurerm_resource_group.this.name
  revision_mode                = "Single"
  workload_profile_name        = "Consumption"
  tags                         = local.tags
  depends_on                   = [azurerm_role_assignment.apps_secrets]

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.apps.id]
  }

  # Key Vault references: the app reads the secret with its identity; nothing is copied into the app's definition.
  dynamic "secret" {
    for_each = { for env, name in each.value.secret_env : name => azurerm_key_vault_secret.this[name].versionless_id }
    content {
      name                = secret.key
      key_vault_secret_id = secret.value
      identity            = azurerm_user_assigned_identity.apps.id
    }
  }

  # The edge: the platform ends the public TLS and sends HTTP/1.1 to the cleartext port. The internal services: TCP
  # ingress (the environment is VNet-integrated), so their mutual TLS reaches the container's HTTPS port untouched.
  ingress {
    external_enabled = each.key == "edge"
    target_port      = each.key == "edge" ? each.value.health_port : each.value.port
    exposed_port     = each.key == "edge" ? null : 443
    transport        = each.key == "edge" ? "http" : "tcp"
    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }

  template {
    min_replicas = each.value.instances
    max_replicas = max(each.value.instances * 3, 3)

    container {
      name   = each.key
      image  = var.images[each.key]
      cpu    = 0.5
      memory = "1Gi"

      dynamic "env" {
        for_each = each.value.environment
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = each.value.secret_env
        content {
          name        = env.key
          secret_name = env.value
        }
      }

      startup_probe {
        transport               = "HTTP"
        port                    = each.value.health_port
        path                    = each.value.health_path
        interval_seconds        = 5
        failure_count_threshold = 24
      }
      readiness_probe {
        transport = "HTTP"
        port      = each.value.health_port
        path      = each.value.health_path
      }
      liveness_probe {
        transport = "HTTP"
        port      = each.value.health_port
        path      = each.value.health_path
      }
    }
  }
}

resource "terraform_data" "dns_ready" {
  input = var.dns_ready
}

# Custom host names with free managed certificates; Azure checks the asuid TXT record first,
# so these wait for the environment to publish dns_records.
resource "azurerm_container_app_custom_domain" "this" {
  for_each         = local.public
  name             = each.value.hostname
  container_app_id = azurerm_container_app.this[each.key].id
  depends_on       = [terraform_data.dns_ready]

  lifecycle {
    # Azure creates and binds the managed certificate after validation.
    ignore_changes = [certificate_binding_type, container_app_environment_certificate_id]
  }
}
