# One Geo region on AWS: VPC, RDS per shard, ElastiCache, ECS Fargate behind an HTTPS ALB.
# The provider (with region = var.region.cloud_region) comes from the caller.

locals {
  name = "geo-${var.region.name}"
  tags = merge(var.labels, { "geo:region" = var.region.name, "geo:jurisdiction" = var.region.jurisdiction })

  db_class   = { small = "db.t4g.medium", medium = "db.r6g.large", large = "db.r6g.2xlarge" }
  db_storage = { small = 20, medium = 100, large = 500 }

  # Secret names and the environment that reads them come from the topology module (one mapping for every cloud);
  # module.secret_values fills in the values, from this cloud's sources where they are the cloud's.
  secret_names = toset(var.region.secret_names)

  # Only the edge is public; the API, directory and replicator sit behind internal load balancers.
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
  redis_password        = random_password.redis.result
}

data "aws_availability_zones" "available" {
  state = "available"
}

# --- network: two public subnets (ALB, NAT) and two private ones (tasks, databases, cache) ---

resource "aws_vpc" "this" {
  cidr_block           = var.network_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(local.tags, { Name = local.name })
}

resource "aws_subnet" "public" {
  count                   = 2
  vpc_id                  = aws_vpc.this.id
  availability_zone       = data.aws_availability_zones.available.names[count.index]
  cidr_block              = cidrsubnet(var.network_cidr, 4, count.index)
  map_public_ip_on_launch = true
  tags                    = merge(local.tags, { Name = "${local.name}-public-${count.index}" })
}

resource "aws_subnet" "private" {
  count             = 2
  vpc_id            = aws_vpc.this.id
  availability_zone = data.aws_availability_zones.available.names[count.index]
  cidr_block        = cidrsubnet(var.network_cidr, 4, count.index + 8)
  tags              = merge(local.tags, { Name = "${local.name}-private-${count.index}" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = local.tags
}

resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = local.tags
}

resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public[0].id
  tags          = local.tags
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
  tags = local.tags
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this.id
  }
  tags = local.tags
}

resource "aws_route_table_association" "public" {
  count          = 2
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table_association" "private" {
  count          = 2
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

resource "aws_security_group" "alb" {
  name   = "${local.name}-alb"
  vpc_id = aws_vpc.this.id
  tags   = local.tags

  ingress {
    description = "HTTPS from clients (the edge is the only public service)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    description = "HTTP, redirected to HTTPS"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "tasks" {
  name   = "${local.name}-tasks"
  vpc_id = aws_vpc.this.id
  tags   = local.tags

  ingress {
    description     = "The edge from the public load balancer: HTTPS on 8443, health on 8080"
    from_port       = 8080
    to_port         = 8443
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }
  ingress {
    description = "API, directory and replicator from the internal load balancers (mutual TLS passed through to 8443; health on 8080) inside the network"
    from_port   = 8080
    to_port     = 8443
    protocol    = "tcp"
    cidr_blocks = [var.network_cidr]
  }
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "data" {
  name   = "${local.name}-data"
  vpc_id = aws_vpc.this.id
  tags   = local.tags

  ingress {
    description     = "Postgres from the services"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.tasks.id]
  }
  ingress {
    description     = "Redis (TLS) from the services"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.tasks.id]
  }
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

resource "random_password" "redis" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "this" {
  for_each                = local.secret_names
  name                    = "${local.name}/${each.key}"
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  for_each      = local.secret_names
  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = module.secret_values.values[each.key]
}

# --- Postgres: one RDS instance per shard plus the directory database ---

resource "aws_db_subnet_group" "this" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
  tags       = local.tags
}

resource "aws_db_instance" "this" {
  for_each = var.region.databases

  identifier                   = "geo-${each.key}"
  engine                       = "postgres"
  engine_version               = "17"
  instance_class               = local.db_class[each.value.size]
  allocated_storage            = local.db_storage[each.value.size]
  max_allocated_storage        = local.db_storage[each.value.size] * 5
  storage_type                 = "gp3"
  storage_encrypted            = true
  multi_az                     = each.value.size != "small"
  db_name                      = each.value.database
  username                     = var.migration_user # owns the schema; the services' login (geo) is created by the migration step
  password                     = random_password.db_migration.result
  db_subnet_group_name         = aws_db_subnet_group.this.name
  vpc_security_group_ids       = [aws_security_group.data.id]
  backup_retention_period      = 7
  deletion_protection          = var.deletion_protection
  skip_final_snapshot          = !var.deletion_protection
  final_snapshot_identifier    = "geo-${each.key}-final"
  auto_minor_version_upgrade   = true
  performance_insights_enabled = true
  tags                         = merge(local.tags, { "geo:shard" = each.key })
}

# --- Redis ---

resource "aws_elasticache_subnet_group" "this" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id       = local.name
  description                = "Geo cache for ${var.region.name}"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = "cache.t4g.small"
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  port                       = 6379
  transit_encryption_enabled = true
  at_rest_encryption_enabled = true
  auth_token                 = random_password.redis.result
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.data.id]
  tags                       = local.tags
}

# --- private names the topology uses: db-N / db-directory / redis.<region>.<private_domain> ---

resource "aws_route53_zone" "private" {
  name = var.region.private_zone
  vpc {
    vpc_id = aws_vpc.this.id
  }
  tags = local.tags
}

resource "aws_route53_record" "private" {
  for_each = merge(
    { for id, db in var.region.databases : db.host => aws_db_instance.this[id].address },
    { (var.region.redis_host) = aws_elasticache_replication_group.this.primary_endpoint_address },
  )
  zone_id = aws_route53_zone.private.zone_id
  name    = each.key
  type    = "CNAME"
  ttl     = 60
  records = [each.value]
}
