using System.Net.Http.Headers;
using Microsoft.Extensions.Options;

namespace Geo.Client;

/// <summary>Gives every write one Idempotency-Key before the retry pipeline, so each attempt carries the same key.</summary>
internal sealed class IdempotencyKeyHandler : DelegatingHandler
{
    public const string Header = "Idempotency-Key";

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Method != HttpMethod.Get && request.Method != HttpMethod.Head && !request.Headers.Contains(Header))
        {
            request.Headers.TryAddWithoutValidation(Header, Guid.NewGuid().ToString());
        }

        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>Asks <see cref="GeoClientOptions.AccessToken"/> for a token on every attempt (so a refreshed token is used on a retry).</summary>
internal sealed class BearerTokenHandler(IOptions<GeoClientOptions> options) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (options.Value.AccessToken is { } source && await source(cancellationToken).ConfigureAwait(false) is { Length: > 0 } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }
}
