using Geo.Storage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Geo.RegionService.Api;

/// <summary>
/// The checks of a request that run before admission (<see cref="Admission.AdmissionFilter"/>), as endpoint filters
/// in the order they are added: a malformed name, header or body is answered 4xx before the user is looked up, so a
/// request that is wrong in two ways always gets the same answer. A check that reads something (a body, preconditions)
/// leaves it for the handler in <see cref="HttpContext.Features"/>.
/// </summary>
internal static class RequestChecks
{
    /// <summary>Adds a check; its problem, when it has one, is the response.</summary>
    public static RouteHandlerBuilder Check(this RouteHandlerBuilder endpoint, Func<HttpContext, ProblemHttpResult?> check)
        => endpoint.AddEndpointFilter(async (context, next) => check(context.HttpContext) is { } problem ? problem : await next(context));

    /// <summary>Adds a check that reads the request.</summary>
    public static RouteHandlerBuilder Check(this RouteHandlerBuilder endpoint, Func<HttpContext, ValueTask<ProblemHttpResult?>> check)
        => endpoint.AddEndpointFilter(async (context, next) => await check(context.HttpContext) is { } problem ? problem : await next(context));

    /// <summary>The JSON body (415, 413, 400 as docs/api.md lists them), kept as <see cref="RequestJson"/>.</summary>
    public static async ValueTask<ProblemHttpResult?> JsonBody(HttpContext http)
    {
        var maxBytes = http.RequestServices.GetRequiredService<IOptions<RegionServiceOptions>>().Value.MaxBodyBytes;
        var (json, problem) = await RequestRules.ReadJsonBodyAsync(http.Request, maxBytes, http.RequestAborted);
        if (problem is null)
        {
            http.Features.Set(new RequestJson(json!));
        }

        return problem;
    }

    /// <summary>If-Match and If-None-Match (400 when malformed), kept as <see cref="RequestCondition"/>.</summary>
    public static ProblemHttpResult? Preconditions(HttpContext http)
    {
        var (condition, problem) = RequestRules.ReadPreconditions(http.Request);
        if (problem is null)
        {
            http.Features.Set(new RequestCondition(condition));
        }

        return problem;
    }

    /// <summary>A route value as the handler's parameter binding sees it.</summary>
    public static string Route(HttpContext http, string name) => http.Request.RouteValues[name] as string ?? "";
}

/// <summary>The request's JSON body as read by <see cref="RequestChecks.JsonBody"/>.</summary>
internal sealed record RequestJson(string Text)
{
    public static string Of(HttpContext http) => http.Features.GetRequiredFeature<RequestJson>().Text;
}

/// <summary>The request's write precondition as read by <see cref="RequestChecks.Preconditions"/> (null: none).</summary>
internal sealed record RequestCondition(WriteCondition? Condition)
{
    public static WriteCondition? Of(HttpContext http) => http.Features.GetRequiredFeature<RequestCondition>().Condition;
}
