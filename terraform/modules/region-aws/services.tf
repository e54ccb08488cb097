# The four services on ECS Fargate. Only the edge is public (HTTPS load balancer); the API, directory and
# replicator each sit behind an internal network load balancer that passes their mutual TLS through.

resource "aws_ecs_cluster" "this" {
  name = local.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = local.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/geo/${var.region.name}"
  retention_in_days = 30
  tags              = local.tags
}

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "read_secrets" {
  name = "read-geo-secrets"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = [for s in aws_secretsmanager_secret.this : s.arn]
    }]
  })
}

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}

resource "aws_ecs_task_definition" "this" {
  for_each = var.region.services

  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 512
  memory                   = 1024
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name         = each.key
    image        = var.images[each.key]
    essential    = true
    portMappings = [for p in distinct([each.value.health_port, each.value.port]) : { containerPort = p, protocol = "tcp" }]
    environment  = [for k, v in each.value.environment : { name = k, value = v }]
    secrets      = [for env, s in each.value.secret_env : { name = env, valueFrom = aws_secretsmanager_secret.this[s].arn }]
    # The image's own check (HEALTHCHECK in the root Dockerfile): GET /healthz/ready on 8080.
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/geo-healthcheck"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = var.region.cloud_region
        awslogs-stream-prefix = each.key
      }
    }
  }])
  tags = local.tags
}

resource "aws_lb" "this" {
  name               = local.name
  load_balancer_type = "application"
  security_groups    = [aws_security_group.alb.id]
  subnets            = aws_subnet.public[*].id
  tags               = local.tags
}

resource "aws_lb_target_group" "this" {
  for_each = local.public

  # The balancer ends the public TLS and opens its own to the edge's HTTPS port (8443); it does not check the
  # certificate of a target, so the deployment CA's edge certificate serves.
  name             = "${local.name}-${each.key}"
  vpc_id           = aws_vpc.this.id
  target_type      = "ip"
  port             = each.value.port
  protocol         = "HTTPS"
  protocol_version = "HTTP1"

  health_check {
    protocol = "HTTP"
    path     = each.value.health_path
    port     = tostring(each.value.health_port)
    matcher  = "200"
    interval = 15
  }
  tags = local.tags
}

resource "aws_acm_certificate" "this" {
  domain_name       = var.region.hostnames.edge
  validation_method = "DNS"
  tags              = local.tags
  lifecycle {
    create_before_destroy = true
  }
}

resource "terraform_data" "dns_ready" {
  input = var.dns_ready
}

resource "aws_acm_certificate_validation" "this" {
  certificate_arn         = aws_acm_certificate.this.arn
  validation_record_fqdns = [for o in aws_acm_certificate.this.domain_validation_options : o.resource_record_name]
  depends_on              = [terraform_data.dns_ready]
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = aws_acm_certificate_validation.this.certificate_arn
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "text/plain"
      message_body = "unknown host"
      status_code  = "404"
    }
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener_rule" "this" {
  for_each     = local.public
  listener_arn = aws_lb_listener.https.arn
  priority     = 10 + index(keys(var.region.services), each.key)
  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key].arn
  }
  condition {
    host_header {
      values = [each.value.hostname]
    }
  }
}

# --- internal services: one internal NLB each, TCP on 443 to the task (TLS end to end, mutual) ---

resource "aws_lb" "internal" {
  for_each           = local.internal
  name               = "${local.name}-${each.key}"
  load_balancer_type = "network"
  internal           = true
  subnets            = aws_subnet.private[*].id
  tags               = local.tags
}

resource "aws_lb_target_group" "internal" {
  for_each    = local.internal
  name        = "${local.name}-${each.key}-int"
  vpc_id      = aws_vpc.this.id
  target_type = "ip"
  port        = each.value.port
  protocol    = "TCP"
  # Readiness over the cleartext health port (health needs no client certificate); traffic stays TLS end to end.
  health_check {
    protocol = "HTTP"
    path     = each.value.health_path
    port     = tostring(each.value.health_port)
    interval = 15
  }
  tags = local.tags
}

resource "aws_lb_listener" "internal" {
  for_each          = local.internal
  load_balancer_arn = aws_lb.internal[each.key].arn
  port              = 443
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.internal[each.key].arn
  }
}

locals {
  target_groups = merge(
    { for s, tg in aws_lb_target_group.this : s => tg.arn },
    { for s, tg in aws_lb_target_group.internal : s => tg.arn },
  )
}

resource "aws_ecs_service" "this" {
  for_each = var.region.services

  name                              = each.key
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this[each.key].arn
  desired_count                     = each.value.instances
  launch_type                       = "FARGATE"
  health_check_grace_period_seconds = 60
  network_configuration {
    subnets         = aws_subnet.private[*].id
    security_groups = [aws_security_group.tasks.id]
  }
  load_balancer {
    target_group_arn = local.target_groups[each.key]
    container_name   = each.key
    container_port   = each.value.port
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  depends_on = [aws_lb_listener_rule.this, aws_lb_listener.internal]
  tags       = local.tags
}
