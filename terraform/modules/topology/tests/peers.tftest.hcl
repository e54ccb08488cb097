# Replication peers follow residency: same jurisdiction only, every region for `global`.
variables {
  jurisdictions = ["us", "eu", "ch"]
  regions = [
    { name = "us-east", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 1 } },
    { name = "us-west", cloud = "local", cloud_region = "local", jurisdiction = "us", shards = { count = 1 } },
    { name = "eu-west", cloud = "local", cloud_region = "local", jurisdiction = "eu", shards = { count = 1 } },
    { name = "ch-zurich", cloud = "local", cloud_region = "local", jurisdiction = "ch", shards = { count = 1 } },
  ]
  latency_ms = {
    us-east   = { us-west = 60, eu-west = 75, ch-zurich = 95 }
    us-west   = { us-east = 60, eu-west = 140, ch-zurich = 150 }
    eu-west   = { us-east = 75, us-west = 140, ch-zurich = 15 }
    ch-zurich = { us-east = 95, us-west = 150, eu-west = 15 }
  }
}

run "same_jurisdiction_and_global" {
  command = plan

  assert {
    condition = output.replication_peers["us-east"] == {
      us     = ["us-west"]
      global = ["us-west", "eu-west", "ch-zurich"]
    }
    error_message = "us-east must ship us users to us-west only and global users everywhere else, got ${jsonencode(output.replication_peers["us-east"])}."
  }

  assert {
    condition     = output.replication_peers["ch-zurich"] == { ch = [], global = ["us-east", "us-west", "eu-west"] }
    error_message = "A jurisdiction with one region has no peers for its own users, got ${jsonencode(output.replication_peers["ch-zurich"])}."
  }

  assert {
    condition     = output.allowed_regions == { us = ["us-east", "us-west"], eu = ["eu-west"], ch = ["ch-zurich"], global = ["us-east", "us-west", "eu-west", "ch-zurich"] }
    error_message = "Allowed regions per residency are wrong: ${jsonencode(output.allowed_regions)}."
  }
}

run "no_global_residency_means_no_cross_jurisdiction_peers" {
  command = plan

  variables {
    residencies = ["us", "eu", "ch"]
  }

  assert {
    condition     = jsonencode(output.peer_regions) == jsonencode({ us-east = ["us-west"], us-west = ["us-east"], eu-west = [], ch-zurich = [] })
    error_message = "Without global users no region may talk to another jurisdiction, got ${jsonencode(output.peer_regions)}."
  }

  assert {
    condition     = !contains(keys(output.allowed_regions), "global")
    error_message = "global was not offered, so it must not appear in allowed_regions."
  }
}

run "regions_only_hold_residencies_they_may" {
  command = plan

  variables {
    residencies = ["eu"]
  }

  assert {
    condition     = output.replication_peers["us-east"] == {} && output.replication_peers["eu-west"] == { eu = [] }
    error_message = "A region must list only residencies whose users it may hold, got ${jsonencode(output.replication_peers)}."
  }

  assert {
    condition     = length(output.regions["eu-west"].peers) == 0
    error_message = "eu-west has no peer when only eu is offered and it is the only eu region."
  }
}
