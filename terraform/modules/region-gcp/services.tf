# The four services on Cloud Run. Only the edge is public, through one global HTTPS load balancer; the API,
# directory and replicator take internal traffic only (the region's VPC and networks connected to it).

resource "google_service_account" "run" {
  account_id   = "${local.name}-run"
  display_name = "Geo services in ${var.region.name}"
}

resource "google_secret_manager_secret_iam_member" "run" {
  for_each  = google_secret_manager_secret.this
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.run.email}"
}

resource "google_cloud_run_v2_service" "this" {
  for_each = var.region.services

  name                = "${local.name}-${each.key}"
  location            = var.region.cloud_region
  ingress             = each.key == "edge" ? "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" : "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = false
  labels              = local.labels
  depends_on          = [google_secret_manager_secret_iam_member.run, google_secret_manager_secret_version.this]

  template {
    service_account = google_service_account.run.email
    scaling {
      min_instance_count = each.value.instances
    }
    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = google_compute_network.this.id
        subnetwork = google_compute_subnetwork.this.id
      }
    }
    containers {
      image = var.images[each.key]
      ports {
        # Cloud Run ends TLS itself and sends cleartext HTTP/1.1 to the container's cleartext port: right for the edge,
        # but no client certificate reaches the internal services there (terraform/README.md, "Known gap").
        name           = "http1"
        container_port = each.value.health_port
      }
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
          name = env.key
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.this[env.value].secret_id
              version = "latest"
            }
          }
        }
      }
      startup_probe {
        period_seconds    = 5
        failure_threshold = 24
        http_get {
          path = each.value.health_path
          port = each.value.health_port
        }
      }
      liveness_probe {
        period_seconds = 15
        http_get {
          path = each.value.health_path
          port = each.value.health_port
        }
      }
    }
  }
}

# Only the edge may be invoked by anyone (through the load balancer; callers present bearer tokens). The internal
# services are invoked by this region's services' account; callers are authenticated again by mutual TLS.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = google_cloud_run_v2_service.this
  name     = each.value.name
  location = each.value.location
  role     = "roles/run.invoker"
  member   = each.key == "edge" ? "allUsers" : "serviceAccount:${google_service_account.run.email}"
}

resource "google_compute_region_network_endpoint_group" "this" {
  for_each              = local.public
  name                  = "${local.name}-${each.key}"
  region                = var.region.cloud_region
  network_endpoint_type = "SERVERLESS"
  cloud_run {
    service = google_cloud_run_v2_service.this[each.key].name
  }
}

resource "google_compute_backend_service" "this" {
  for_each              = local.public
  name                  = "${local.name}-${each.key}"
  protocol              = "HTTPS"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  backend {
    group = google_compute_region_network_endpoint_group.this[each.key].id
  }
}

resource "google_compute_url_map" "this" {
  name            = local.name
  default_service = google_compute_backend_service.this["edge"].id

  dynamic "host_rule" {
    for_each = local.public
    content {
      hosts        = [host_rule.value.hostname]
      path_matcher = host_rule.key
    }
  }
  dynamic "path_matcher" {
    for_each = local.public
    content {
      name            = path_matcher.key
      default_service = google_compute_backend_service.this[path_matcher.key].id
    }
  }
}

resource "google_compute_managed_ssl_certificate" "this" {
  name = local.name
  managed {
    domains = [var.region.hostnames.edge]
  }
}

resource "google_compute_target_https_proxy" "this" {
  name             = local.name
  url_map          = google_compute_url_map.this.id
  ssl_certificates = [google_compute_managed_ssl_certificate.this.id]
}

resource "google_compute_global_address" "lb" {
  name = "${local.name}-lb"
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = local.name
  target                = google_compute_target_https_proxy.this.id
  ip_address            = google_compute_global_address.lb.address
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
