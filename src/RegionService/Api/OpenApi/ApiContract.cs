using System.Text.Json.Nodes;
using Geo.ServiceDefaults.Auth;
using Geo.RegionService.Users;
using Geo.ServiceDefaults.Problems;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Geo.RegionService.Api.OpenApi;

/// <summary>
/// The contract of every operation beyond what the endpoints declare: the problem types each status can carry, the
/// request and response headers, and examples. One table, read by the endpoint mapping (statuses) and by the document
/// transformers (descriptions, headers, examples); docs/api.md says the same in prose.
/// </summary>
internal static class ApiContract
{
    public const string CreateUser = "createUser";
    public const string GetUser = "getUser";
    public const string EraseUser = "eraseUser";
    public const string PutDocument = "putDocument";
    public const string GetDocument = "getDocument";
    public const string DeleteDocument = "deleteDocument";
    public const string ListDocuments = "listDocuments";
    public const string IncrementCounter = "incrementCounter";
    public const string GetCounter = "getCounter";

    private const string BearerScheme = "bearer";

    private static readonly string[] Body = ["malformed-json", "invalid-utf8", "invalid-string", "number-out-of-range"];
    private static readonly (int Status, string[] Types) Unavailable = (503, ["directory-unavailable", "shard-map-unavailable", "shard-moving", "dependency-unavailable", "overloaded"]);
    private static readonly (int Status, string[] Types) Misdirected = (421, ["region-not-allowed"]);
    private static readonly (int Status, string[] Types) NoUser = (404, ["user-not-found"]);
    private static readonly (int Status, string[] Types) TooMany = (429, ["rate-limited"]);
    private static readonly (int Status, string[] Types) Timeout = (504, ["request-timeout"]);
    private static readonly (int Status, string[] Types) Idempotency409 = (409, ["idempotency-key-in-flight"]);
    private static readonly (int Status, string[] Types) Idempotency422 = (422, ["idempotency-key-reused"]);

    // Every call needs a bearer token (docs/security.md): refused by the edge or the API before anything else is read.
    private static readonly (int Status, string[] Types)[] Access =
    [
        (401, ["unauthenticated", "invalid-token"]),
        (403, ["insufficient-scope", "other-user", "user-token-not-allowed", "jurisdiction-not-allowed", "forbidden"]),
    ];

    /// <summary>The scope a service token needs for each operation (a user token needs none for its own user, but erasing needs geo.erase).</summary>
    public static readonly IReadOnlyDictionary<string, string> Scopes = new Dictionary<string, string>
    {
        [CreateUser] = GeoScopes.UsersCreate,
        [GetUser] = GeoScopes.Read,
        [EraseUser] = GeoScopes.Erase,
        [PutDocument] = GeoScopes.Write,
        [GetDocument] = GeoScopes.Read,
        [DeleteDocument] = GeoScopes.Write,
        [ListDocuments] = GeoScopes.Read,
        [IncrementCounter] = GeoScopes.Write,
        [GetCounter] = GeoScopes.Read,
    };

    /// <summary>Every non-2xx status of each operation with the problem types it can carry.</summary>
    public static readonly IReadOnlyDictionary<string, (int Status, string[] Types)[]> Problems = new Dictionary<string, (int Status, string[] Types)[]>
    {
        [CreateUser] = [(400, [.. Body, "invalid-request", "unknown-residency", "home-region-not-allowed"]), (413, ["body-too-large"]), (415, ["unsupported-media-type"]), Misdirected, Idempotency422, TooMany, Unavailable, Timeout],
        [GetUser] = [NoUser, Misdirected, TooMany, Unavailable, Timeout],
        [EraseUser] = [(400, ["invalid-request"]), NoUser, Idempotency409, Misdirected, Idempotency422, TooMany, Unavailable, Timeout],
        [PutDocument] = [(400, [.. Body, "invalid-name", "invalid-request"]), NoUser, Idempotency409, (412, ["precondition-failed"]), (413, ["body-too-large"]), (415, ["unsupported-media-type"]), Misdirected, Idempotency422, TooMany, Unavailable, Timeout],
        [GetDocument] = [(400, ["invalid-name"]), (404, ["user-not-found", "document-not-found"]), Misdirected, TooMany, Unavailable, Timeout],
        [DeleteDocument] = [(400, ["invalid-name", "invalid-request"]), (404, ["user-not-found", "document-not-found"]), Idempotency409, (412, ["precondition-failed"]), Misdirected, Idempotency422, TooMany, Unavailable, Timeout],
        [ListDocuments] = [(400, ["invalid-name", "invalid-request"]), NoUser, Misdirected, TooMany, Unavailable, Timeout],
        [IncrementCounter] = [(400, [.. Body, "invalid-name", "invalid-request"]), NoUser, Idempotency409, (413, ["body-too-large"]), (415, ["unsupported-media-type"]), Misdirected, (422, ["idempotency-key-reused", "counter-overflow"]), TooMany, Unavailable, Timeout],
        [GetCounter] = [(400, ["invalid-name"]), NoUser, Misdirected, TooMany, Unavailable, Timeout],
    }.ToDictionary(o => o.Key, o => o.Value.Concat(Access).OrderBy(p => p.Status).ToArray());

