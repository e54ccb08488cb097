using Geo.Testing;

[assembly: AssemblyFixture(typeof(PostgresServer))]
