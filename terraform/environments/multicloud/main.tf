# Three regions on three clouds: us-east on AWS (jurisdiction us), eu-west on Google Cloud and
# eu-central on Azure (jurisdiction eu), under one geo-routed domain in Route 53.

module "topology" {
  source = "../../modules/topology"

  jurisdictions = ["us", "eu"]
  addressing    = { mode = "dns", domain = var.domain }
  auth          = var.auth

  regions = [
    { name = "us-east", cloud = "aws", cloud_region = "us-east-1", jurisdiction = "us", shards = { count = 2 }, continents = ["NA", "SA", "OC", "AS"] },
    { name = "eu-west", cloud = "gcp", cloud_region = "europe-west1", jurisdiction = "eu", shards = { count = 2 }, continents = ["EU", "AF"] },
    { name = "eu-central", cloud = "azure", cloud_region = "germanywestcentral", jurisdiction = "eu", shards = { count = 2 } },
  ]

  latency_ms = {
    us-east    = { eu-west = 80, eu-central = 95 }
    eu-west    = { us-east = 80, eu-central = 15 }
    eu-central = { us-east = 95, eu-west = 15 }
  }
}

# Geo:Logging:UserHashKey, the same in every region (logs name users by a keyed hash).
resource "random_bytes" "user_hash_key" {
  length = 32
}

module "us_east" {
  source = "../../modules/region-aws"

  region              = module.topology.regions["us-east"]
  images              = var.images["aws"]
  tls                 = var.tls["us-east"]
  user_hash_key       = random_bytes.user_hash_key.base64
  network_cidr        = "10.10.0.0/16"
  deletion_protection = var.deletion_protection
  dns_ready           = [for k, r in aws_route53_record.region : r.fqdn if startswith(k, "us-east/")]
}

module "eu_west" {
  source = "../../modules/region-gcp"

  region              = module.topology.regions["eu-west"]
  images              = var.images["gcp"]
  tls                 = var.tls["eu-west"]
  user_hash_key       = random_bytes.user_hash_key.base64
  network_cidr        = "10.20.0.0/16"
  deletion_protection = var.deletion_protection
}

module "eu_central" {
  source = "../../modules/region-azure"

  region              = module.topology.regions["eu-central"]
  images              = var.images["azure"]
  tls                 = var.tls["eu-central"]
  user_hash_key       = random_bytes.user_hash_key.base64
  network_cidr        = "10.30.0.0/16"
  deletion_protection = var.deletion_protection
  dns_ready           = [for k, r in aws_route53_record.region : r.fqdn if startswith(k, "eu-central/")]
}

# --- DNS: one public zone; each region's names, then the geo-routed entry name ---

resource "aws_route53_zone" "public" {
  name = var.domain
}

locals {
  region_records = merge([
    for m in [module.us_east, module.eu_west, module.eu_central] : {
      for k, r in m.dns_records : "${m.name}/${k}" => r
    }
  ]...)
}

resource "aws_route53_record" "region" {
  for_each = local.region_records
  zone_id  = aws_route53_zone.public.zone_id
  name     = each.value.name
  type     = each.value.type
  ttl      = 300
  records  = [each.value.type == "TXT" ? "\"${each.value.value}\"" : each.value.value]
}

resource "aws_route53_health_check" "edge" {
  for_each          = module.topology.regions
  fqdn              = each.value.hostnames.edge
  type              = "HTTPS"
  port              = 443
  resource_path     = "/healthz/ready"
  request_interval  = 30
  failure_threshold = 3
  tags              = { Name = "geo-${each.key}-edge" }
}

resource "aws_route53_record" "entry" {
  for_each        = { for r in module.topology.dns_records : r.set_identifier => r }
  zone_id         = aws_route53_zone.public.zone_id
  name            = each.value.name
  type            = each.value.type
  ttl             = 60
  records         = [each.value.value]
  set_identifier  = each.key
  health_check_id = aws_route53_health_check.edge[each.value.region].id

  geolocation_routing_policy {
    continent = each.value.continent
    country   = each.value.country
  }
}