    private static readonly HashSet<string> Writes = [CreateUser, EraseUser, PutDocument, DeleteDocument, IncrementCounter];
    private static readonly HashSet<string> Conditional = [PutDocument, DeleteDocument];

    /// <summary>Adds the table's statuses as problem responses of an endpoint.</summary>
    public static RouteHandlerBuilder WithContract(this RouteHandlerBuilder endpoint, string operationId, string summary)
    {
        endpoint.WithName(operationId).WithSummary(summary).WithTags(operationId.Contains("Counter", StringComparison.Ordinal) ? "Counters"
            : operationId.Contains("Document", StringComparison.Ordinal) ? "Documents" : "Users");
        foreach (var (status, _) in Problems[operationId])
        {
            endpoint.ProducesProblem(status);
        }

        return endpoint;
    }

    /// <summary>Registers the document: info, then per operation the problem types, headers, parameters and examples.</summary>
    public static void Configure(OpenApiOptions options)
    {
        options.OpenApiVersion = OpenApiSpecVersion.OpenApi3_1;

        // A document body is any JSON value: inline `{}`, not a component named JsonElement that generators take for an object.
        options.CreateSchemaReferenceId = type => type.Type == typeof(System.Text.Json.JsonElement) ? null : OpenApiOptions.CreateDefaultSchemaReferenceId(type);
        options.AddSchemaTransformer((schema, context, _) =>
        {
            TellTheTruth(schema, context.JsonTypeInfo.Type);
            return Task.CompletedTask;
        });
        options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "Geo API",
                Version = "v1",
                Description = "User data (documents and counters) held active-active in every region a user's residency allows. "
                    + "Errors are RFC 9457 problem details (application/problem+json) whose `type` is a stable `urn:geo:problem:<slug>`. "
                    + "The contract in prose: docs/api.md in the repository.",
            };
            Secure(document);
            return Task.CompletedTask;
        });
        options.AddOperationTransformer((operation, context, _) =>
        {
            if (operation.OperationId is { } id && Problems.TryGetValue(id, out var problems))
            {
                Describe(operation, id, problems);
            }

            return Task.CompletedTask;
        });
    }

    private static void Describe(OpenApiOperation operation, string id, (int Status, string[] Types)[] problems)
    {
        operation.Parameters ??= [];
        foreach (var parameter in operation.Parameters.OfType<OpenApiParameter>())
        {
            switch (parameter.Name)
            {
                case "userId":
                    parameter.Description = "The user's id as issued at creation: a lowercase UUID (any other spelling is 404).";
                    parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$" };
                    parameter.Example = JsonValue.Create("0190f5f4-5a1e-7cc4-9b8e-2f1f3c7d9a10");
                    break;
                case "collection" or "name":
                    parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Pattern = "^[a-z0-9_-]{1,64}$" };
                    parameter.Example = JsonValue.Create(parameter.Name == "name" ? "visits" : "notes");
                    break;
                case "key":
                    parameter.Description = "1-256 characters without control characters; '/' is sent as %2F.";
                    parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = RequestRules.MaxKeyLength };
                    parameter.Example = JsonValue.Create("hello");
                    break;
                case "limit":
                    parameter.Description = "Page size (default 100). A page also ends early, with `next` set, once its bodies reach the byte budget.";
                    parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "1", Maximum = "1000", Default = JsonValue.Create(100) };
                    break;
                case "after":
                    parameter.Description = "The `next` of the previous page; absent for the first page.";
                    parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = RequestRules.MaxKeyLength };
                    break;
            }
        }

        if (Writes.Contains(id))
        {
            operation.Parameters.Add(Header("Idempotency-Key",
                "1-256 printable ASCII characters (a UUID). A retry with the same key and request replays the stored response "
                + "(Idempotent-Replayed: true); the same key with another request is 422; while the first is running, 409.",
                new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = Idempotency.IdempotencyKey.MaxLength, Pattern = "^[ -~]+$" }));
        }

        if (Conditional.Contains(id))
        {
            operation.Parameters.Add(Header("If-Match",
                "`*` (a live document must exist) or entity tags from ETag; a tag this service never issued, or a weak one, matches nothing (412).",
                new OpenApiSchema { Type = JsonSchemaType.String }));
            operation.Parameters.Add(Header("If-None-Match", "`*` (create only: no live document may exist) or entity tags that must not match (412).",
                new OpenApiSchema { Type = JsonSchemaType.String }));
        }

        operation.Responses ??= [];
        foreach (var (code, response) in operation.Responses)
        {
            if (response is not OpenApiResponse r)
            {
                continue;
            }

            r.Headers ??= new Dictionary<string, IOpenApiHeader>();
            r.Headers[Contracts.GeoHeaders.Region] = StringHeader("The region that answered.");
            if (code != "503" && code != "429")
            {
                r.Headers[Contracts.GeoHeaders.HomeRegion] = StringHeader("The user's home region (when the user is known).");
                r.Headers[Contracts.GeoHeaders.Failover] = StringHeader("`true` when a region other than the home region answered.");
            }

            if (code is "200" or "201" && id is PutDocument or GetDocument)
            {
                r.Headers["ETag"] = StringHeader("The document's version as a quoted entity tag, e.g. \"0190f5f4a1b2c3d4-eu-west\".");
            }

            if (code is "503" or "429")
            {
                r.Headers["Retry-After"] = new OpenApiHeader { Description = "Seconds to wait before retrying.", Schema = new OpenApiSchema { Type = JsonSchemaType.Integer } };
            }

            if (Writes.Contains(id) && code.StartsWith('2'))
            {
                r.Headers["Idempotent-Replayed"] = StringHeader("`true` when this is the stored response of an earlier request with the same Idempotency-Key.");
            }

            if (int.TryParse(code, out var status) && problems.FirstOrDefault(p => p.Status == status).Types is { } types)
            {
                r.Description = $"Problem types: {string.Join(", ", types.Select(t => GeoProblems.TypePrefix + t))}.";
                if (r.Content?.TryGetValue("application/problem+json", out var media) == true && media is OpenApiMediaType m)
                {
                    m.Example = new JsonObject
                    {
                        ["type"] = GeoProblems.TypePrefix + types[0],
                        ["title"] = types[0].Replace('-', ' '),
                        ["status"] = status,
                        ["detail"] = "What went wrong, for a human; switch on `type`.",
                    };
                }

                r.Extensions ??= new Dictionary<string, IOpenApiExtension>();
                r.Extensions["x-geo-problem-types"] = new JsonNodeExtension(new JsonArray([.. types.Select(t => JsonValue.Create(GeoProblems.TypePrefix + t))]));
            }
        }
    }

    /// <summary>
    /// Where the generated schema says more than the API accepts (found by generating a client from it, see
    /// GeneratedClientTests): numbers are read as JSON numbers only (the generator adds `string` and a pattern because
    /// the framework's serializer could read them from strings); `residency` is required and `homeRegion` optional;
    /// a document body is any JSON value.
    /// </summary>
    private static void TellTheTruth(OpenApiSchema schema, Type type)
    {
        if (schema.Type is { } kind && kind.HasFlag(JsonSchemaType.String) && (kind.HasFlag(JsonSchemaType.Integer) || kind.HasFlag(JsonSchemaType.Number)))
        {
            schema.Type = kind & ~JsonSchemaType.String;
            schema.Pattern = null;
        }

        if (type == typeof(System.Text.Json.JsonElement))
        {
            schema.Description = "Any JSON value (object, array, string, number, true, false or null) of at most 64 KiB.";
        }
        else if (type == typeof(CreateUserRequest) && schema.Properties is { } properties)
        {
            schema.Required = new HashSet<string>(StringComparer.Ordinal) { "residency" };
            if (properties.TryGetValue("residency", out var residency) && residency is OpenApiSchema r)
            {
                r.Type = JsonSchemaType.String;
                r.MinLength = 1;
                r.Description = "A jurisdiction of the deployment (e.g. `eu`, `us`) or `global`.";
            }

            if (properties.TryGetValue("homeRegion", out var home) && home is OpenApiSchema h)
            {
                h.Description = "Optional: a region the residency allows; absent or null, the edge's region if allowed, else the nearest allowed.";
            }
        }
    }

    /// <summary>The bearer scheme, and on every operation the scope a service token needs for it.</summary>
    private static void Secure(OpenApiDocument document)
    {
        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
        document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
        {
            Type = SecuritySchemeType.Http,
            Scheme = "bearer",
            BearerFormat = "JWT",
            Description = "A JWT from a trusted issuer (docs/security.md). A service token carries scopes (`scope`, or Entra ID's `scp`/`roles`): "
                + string.Join(", ", GeoScopes.All.Select(s => $"`{s}`")) + ", and the jurisdictions it may act in (`geo_jurisdictions`); "
                + "each operation lists the scope it needs. A user token (`geo_user`) may read and write its own user only. "
                + "Missing or invalid: 401; not allowed: 403.",
        };
        foreach (var operation in (document.Paths ?? []).Values.SelectMany(p => p.Operations?.Values ?? Enumerable.Empty<OpenApiOperation>()))
        {
            if (operation.OperationId is { } id && Scopes.TryGetValue(id, out var scope))
            {
                operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [scope] }];
            }
        }
    }

    private static OpenApiParameter Header(string name, string description, OpenApiSchema schema)
        => new() { Name = name, In = ParameterLocation.Header, Required = false, Description = description, Schema = schema };

    private static OpenApiHeader StringHeader(string description) => new() { Description = description, Schema = new OpenApiSchema { Type = JsonSchemaType.String } };
}
