using Npgsql;

namespace Geo.Storage;

/// <summary>The one way a Geo process opens a shard database: a named data source tuned for <see cref="ShardStore"/>.</summary>
public static class ShardDataSource
{
    /// <summary>
    /// A data source for one shard. Statements are prepared once per physical connection (the write path's are the same
    /// every time). Connections are not reset when they return to the pool: the store keeps no session state (its
    /// settings are <c>set_config(…, true)</c> and its advisory locks are transaction-scoped), and the reset — seven
    /// utility statements sent with the next command — cost every write as much parsing as the write itself.
    /// </summary>
    /// <param name="connectionString">The shard's connection string from the topology.</param>
    /// <param name="shardId">The shard id (the data source's name, in metrics and traces).</param>
    /// <param name="applicationName">Shown in <c>pg_stat_activity</c> unless the connection string names one.</param>
    /// <param name="commandTimeoutSeconds">At most this per command (0: no limit, for copies that take as long as they take).</param>
    /// <param name="connectTimeoutSeconds">At most this to open a connection (a short-lived process such as geoctl needs more than a service).</param>
    public static NpgsqlDataSource Create(string connectionString, string shardId, string applicationName, int commandTimeoutSeconds, int connectTimeoutSeconds = 5)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString) { Name = shardId };
        var settings = builder.ConnectionStringBuilder;
        if (settings.MaxAutoPrepare == 0)
        {
            settings.MaxAutoPrepare = 32;
        }

        settings.NoResetOnClose = true;
        settings.ApplicationName ??= applicationName;
        settings.Timeout = Math.Min(settings.Timeout, connectTimeoutSeconds);
        settings.CommandTimeout = commandTimeoutSeconds == 0 ? 0 : Math.Min(settings.CommandTimeout, commandTimeoutSeconds);
        return builder.Build();
    }
}
