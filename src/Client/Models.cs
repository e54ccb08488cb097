using System.Text.Json;

namespace Geo.Client;

/// <summary>A user's placement.</summary>
/// <param name="UserId">The id, a lowercase UUID.</param>
/// <param name="Residency">The jurisdiction the user's data may live in, e.g. <c>eu</c>.</param>
/// <param name="HomeRegion">The region that serves the user while it is up.</param>
/// <param name="Regions">Every region the residency allows, in failover order.</param>
public sealed record GeoUser(string UserId, string Residency, string HomeRegion, IReadOnlyList<string> Regions);

/// <summary>What a document write did.</summary>
/// <param name="Version">The new version (bare token).</param>
/// <param name="ETag">The same version as the quoted ETag, for <c>If-Match</c>.</param>
/// <param name="Created">True when no live document existed before.</param>
public sealed record DocumentWrite(string Version, string ETag, bool Created);

/// <summary>A document and its version.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The body.</param>
/// <param name="ETag">The version as the quoted ETag, for <c>If-Match</c>.</param>
public sealed record GeoDocument<T>(string Key, T Value, string ETag);

internal sealed record DocumentWrittenBody(string Collection, string Key, string Version);

internal sealed record ListPage(IReadOnlyList<ListItem> Items, string? Next);

internal sealed record ListItem(string Key, string Version, JsonElement Body);

internal sealed record CounterBody(long Value);

internal sealed record ProblemBody(string? Type, string? Title, string? Detail);
