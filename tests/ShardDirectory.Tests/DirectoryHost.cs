using System.Collections.Concurrent;
using Geo.Contracts.Directory;
using Geo.ServiceDefaults;
using Geo.Testing.Security;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using DirectoryApi = Geo.Contracts.Directory.Directory;

namespace Geo.ShardDirectory.Tests;

/// <summary>
/// A real ShardDirectory (the same wiring as Program.cs) on Kestrel over loopback, talking to a real database; a gRPC
/// client over a real socket. Records every log entry at Error or above so tests can insist there were none.
/// </summary>
internal sealed class DirectoryHost : IAsyncDisposable
{
    public static readonly string TopologyPath = Path.Combine(AppContext.BaseDirectory, "Data", "topology.local.json");

    private readonly WebApplication _app;
    private readonly ErrorLog _errors;

    private DirectoryHost(WebApplication app, ErrorLog errors, Uri address)
    {
        _app = app;
        _errors = errors;
        Address = address;
        Channel = DirectoryClient.CreateChannel(address, TestPki.Harness.ClientOptions());
        Client = new DirectoryApi.DirectoryClient(Channel);
    }

    public Uri Address { get; }

    public GrpcChannel Channel { get; }

    public DirectoryApi.DirectoryClient Client { get; }

    public IServiceProvider Services => _app.Services;

    public IReadOnlyCollection<string> Errors => _errors.Entries;

    /// <summary>Starts a directory of <paramref name="region"/> on <paramref name="port"/> (0: any free port).</summary>
    public static async Task<DirectoryHost> StartAsync(string database, string region = "eu-west", int port = 0, IDictionary<string, string?>? settings = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        var configuration = new Dictionary<string, string?>
        {
            ["urls"] = $"https://127.0.0.1:{port}",
            ["Geo:Topology"] = TopologyPath,
            ["Geo:Region"] = region,
            ["Geo:DirectoryDatabase"] = database,
            ["Directory:HeartbeatInterval"] = "00:00:01",
            ["Directory:MapPollInterval"] = "00:00:01",
        };
        foreach (var (key, value) in TestPki.ServiceSettings(region, Core.Tls.PeerRoles.Directory))
        {
            configuration[key] = value;
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            configuration[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(configuration);
        builder.AddServiceDefaults();
        var errors = new ErrorLog();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(errors);
        builder.AddShardDirectory();
        var app = builder.Build();
        app.MapShardDirectory();
        app.MapDefaultEndpoints();
        await app.StartAsync(TestContext.Current.CancellationToken);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new DirectoryHost(app, errors, new Uri(bound));
    }

    /// <summary>Stops the server (watch streams end) and releases its port.</summary>
    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }

    /// <summary>Fails when anything but <paramref name="allowedCategories"/> logged at Error or above.</summary>
    public void AssertNoErrors(params string[] allowedCategories)
    {
        var unexpected = _errors.Entries.Where(e => !allowedCategories.Any(c => e.StartsWith(c + ":", StringComparison.Ordinal))).ToArray();
        Assert.True(unexpected.Length == 0, "Errors were logged:\n" + string.Join("\n", unexpected));
    }

    private sealed class ErrorLog : ILoggerProvider
    {
        public ConcurrentQueue<string> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Category(this, categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class Category(ErrorLog log, string name) : ILogger
    {

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                log.Entries.Enqueue($"{name}: {logLevel} {eventId}: {formatter(state, exception)} {exception}");
            }
        }
    }
}
