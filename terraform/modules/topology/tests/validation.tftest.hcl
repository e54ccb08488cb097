# Every validation rule rejects the mistake it names. A valid two-region base, broken one way per run.
variables {
  regions = [
    { name = "us-east", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 2 } },
    { name = "eu-west", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 2 } },
  ]
  latency_ms = {
    us-east = { eu-west = 75 }
    eu-west = { us-east = 75 }
  }
}

run "base_is_valid" {
  command = plan
}

# --- residency and jurisdiction: the two mistakes that would put data in the wrong place ---

run "region_with_unknown_jurisdiction" {
  command = plan
  variables {
    regions = [var.regions[0], merge(var.regions[1], { jurisdiction = "europe" })]
  }
  expect_failures = [var.regions]
}

run "residency_with_no_region" {
  command = plan
  variables {
    jurisdictions = ["us", "eu", "ca"]
    residencies   = ["us", "eu", "ca", "global"]
  }
  expect_failures = [var.residencies]
}

run "declared_jurisdiction_with_no_region_by_default" {
  command = plan
  variables {
    jurisdictions = ["us", "eu", "ca"]
  }
  expect_failures = [var.residencies]
}

run "residency_that_is_not_a_jurisdiction" {
  command = plan
  variables {
    residencies = ["us", "mars"]
  }
  expect_failures = [var.residencies]
}

run "global_is_not_a_jurisdiction" {
  command = plan
  variables {
    jurisdictions = ["us", "eu", "global"]
  }
  expect_failures = [var.jurisdictions]
}

run "duplicate_jurisdiction" {
  command = plan
  variables {
    jurisdictions = ["us", "eu", "us"]
  }
  expect_failures = [var.jurisdictions]
}

run "malformed_jurisdiction" {
  command = plan
  variables {
    jurisdictions = ["us", "eu", "Not Valid"]
    residencies   = ["us", "eu"]
  }
  expect_failures = [var.jurisdictions]
}

# --- regions ---

run "no_regions" {
  command = plan
  variables {
    regions     = []
    latency_ms  = {}
    residencies = ["global"]
  }
  expect_failures = [var.regions]
}

run "duplicate_region_names" {
  command = plan
  variables {
    regions = [
      { name = "us-east", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 2 } },
      { name = "eu-west", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 2 } },
      { name = "eu-west", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 1 } },
    ]
  }
  expect_failures = [var.regions]
}

run "malformed_region_name" {
  command = plan
  variables {
    regions = [
      { name = "us-east", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 2 } },
      { name = "EU_West", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 2 } },
    ]
    latency_ms = {
      us-east = { EU_West = 75 }
      EU_West = { us-east = 75 }
    }
  }
  expect_failures = [var.regions]
}

run "unknown_cloud" {
  command = plan
  variables {
    regions = [var.regions[0], merge(var.regions[1], { cloud = "oracle" })]
  }
  expect_failures = [var.regions]
}

run "zero_shards" {
  command = plan
  variables {
    regions = [merge(var.regions[0], { shards = { count = 0 } }), var.regions[1]]
  }
  expect_failures = [var.regions]
}

run "fractional_shards" {
  command = plan
  variables {
    regions = [merge(var.regions[0], { shards = { count = 1.5 } }), var.regions[1]]
  }
  expect_failures = [var.regions]
}

run "more_shards_than_buckets" {
  command = plan
  variables {
    regions = [merge(var.regions[0], { shards = { count = 4097 } }), var.regions[1]]
  }
  expect_failures = [var.regions]
}

run "unknown_shard_size" {
  command = plan
  variables {
    regions = [merge(var.regions[0], { shards = { count = 2, size = "huge" } }), var.regions[1]]
  }
  expect_failures = [var.regions]
}

run "zero_instances" {
  command = plan
  variables {
    regions = [merge(var.regions[0], { instances = { api = 0 } }), var.regions[1]]
  }
  expect_failures = [var.regions]
}

run "unknown_continent" {
  command = plan
  variables {
    regions = [merge(var.regions[0], { continents = ["US"] }), var.regions[1]]
  }
  expect_failures = [var.regions]
}

run "continent_claimed_twice" {
  command = plan
  variables {
    regions = [
      { name = "us-east", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 2 }, continents = ["NA", "EU"] },
      { name = "eu-west", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 2 }, continents = ["EU"] },
    ]
  }
  expect_failures = [var.regions]
}

# --- latency table ---

run "latency_names_unknown_region" {
  command = plan
  variables {
    latency_ms = {
      us-east = { eu-west = 75, ap-south = 200 }
      eu-west = { us-east = 75 }
    }
  }
  expect_failures = [var.latency_ms]
}

run "latency_to_itself" {
  command = plan
  variables {
    latency_ms = {
      us-east = { eu-west = 75, us-east = 1 }
      eu-west = { us-east = 75 }
    }
  }
  expect_failures = [var.latency_ms]
}

run "latency_not_positive" {
  command = plan
  variables {
    latency_ms = {
      us-east = { eu-west = 0 }
      eu-west = { us-east = 75 }
    }
  }
  expect_failures = [var.latency_ms]
}

run "latency_missing_pair" {
  command = plan
  variables {
    latency_ms = {
      us-east = { eu-west = 75 }
    }
  }
  expect_failures = [var.latency_ms]
}

# --- addressing ---

run "unknown_addressing_mode" {
  command = plan
  variables {
    addressing = { mode = "k8s" }
  }
  expect_failures = [var.addressing]
}

run "dns_mode_without_domain" {
  command = plan
  variables {
    addressing = { mode = "dns" }
    regions = [
      { name = "us-east", cloud = "aws", cloud_region = "us-east-1", jurisdiction = "us", shards = { count = 2 } },
      { name = "eu-west", cloud = "gcp", cloud_region = "europe-west1", jurisdiction = "eu", shards = { count = 2 } },
    ]
  }
  expect_failures = [var.addressing]
}

run "cloud_region_in_local_mode" {
  command = plan
  variables {
    regions = [merge(var.regions[0], { cloud = "aws", cloud_region = "us-east-1" }), var.regions[1]]
  }
  expect_failures = [var.addressing]
}

run "too_many_local_regions" {
  command = plan
  variables {
    jurisdictions = ["us"]
    regions       = [for i in range(11) : { name = "us-${i}", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 1 } }]
    latency_ms    = { for a in range(11) : "us-${a}" => { for b in range(11) : "us-${b}" => 10 if a != b } }
  }
  expect_failures = [var.addressing]
}

run "several_instances_in_local_mode" {
  command = plan
  variables {
    regions = [merge(var.regions[0], { instances = { api = 2 } }), var.regions[1]]
  }
  expect_failures = [var.addressing]
}
