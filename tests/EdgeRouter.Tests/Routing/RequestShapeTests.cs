using System.Text;
using Geo.EdgeRouter.Health;
using Geo.EdgeRouter.Headers;
using Geo.EdgeRouter.Routing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Geo.EdgeRouter.Tests.Routing;

public sealed class RequestShapeTests
{
    [Theory]
    [InlineData("/v1/users/0193c1a2-7d3e-7abc-9def-0123456789ab", "0193c1a2-7d3e-7abc-9def-0123456789ab")]
    [InlineData("/v1/users/abc/docs/notes/k", "abc")]
    [InlineData("/v1/users/abc/counters/c", "abc")]
    [InlineData("/v1/users", null)]
    [InlineData("/v1/users/", null)]
    [InlineData("/v1/usersx/abc", null)]
    [InlineData("/v2/users/abc", null)]
    public void User_id_is_the_segment_after_users(string path, string? expected)
        => Assert.Equal(expected, RequestShape.UserIdOf(new PathString(path)));

    [Fact]
    public async Task Create_body_is_read_and_left_readable_for_forwarding()
    {
        var request = Request("{\"Residency\":\"eu\",\"homeRegion\":\"eu-central\"}");
        var (shape, problem) = await RequestShape.ReadCreateAsync(request, 1024, TestContext.Current.CancellationToken);
        Assert.Null(problem);
        Assert.Equal(new CreateUserShape("eu", "eu-central"), shape);
        using var reader = new StreamReader(request.Body);
        Assert.Equal("{\"Residency\":\"eu\",\"homeRegion\":\"eu-central\"}", await reader.ReadToEndAsync(TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("{\"residency\":\"eu\",\"pad\":\"" + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + "\"}", "application/json", 413)]
    [InlineData("{\"residency\":", "application/json", 400)]
    [InlineData("{\"homeRegion\":\"eu-west\"}", "application/json", 400)]
    [InlineData("{\"residency\":\"eu\"}", "text/plain", 415)]
    public async Task Bad_create_bodies_are_refused(string body, string contentType, int status)
    {
        var (shape, problem) = await RequestShape.ReadCreateAsync(Request(body, contentType, sendLength: status != 413), 64, TestContext.Current.CancellationToken);
        Assert.Null(shape);
        Assert.Equal(status, problem!.StatusCode);
    }

    [Fact]
    public void Request_ids_are_kept_when_sane_and_replaced_otherwise()
    {
        Assert.Equal("abc-123", EdgeHeaders.RequestIdFor("abc-123", TimeProvider.System));
        Assert.NotEqual("bad id\n", EdgeHeaders.RequestIdFor("bad id\n", TimeProvider.System));
        Assert.Equal(32, EdgeHeaders.RequestIdFor(new string('x', 500), TimeProvider.System).Length);
        Assert.Equal(32, EdgeHeaders.RequestIdFor(null, TimeProvider.System).Length);
    }

    [Theory]
    [InlineData(ForwarderError.None, 200, false)]
    [InlineData(ForwarderError.None, 404, false)]
    [InlineData(ForwarderError.None, 503, false)]
    [InlineData(ForwarderError.None, 500, false)]
    [InlineData(ForwarderError.None, 400, false)]
    [InlineData(ForwarderError.None, 504, true)]
    [InlineData(ForwarderError.None, 502, true)]
    [InlineData(ForwarderError.Request, 502, true)]
    [InlineData(ForwarderError.RequestTimedOut, 504, true)]
    [InlineData(ForwarderError.RequestCanceled, 502, false)]
    [InlineData(ForwarderError.RequestBodyDestination, 502, true)]
    [InlineData(ForwarderError.RequestBodyDestination, 413, false)]
    [InlineData(ForwarderError.ResponseBodyClient, 200, false)]
    public void Passive_health_blames_the_destination_only_for_its_own_failures(ForwarderError error, int status, bool unhealthy)
        => Assert.Equal(unhealthy, DestinationFailurePolicy.IsDestinationFailure(error, status));

    [Fact]
    public void A_503_counts_only_when_the_regional_api_did_not_answer_it()
    {
        Assert.False(DestinationFailurePolicy.IsDestinationFailure(ForwarderError.None, 503, answeredByApi: true));
        Assert.True(DestinationFailurePolicy.IsDestinationFailure(ForwarderError.None, 503, answeredByApi: false));
        Assert.False(DestinationFailurePolicy.IsDestinationFailure(ForwarderError.None, 500, answeredByApi: false));
    }

    private static HttpRequest Request(string body, string contentType = "application/json", bool sendLength = true)
    {
        var context = new DefaultHttpContext();
        var bytes = Encoding.UTF8.GetBytes(body);
        context.Request.Method = "POST";
        context.Request.Path = "/v1/users";
        context.Request.ContentType = contentType;
        context.Request.Body = new MemoryStream(bytes);
        context.Request.ContentLength = sendLength ? bytes.Length : null;
        return context.Request;
    }
}
