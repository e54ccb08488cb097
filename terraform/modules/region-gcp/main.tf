# One Geo region on Google Cloud: VPC, Cloud SQL per shard, Memorystore, Cloud Run behind a
# global HTTPS load balancer. The provider (project, region = var.region.cloud_region) comes from the caller.

locals {
  name   = "geo-${var.region.name}"
  labels = merge(var.labels, { geo-region = var.region.name, geo-jurisdiction = var.region.jurisdiction })

  db_tier = { small = "db-custom-2-8192", medium = "db-custom-4-16384", large = "db-custom-8-32768" }
  db_disk = { small = 20, medium = 100, large = 500 }

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
  redis_password        = google_redis_instance.this.auth_string
}

# --- network with private service access for Cloud SQL and Memorystore ---

resource "google_compute_network" "this" {
  name                    = local.name
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "this" {
  name                     = local.name
  network                  = google_compute_network.this.id
  region                   = var.region.cloud_region
  ip_cidr_range            = cidrsubnet(var.network_cidr, 4, 0)
  private_ip_google_access = true
}

resource "google_compute_global_address" "services" {
  name          = "${local.name}-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  address       = cidrhost(cidrsubnet(var.network_cidr, 4, 8), 0)
  prefix_length = 20
  network       = google_compute_network.this.id
}

resource "google_service_networking_connection" "this" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.services.name]
}

# --- secrets ---

resource "random_password" "db" {
  length  = 32
  special = false
}

resource "random_password" "db_migration" {
  length  = 32
  special = false
}

resource "google_secret_manager_secret" "this" {
  for_each  = local.secret_names
  secret_id = "${local.name}-${each.key}"
  labels    = local.labels
  replication {
    user_managed {
      replicas {
        location = var.region.cloud_region
      }
    }
  }
}

resource "google_secret_manager_secret_version" "this" {
  for_each    = local.secret_names
  secret      = google_secret_manager_secret.this[each.key].id
  secret_data = module.secret_values.values[each.key]
}

# --- Postgres: one Cloud SQL instance per shard plus the directory database ---

resource "google_sql_database_instance" "this" {
  for_each = var.region.databases

  name                = "geo-${each.key}"
  database_version    = "POSTGRES_17"
  region              = var.region.cloud_region
  deletion_protection = var.deletion_protection
  depends_on          = [google_service_networking_connection.this]

  settings {
    edition           = "ENTERPRISE"
    tier              = local.db_tier[each.value.size]
    availability_type = each.value.size == "small" ? "ZONAL" : "REGIONAL"
    disk_size         = local.db_disk[each.value.size]
    disk_autoresize   = true
    user_labels       = merge(local.labels, { geo-shard = each.key })
    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.this.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }
    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }
  }
}

resource "google_sql_database" "this" {
  for_each = var.region.databases
  name     = each.value.database
  instance = google_sql_database_instance.this[each.key].name
}

# The login that owns the schema and runs migrations. The services' login (geo, no DDL rights) is created with
# its grants by the migration step (terraform/README.md "Database roles"): a login created here would be a member
# of cloudsqlsuperuser.
resource "google_sql_user" "migration" {
  for_each = var.region.databases
  name     = var.migration_user
  instance = google_sql_database_instance.this[each.key].name
  password = random_password.db_migration.result
}

# --- Redis ---

resource "google_redis_instance" "this" {
  name                    = local.name
  tier                    = "STANDARD_HA"
  memory_size_gb          = 1
  region                  = var.region.cloud_region
  redis_version           = "REDIS_7_2"
  authorized_network      = google_compute_network.this.id
  connect_mode            = "PRIVATE_SERVICE_ACCESS"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
  labels                  = local.labels
  depends_on              = [google_service_networking_connection.this]
}

# --- private names the topology uses: db-N / db-directory / redis.<region>.<private_domain> ---

resource "google_dns_managed_zone" "private" {
  name       = "${local.name}-private"
  dns_name   = "${var.region.private_zone}."
  visibility = "private"
  labels     = local.labels
  private_visibility_config {
    networks {
      network_url = google_compute_network.this.id
    }
  }
}

resource "google_dns_record_set" "private" {
  for_each = merge(
    { for id, db in var.region.databases : db.host => google_sql_database_instance.this[id].private_ip_address },
    { (var.region.redis_host) = google_redis_instance.this.host },
  )
  managed_zone = google_dns_managed_zone.private.name
  name         = "${each.key}."
  type         = "A"
  ttl          = 60
  rrdatas      = [each.value]
}
