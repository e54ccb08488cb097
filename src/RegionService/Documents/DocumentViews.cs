using System.Text.Json;

namespace Geo.RegionService.Documents;

internal sealed record DocumentWritten(string Collection, string Key, string Version);

internal sealed record DocumentItemView(string Key, string Version, JsonElement Body);

internal sealed record DocumentListView(IReadOnlyList<DocumentItemView> Items, string? Next);
