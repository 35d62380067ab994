using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// The access table with subscriptions off (the matrix with them on is in the subscription tests): no <c>__ds</c> route
/// carries its own credentials then, so every one needs a read or write token like a stream.
/// </summary>
public sealed class RouteAccessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("GET", "__ds/jwks.json", HttpStatusCode.Unauthorized)]
    [InlineData("HEAD", "__ds/jwks.json", HttpStatusCode.Unauthorized)]
    [InlineData("POST", "__ds/subscriptions/s/callback", HttpStatusCode.Unauthorized)]
    [InlineData("POST", "__ds/subscriptions/s/ack", HttpStatusCode.Unauthorized)]
    [InlineData("POST", "__ds/subscriptions/s/release", HttpStatusCode.Unauthorized)]
    [InlineData("PUT", "__ds/subscriptions/callback", HttpStatusCode.Unauthorized)]
    public async Task Without_subscriptions_no_control_route_carries_its_own_credentials(string method, string path, HttpStatusCode anonymous)
    {
        await using var server = await ServerHarness.StartAsync(o => o.ReadTokens.Add("reader"), cancellationToken: Ct);
        HttpContent? Body() => method is "POST" or "PUT" ? ServerHarness.Body("application/json", "{}") : null;

        using var withoutToken = await server.SendAsync(new HttpMethod(method), path, Body(), Ct);
        using var withToken = await server.SendAsync(new HttpMethod(method), path, Body(), Ct, ("Authorization", "Bearer reader"));

        Assert.Equal(anonymous, withoutToken.StatusCode);
        Assert.Equal(method is "GET" or "HEAD" ? HttpStatusCode.NotFound : HttpStatusCode.Forbidden, withToken.StatusCode);
    }
}
