variable "jurisdictions" {
  description = "Every legal area a region may belong to (e.g. us, eu). `global` is reserved for the residency without constraint."
  type        = list(string)
  default     = ["us", "eu"]

  validation {
    condition     = alltrue([for j in var.jurisdictions : can(regex("^[a-z][a-z0-9-]{0,15}$", j))])
    error_message = "Jurisdictions must be short lowercase names (a-z, 0-9, '-', at most 16 characters, starting with a letter); fix: ${jsonencode([for j in var.jurisdictions : j if !can(regex("^[a-z][a-z0-9-]{0,15}$", j))])}."
  }

  validation {
    condition     = !contains(var.jurisdictions, "global")
    error_message = "\"global\" is the residency without constraint, not a jurisdiction: remove it from var.jurisdictions (it is always a valid residency)."
  }

  validation {
    condition     = length(distinct(var.jurisdictions)) == length(var.jurisdictions)
    error_message = "var.jurisdictions lists ${jsonencode([for j in distinct(var.jurisdictions) : j if length([for k in var.jurisdictions : k if k == j]) > 1])} more than once: list each jurisdiction once."
  }
}

variable "residencies" {
  description = "The residencies users may choose. null (default) offers every jurisdiction plus `global`. Every residency other than `global` needs at least one region."
  type        = list(string)
  default     = null

  validation {
    condition = alltrue([
      for r in coalesce(var.residencies, ["global"]) : r == "global" || contains(var.jurisdictions, r)
    ])
    error_message = "Residencies ${jsonencode([for r in coalesce(var.residencies, ["global"]) : r if r != "global" && !contains(var.jurisdictions, r)])} are not jurisdictions: use one of ${jsonencode(concat(var.jurisdictions, ["global"]))}, or add the name to var.jurisdictions."
  }

  validation {
    condition = alltrue([
      for r in coalesce(var.residencies, concat(var.jurisdictions, ["global"])) :
      r == "global" || !contains(var.jurisdictions, r) || anytrue([for g in var.regions : g.jurisdiction == r])
    ])
    error_message = "Residencies ${jsonencode([for r in coalesce(var.residencies, concat(var.jurisdictions, ["global"])) : r if r != "global" && contains(var.jurisdictions, r) && !anytrue([for g in var.regions : g.jurisdiction == r])])} have no region, so their users' data could live nowhere: add a region with that jurisdiction, or leave the residency out of var.residencies (by default every jurisdiction in var.jurisdictions is offered)."
  }
}

