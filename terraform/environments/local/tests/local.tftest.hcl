# config/topology.local.json is the source of truth; this keeps terraform from drifting away from it.
run "output_equals_checked_in_topology" {
  command = plan

  assert {
    condition     = jsondecode(output.topology_json) == jsondecode(file("${path.module}/../../../config/topology.local.json"))
    error_message = "environments/local renders a topology different from config/topology.local.json: compare `terraform output -raw topology_json | jq .` with the file and fix the module (the file is the source of truth)."
  }
}

run "local_peers_stay_inside_residency" {
  command = plan

  assert {
    condition = output.replication_peers["eu-west"] == {
      eu     = ["eu-central"]
      global = ["us-east", "us-west", "eu-central"]
    }
    error_message = "eu-west must replicate eu users only to eu-central, and global users to every other region."
  }
}
