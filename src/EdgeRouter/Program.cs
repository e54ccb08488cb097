using Geo.EdgeRouter;
using Geo.EdgeRouter.Headers;
using Geo.ServiceDefaults;
using Geo.ServiceDefaults.Auth;
using Geo.ServiceDefaults.Problems;

var builder = GeoWebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGeoAuthentication();
builder.AddEdgeRouter();

var app = builder.Build();
app.UseGeoProblemDetails();
app.UseEdgeHeaders();
app.UseEdgeForwarding();
app.UseGeoAuthentication();
app.MapDefaultEndpoints();
app.MapEdgeRouter();
app.Run();

/// <summary>Entry point; public so integration tests can reference the assembly.</summary>
public partial class Program;