variable "regions" {
  description = <<-EOT
    The regions, in order (the order numbers local ports and picks the default geo-DNS answer).
    name: short id used in URLs and resource names; cloud: aws | gcp | azure | local;
    cloud_region: the provider's region (e.g. us-east-1); jurisdiction: one of var.jurisdictions;
    shards: { count, size = small | medium | large }; instances: service replica counts
    (default 1 each locally, 2 each in the cloud); continents: geo-DNS continents this region's
    edge answers (AF AN AS EU NA OC SA).
  EOT
  type = list(object({
    name         = string
    cloud        = string
    cloud_region = string
    jurisdiction = string
    shards = object({
      count = number
      size  = optional(string, "small")
    })
    instances = optional(object({
      edge       = optional(number)
      api        = optional(number)
      directory  = optional(number)
      replicator = optional(number)
    }), {})
    continents = optional(list(string), [])
  }))

  validation {
    condition     = length(var.regions) > 0
    error_message = "var.regions is empty: declare at least one region."
  }

  validation {
    condition     = alltrue([for r in var.regions : can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", r.name))])
    error_message = "Region names ${jsonencode([for r in var.regions : r.name if !can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", r.name))])} are invalid: use 2-16 lowercase letters, digits or '-', starting with a letter (names end up in DNS names and cloud resource names with length limits)."
  }

  validation {
    condition     = length(distinct(var.regions[*].name)) == length(var.regions)
    error_message = "Region names ${jsonencode([for n in distinct(var.regions[*].name) : n if length([for r in var.regions : r if r.name == n]) > 1])} are declared more than once: give every region a unique name."
  }

  validation {
    condition     = alltrue([for r in var.regions : contains(["aws", "gcp", "azure", "local"], r.cloud)])
    error_message = "Regions ${jsonencode([for r in var.regions : "${r.name}: ${r.cloud}" if !contains(["aws", "gcp", "azure", "local"], r.cloud)])} name an unknown cloud: use aws, gcp, azure or local."
  }

  validation {
    condition     = alltrue([for r in var.regions : contains(var.jurisdictions, r.jurisdiction)])
    error_message = "Regions ${jsonencode([for r in var.regions : "${r.name}: ${r.jurisdiction}" if !contains(var.jurisdictions, r.jurisdiction)])} name an unknown jurisdiction: use one of ${jsonencode(var.jurisdictions)}, or add it to var.jurisdictions."
  }

  validation {
    condition     = alltrue([for r in var.regions : r.shards.count >= 1 && r.shards.count <= 4096 && floor(r.shards.count) == r.shards.count])
    error_message = "Regions ${jsonencode([for r in var.regions : "${r.name}: ${r.shards.count}" if !(r.shards.count >= 1 && r.shards.count <= 4096 && floor(r.shards.count) == r.shards.count)])} have an invalid shard count: use a whole number from 1 to 4096 (a shard owns at least one of the 4096 buckets)."
  }

  validation {
    condition     = alltrue([for r in var.regions : contains(["small", "medium", "large"], r.shards.size)])
    error_message = "Regions ${jsonencode([for r in var.regions : "${r.name}: ${r.shards.size}" if !contains(["small", "medium", "large"], r.shards.size)])} have an unknown shard size: use small, medium or large."
  }

  validation {
    condition = alltrue(flatten([for r in var.regions : [
      for n in values(r.instances) : n == null ? true : (n >= 1 && n <= 100 && floor(n) == n)
    ]]))
    error_message = "Regions ${jsonencode([for r in var.regions : r.name if !alltrue([for n in values(r.instances) : n == null ? true : (n >= 1 && n <= 100 && floor(n) == n)])])} have an invalid instance count: every service needs a whole number from 1 to 100 (or leave it out for the default)."
  }

  validation {
    condition     = alltrue(flatten([for r in var.regions : [for c in r.continents : contains(["AF", "AN", "AS", "EU", "NA", "OC", "SA"], c)]]))
    error_message = "Regions ${jsonencode([for r in var.regions : r.name if !alltrue([for c in r.continents : contains(["AF", "AN", "AS", "EU", "NA", "OC", "SA"], c)])])} list an unknown continent: use AF, AN, AS, EU, NA, OC or SA."
  }

  validation {
    condition     = length(flatten(var.regions[*].continents)) == length(distinct(flatten(var.regions[*].continents)))
    error_message = "Continents ${jsonencode([for c in distinct(flatten(var.regions[*].continents)) : c if length([for x in flatten(var.regions[*].continents) : x if x == c]) > 1])} are claimed by more than one region: geo-DNS answers a continent with one region, so list each continent once."
  }
}

variable "latency_ms" {
  description = "Round-trip latency between regions in ms: latency_ms[from][to]. Every region needs an entry for every other region; it orders failover and places new users."
  type        = map(map(number))

  validation {
    condition     = alltrue([for k in distinct(concat(keys(var.latency_ms), flatten([for m in values(var.latency_ms) : keys(m)]))) : contains(var.regions[*].name, k)])
    error_message = "latency_ms names regions that are not declared: ${jsonencode([for k in distinct(concat(keys(var.latency_ms), flatten([for m in values(var.latency_ms) : keys(m)]))) : k if !contains(var.regions[*].name, k)])}: fix the name or declare the region in var.regions."
  }

  validation {
    condition     = alltrue([for from, m in var.latency_ms : !contains(keys(m), from)])
    error_message = "latency_ms lists a region's latency to itself for ${jsonencode([for from, m in var.latency_ms : from if contains(keys(m), from)])}: remove those entries."
  }

  validation {
    condition     = alltrue(flatten([for m in values(var.latency_ms) : [for v in values(m) : v > 0]]))
    error_message = "latency_ms has values that are not positive: latencies are milliseconds greater than 0."
  }

  validation {
    condition = alltrue(flatten([for a in var.regions : [
      for b in var.regions : a.name == b.name || can(var.latency_ms[a.name][b.name])
    ]]))
    error_message = "latency_ms is missing ${join(", ", flatten([for a in var.regions : [for b in var.regions : "latency_ms[\"${a.name}\"][\"${b.name}\"]" if a.name != b.name && !can(var.latency_ms[a.name][b.name])]]))}: add a latency for every ordered pair of regions."
  }
}

