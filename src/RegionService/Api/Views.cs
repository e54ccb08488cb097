using System.Text.Json;

namespace Geo.RegionService.Api;

internal sealed record CreateUserRequest(string? Residency, string? HomeRegion);

internal sealed record UserView(string UserId, string Residency, string HomeRegion, IReadOnlyList<string> Regions);

internal sealed record DocumentWritten(string Collection, string Key, string Version);

internal sealed record DocumentItemView(string Key, string Version, JsonElement Body);

internal sealed record DocumentListView(IReadOnlyList<DocumentItemView> Items, string? Next);

internal sealed record CounterView(long Value);

/// <summary>The body of a counter increment: a signed 64-bit amount (not <c>long.MinValue</c>).</summary>
internal sealed record CounterIncrement(long Delta);
