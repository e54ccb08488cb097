using Geo.ServiceDefaults;
using Geo.ShardDirectory;

var builder = GeoWebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddShardDirectory();

var app = builder.Build();
app.MapShardDirectory();
app.MapDefaultEndpoints();
app.Run();
