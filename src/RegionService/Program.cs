using Geo.RegionService;
using Geo.ServiceDefaults;
using Geo.ServiceDefaults.Auth;
using Geo.ServiceDefaults.Problems;

var builder = GeoWebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddGeoAuthentication();
builder.AddRegionApi();

var app = builder.Build();
app.UseGeoProblemDetails();
app.UseGeoAuthentication();
app.MapDefaultEndpoints();
app.MapRegionApi();
app.Run();

/// <summary>Entry point; public so integration tests can reference the assembly.</summary>
public partial class Program;
