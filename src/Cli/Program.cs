using System.CommandLine;

var root = new RootCommand("geoctl: administer a Geo deployment (shards, replication, users, capacity).");
return root.Parse(args).Invoke();
