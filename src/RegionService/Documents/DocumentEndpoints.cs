using Geo.RegionService.Admission;
using Geo.RegionService.Api;
using Geo.RegionService.Api.OpenApi;
using Geo.RegionService.Idempotency;
using Geo.RegionService.Sharding;
using Geo.Storage;
using Geo.Storage.Caching;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Geo.RegionService.Documents;

/// <summary>Put, read, delete and list a user's documents (docs/api.md, "Documents").</summary>
internal sealed class DocumentEndpoints(IOptions<RegionServiceOptions> options, ShardRouter router, DocumentCache cache, IdempotentWrites writes)
{
    private readonly RegionServiceOptions _options = options.Value;

    /// <summary>Maps the document operations on the <c>/v1/users</c> group; the checks run in this order, then admission.</summary>
    public static void Map(IEndpointRouteBuilder users)
    {
        var api = users.ServiceProvider.GetRequiredService<DocumentEndpoints>();
        users.MapPut("/{userId}/docs/{collection}/{key}", (HttpContext http, string userId, string collection, string key, CancellationToken ct) =>
            api.PutAsync(http, userId, collection, DocumentChecks.Unescape(key), ct))
            .WithContract(ApiContract.PutDocument, "Create or replace a document (any JSON value)")
            .Accepts<System.Text.Json.JsonElement>("application/json")
            .Produces<DocumentWritten>(StatusCodes.Status201Created).Produces<DocumentWritten>() // a stored response: see StoredResult
            .Check(DocumentChecks.Address).Check(RequestChecks.Preconditions).Check(RequestChecks.JsonBody).Admit();
        users.MapGet("/{userId}/docs/{collection}/{key}", (HttpContext http, string userId, string collection, string key, CancellationToken ct) =>
            api.GetAsync(http, userId, collection, DocumentChecks.Unescape(key), ct))
            .WithContract(ApiContract.GetDocument, "Read a document; its version is the ETag header")
            .Produces<System.Text.Json.JsonElement>() // the stored body as it was written
            .Check(DocumentChecks.Address).Admit();
        users.MapDelete("/{userId}/docs/{collection}/{key}", (HttpContext http, string userId, string collection, string key, CancellationToken ct) =>
            api.DeleteAsync(http, userId, collection, DocumentChecks.Unescape(key), ct))
            .WithContract(ApiContract.DeleteDocument, "Delete a document")
            .Produces(StatusCodes.Status204NoContent) // a stored response: see StoredResult
            .Check(DocumentChecks.Address).Check(RequestChecks.Preconditions).Admit();
        users.MapGet("/{userId}/docs/{collection}", (HttpContext http, string userId, string collection, string? limit, string? after, CancellationToken ct) =>
            api.ListAsync(http, userId, collection, ct))
            .WithContract(ApiContract.ListDocuments, "List a collection in key order, a page at a time")
            .Check(http => DocumentChecks.Page(http, api._options.MaxPageSize)).Admit();
    }

    public async Task<Results<StoredResult, ProblemHttpResult>> PutAsync(HttpContext http, string userId, string collection, string key, CancellationToken ct)
    {
        var condition = RequestCondition.Of(http);
        var body = RequestJson.Of(http);
        return await writes.WriteAsync<DocumentWriteResult>(http, AdmittedUser.Of(http), body,
            (store, idem) => store.PutDocumentAsync(userId, collection, key, body, condition, idem, ct),
            result => result.Outcome switch
            {
                DocumentWriteOutcome.PreconditionFailed => StoredResult.Problem(RegionProblems.PreconditionFailed(result.Version?.ToETag())),
                _ => StoredResult.Json(
                    result.Outcome == DocumentWriteOutcome.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK,
                    new DocumentWritten(collection, key, result.Version!.Value.ToToken()),
                    new Dictionary<string, string> { ["ETag"] = result.Version!.Value.ToETag() }),
            },
            result => InvalidateAsync(result, userId, collection, key, ct),
            ct);
    }

    public async Task<Results<ContentHttpResult, ProblemHttpResult>> GetAsync(HttpContext http, string userId, string collection, string key, CancellationToken ct)
    {
        var (kind, document) = await cache.GetAsync(userId, collection, key, ct);
        if (kind == CachedKind.Miss)
        {
            var store = router.ForRead(userId);
            if (store is null)
            {
                return RegionProblems.NoShardMap();
            }

            document = await store.GetDocumentAsync(userId, collection, key, ct);
            await cache.PopulateAsync(userId, collection, key, document, ct);
        }

        if (document is null)
        {
            return RegionProblems.DocumentNotFound(collection, key);
        }

        http.Response.Headers.ETag = document.Version.ToETag();
        return TypedResults.Text(document.Body, "application/json; charset=utf-8");
    }

    public async Task<Results<StoredResult, ProblemHttpResult>> DeleteAsync(HttpContext http, string userId, string collection, string key, CancellationToken ct)
    {
        var condition = RequestCondition.Of(http);
        return await writes.WriteAsync<DocumentWriteResult>(http, AdmittedUser.Of(http), body: null,
            (store, idem) => store.DeleteDocumentAsync(userId, collection, key, condition, idem, ct),
            result => result.Outcome switch
            {
                DocumentWriteOutcome.PreconditionFailed => StoredResult.Problem(RegionProblems.PreconditionFailed(result.Version?.ToETag())),
                DocumentWriteOutcome.NotFound => StoredResult.Problem(RegionProblems.DocumentNotFound(collection, key)),
                _ => StoredResult.Empty(StatusCodes.Status204NoContent),
            },
            result => InvalidateAsync(result, userId, collection, key, ct),
            ct);
    }

    public async Task<Results<Ok<DocumentListView>, ProblemHttpResult>> ListAsync(HttpContext http, string userId, string collection, CancellationToken ct)
    {
        var store = router.ForRead(userId);
        if (store is null)
        {
            return RegionProblems.NoShardMap();
        }

        var (take, after) = DocumentPage.Of(http);
        var page = await store.ListDocumentsAsync(userId, collection, take, after, _options.MaxPageBytes, ct);
        return TypedResults.Ok(new DocumentListView(
            page.Items.Select(d => new DocumentItemView(d.Key, d.Version.ToToken(), System.Text.Json.JsonDocument.Parse(d.Body).RootElement)).ToArray(),
            page.Next));
    }

    private Task InvalidateAsync(DocumentWriteResult result, string userId, string collection, string key, CancellationToken ct)
        => result.Version is { } v && result.Outcome != DocumentWriteOutcome.PreconditionFailed
            ? cache.InvalidateAsync(userId, collection, key, v, ct)
            : Task.CompletedTask;
}
