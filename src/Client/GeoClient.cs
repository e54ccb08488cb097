using System.Net;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Geo.Client;

/// <summary>
/// Typed calls of the Geo API. Every write carries an <c>Idempotency-Key</c> (the same one on each retry), so a write
/// retried after a lost response has one effect; failures are <see cref="GeoProblemException"/>s. Get one from
/// <c>services.AddGeoClient(...)</c>.
/// </summary>
public sealed class GeoClient(HttpClient http)
{
    private static readonly JsonSerializerOptions Json = JsonSerializerOptions.Web;

    // ---- users ------------------------------------------------------------------------------------------------

    /// <summary>Creates a user with a residency (e.g. <c>eu</c>) and, optionally, a home region.</summary>
    public async Task<GeoUser> CreateUserAsync(string residency, string? homeRegion = null, CancellationToken ct = default)
    {
        using var response = await SendAsync(HttpMethod.Post, "v1/users", JsonContent.Create(new { residency, homeRegion }, options: Json), ct: ct).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<GeoUser>(Json, ct).ConfigureAwait(false))!;
    }

    /// <summary>Reads a user's placement; <see cref="GeoNotFoundException"/> when there is no such user.</summary>
    public async Task<GeoUser> GetUserAsync(string userId, CancellationToken ct = default)
    {
        using var response = await SendAsync(HttpMethod.Get, UserPath(userId), ct: ct).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<GeoUser>(Json, ct).ConfigureAwait(false))!;
    }

    /// <summary>
    /// Erases a user and all their data, in every region. Idempotent: a user that is already erased (or never existed)
    /// answers 404, which this call takes as done, so a retry after a lost 204 does not fail.
    /// </summary>
    public async Task EraseUserAsync(string userId, CancellationToken ct = default)
    {
        try
        {
            using var _ = await SendAsync(HttpMethod.Delete, UserPath(userId), ct: ct).ConfigureAwait(false);
        }
        catch (GeoNotFoundException)
        {
            // Erased already: the state the caller asked for.
        }
    }

    // ---- documents --------------------------------------------------------------------------------------------

    /// <summary>
    /// Creates or replaces a document. <paramref name="ifMatch"/>: an ETag (write only over that version) or <c>*</c>
    /// (only over a live document); <paramref name="createOnly"/> sends <c>If-None-Match: *</c>. A precondition that
    /// does not hold throws <see cref="GeoPreconditionFailedException"/>.
    /// </summary>
    public async Task<DocumentWrite> PutDocumentAsync<T>(string userId, string collection, string key, T value, string? ifMatch = null, bool createOnly = false, CancellationToken ct = default)
    {
        using var response = await SendAsync(HttpMethod.Put, DocumentPath(userId, collection, key), JsonContent.Create(value, options: Json),
            request => Conditions(request, ifMatch, createOnly), ct).ConfigureAwait(false);
        var body = (await response.Content.ReadFromJsonAsync<DocumentWrittenBody>(Json, ct).ConfigureAwait(false))!;
        return new DocumentWrite(body.Version, response.Headers.ETag?.Tag ?? $"\"{body.Version}\"", response.StatusCode == HttpStatusCode.Created);
    }

    /// <summary>Reads a document, or null when it does not exist (a missing user still throws <see cref="GeoNotFoundException"/>).</summary>
    public async Task<GeoDocument<T>?> GetDocumentAsync<T>(string userId, string collection, string key, CancellationToken ct = default)
    {
        try
        {
            using var response = await SendAsync(HttpMethod.Get, DocumentPath(userId, collection, key), ct: ct).ConfigureAwait(false);
            var value = (await response.Content.ReadFromJsonAsync<T>(Json, ct).ConfigureAwait(false))!;
            return new GeoDocument<T>(key, value, response.Headers.ETag?.Tag ?? string.Empty);
        }
        catch (GeoNotFoundException e) when (e.Slug == "document-not-found")
        {
            return null;
        }
    }

    /// <summary>Deletes a document (optionally only at the version <paramref name="ifMatch"/>); false when there was none.</summary>
    public async Task<bool> DeleteDocumentAsync(string userId, string collection, string key, string? ifMatch = null, CancellationToken ct = default)
    {
        try
        {
            using var _ = await SendAsync(HttpMethod.Delete, DocumentPath(userId, collection, key), configure: request => Conditions(request, ifMatch, false), ct: ct).ConfigureAwait(false);
            return true;
        }
        catch (GeoNotFoundException e) when (e.Slug == "document-not-found")
        {
            return false;
        }
    }

    /// <summary>Every document of a collection in key order, fetched <paramref name="pageSize"/> at a time as the caller iterates.</summary>
    public async IAsyncEnumerable<GeoDocument<T>> ListDocumentsAsync<T>(string userId, string collection, int pageSize = 100, [EnumeratorCancellation] CancellationToken ct = default)
    {
        string? after = null;
        do
        {
            var path = $"{UserPath(userId)}/docs/{Uri.EscapeDataString(collection)}?limit={pageSize}" + (after is null ? "" : $"&after={Uri.EscapeDataString(after)}");
            ListPage page;
            using (var response = await SendAsync(HttpMethod.Get, path, ct: ct).ConfigureAwait(false))
            {
                page = (await response.Content.ReadFromJsonAsync<ListPage>(Json, ct).ConfigureAwait(false))!;
            }

            foreach (var item in page.Items)
            {
                yield return new GeoDocument<T>(item.Key, item.Body.Deserialize<T>(Json)!, $"\"{item.Version}\"");
            }

            after = page.Next;
        }
        while (after is not null);
    }

    // ---- counters ---------------------------------------------------------------------------------------------

    /// <summary>Adds <paramref name="delta"/> (negative to subtract) and returns the new value; an overflow throws <see cref="GeoInvalidRequestException"/> (<c>counter-overflow</c>).</summary>
    public async Task<long> IncrementCounterAsync(string userId, string name, long delta = 1, CancellationToken ct = default)
    {
        using var response = await SendAsync(HttpMethod.Post, $"{UserPath(userId)}/counters/{Uri.EscapeDataString(name)}", JsonContent.Create(new { delta }, options: Json), ct: ct).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<CounterBody>(Json, ct).ConfigureAwait(false))!.Value;
    }

    /// <summary>Reads a counter (0 when never incremented).</summary>
    public async Task<long> GetCounterAsync(string userId, string name, CancellationToken ct = default)
    {
        using var response = await SendAsync(HttpMethod.Get, $"{UserPath(userId)}/counters/{Uri.EscapeDataString(name)}", ct: ct).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<CounterBody>(Json, ct).ConfigureAwait(false))!.Value;
    }

    // ---- plumbing ---------------------------------------------------------------------------------------------

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content = null, Action<HttpRequestMessage>? configure = null, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative)) { Content = content };
        configure?.Invoke(request);
        var response = await http.SendAsync(request, ct).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            ProblemBody? problem = null;
            try
            {
                problem = await response.Content.ReadFromJsonAsync<ProblemBody>(Json, ct).ConfigureAwait(false);
            }
            catch (JsonException)
            {
                // not a problem document; the status says enough
            }

            throw GeoProblemException.Create(response.StatusCode, problem?.Type ?? $"{GeoProblemException.TypePrefix}status-{(int)response.StatusCode}", problem?.Title, problem?.Detail);
        }
    }

    private static void Conditions(HttpRequestMessage request, string? ifMatch, bool createOnly)
    {
        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        if (createOnly)
        {
            request.Headers.TryAddWithoutValidation("If-None-Match", "*");
        }
    }

    private static string UserPath(string userId) => $"v1/users/{Uri.EscapeDataString(userId)}";

    private static string DocumentPath(string userId, string collection, string key)
        => $"{UserPath(userId)}/docs/{Uri.EscapeDataString(collection)}/{Uri.EscapeDataString(key)}";
}
