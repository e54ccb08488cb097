using Geo.Replicator;
using Geo.ServiceDefaults;

var builder = GeoWebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddReplicator();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapReplicator();
app.Run();

/// <summary>Entry point; public so integration tests can reference the assembly.</summary>
public partial class Program;