variable "addressing" {
  description = <<-EOT
    How endpoints are named. mode = "local": every service on `host` at port base + region index
    (one process per service). mode = "dns": public HTTPS names <service>.<region>.<domain> and
    private names <db-N|redis>.<region>.<private_domain>.
  EOT
  type = object({
    mode           = string
    domain         = optional(string)
    private_domain = optional(string, "geo.internal")
    host           = optional(string, "127.0.0.1")
    ports = optional(object({
      edge       = optional(number, 8080)
      api        = optional(number, 8090)
      directory  = optional(number, 8100)
      replicator = optional(number, 8110)
      redis      = optional(number, 6380)
      postgres   = optional(number, 5433)
    }), {})
    postgres_user = optional(string)
  })
  default = { mode = "local" }

  validation {
    condition     = contains(["local", "dns"], var.addressing.mode)
    error_message = "addressing.mode is \"${var.addressing.mode}\": use \"local\" (one machine) or \"dns\" (cloud regions with a public DNS domain)."
  }

  validation {
    condition     = var.addressing.mode != "dns" || can(regex("^([a-z0-9-]+\\.)+[a-z]{2,}$", var.addressing.domain))
    error_message = "addressing.mode = \"dns\" needs addressing.domain, a DNS zone you control such as \"geo.example.com\"."
  }

  validation {
    condition     = alltrue([for r in var.regions : (r.cloud == "local") == (var.addressing.mode == "local")])
    error_message = "Regions ${jsonencode([for r in var.regions : "${r.name}: ${r.cloud}" if(r.cloud == "local") != (var.addressing.mode == "local")])} do not fit addressing.mode \"${var.addressing.mode}\": local regions need mode \"local\" and cloud regions need mode \"dns\"."
  }

  validation {
    condition     = var.addressing.mode != "local" || length(var.regions) <= 10
    error_message = "addressing.mode = \"local\" gives each region one port in a block of 10 per service, so at most 10 regions fit: remove regions or space the ports out."
  }

  validation {
    condition     = var.addressing.mode != "local" || alltrue(flatten([for r in var.regions : [for n in values(r.instances) : n == null || n == 1]]))
    error_message = "addressing.mode = \"local\" runs one process per service and region, but ${jsonencode([for r in var.regions : r.name if !alltrue([for n in values(r.instances) : n == null || n == 1])])} ask for more: leave instances out (or set them to 1) for local regions."
  }
}

variable "auth" {
  description = <<-EOT
    Who may call the public API (section Geo:Auth, docs/security.md), given to the edge and the API as
    Geo__Auth__Audience and Geo__Auth__Issuers__0__Issuer (and __Authority, __MetadataAddress; 1, 2, … for further
    issuers). Public values (keys come from each issuer's OIDC discovery document), so plain environment variables.
    null leaves them out (the local mode: ./geo up hands its development issuer to the services itself).
  EOT
  default     = null
  type = object({
    audience = string
    issuers = list(object({
      issuer           = string
      authority        = optional(string)
      metadata_address = optional(string)
    }))
  })

  validation {
    condition     = try(length(var.auth.issuers) > 0 && alltrue([for i in var.auth.issuers : i.authority != null || i.metadata_address != null]), var.auth == null)
    error_message = "auth.issuers needs at least one issuer, each with an authority or a metadata_address (its OIDC discovery document)."
  }
}
