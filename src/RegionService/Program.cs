using Geo.RegionService;
using Geo.ServiceDefaults;
using Geo.ServiceDefaults.Problems;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddRegionApi();

var app = builder.Build();
app.UseGeoProblemDetails();
app.MapDefaultEndpoints();
app.MapRegionApi();
app.Run();

/// <summary>Entry point; public so integration tests can reference the assembly.</summary>
public partial class Program;
