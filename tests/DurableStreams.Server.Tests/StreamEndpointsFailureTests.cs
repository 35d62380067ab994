using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>Store failures and client disconnects: no details leak, no wait outlives its request.</summary>
public sealed class StreamEndpointsFailureTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const int Timeout = 20_000;

    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public async Task A_store_failure_answers_500_with_a_plain_message_and_no_details(string method)
    {
        var name = ServerHarness.NewName("broken");
        await _server.CreateAsync(name, "text/plain", "abc", Ct);
        _server.Store.FailOn = n => n == name;

        using var response = await _server.SendAsync(new HttpMethod(method), name, method is "POST" or "PUT" ? ServerHarness.Body("text/plain", "x") : null, Ct,
            ("Origin", "https://app.example"));

        var body = await Http.ErrorAsync(response, HttpStatusCode.InternalServerError);
        Assert.DoesNotContain("SECRET", body, StringComparison.Ordinal);
        Assert.DoesNotContain("/var/lib", body, StringComparison.Ordinal);
        Assert.Equal("*", Http.Header(response, "Access-Control-Allow-Origin"));
        Assert.Null(Http.Header(response, "Stream-Next-Offset"));
    }

    [Fact]
    public async Task Other_streams_keep_working_while_one_fails()
    {
        var broken = ServerHarness.NewName("broken");
        var healthy = ServerHarness.NewName("healthy");
        await _server.CreateAsync(broken, "text/plain", "abc", Ct);
        await _server.CreateAsync(healthy, "text/plain", "abc", Ct);
        _server.Store.FailOn = n => n == broken;

        using (var failed = await _server.GetAsync(broken, Ct))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        Assert.Equal("abc", (await _server.ReadAllAsync(healthy, Ct)).Body);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_client_that_abandons_a_long_poll_releases_the_server_wait()
    {
        var name = ServerHarness.NewName();
        var tail = await _server.CreateAsync(name, "text/plain", "abc", Ct);
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        var poll = _server.GetAsync($"{name}?offset={tail}&live=long-poll", abandon.Token);
        await _server.Store.WaitStartedAsync(name, Ct);
        await abandon.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => poll);
        await _server.Store.WaitCancelledAsync(name, Ct);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_client_that_closes_an_SSE_response_releases_the_server_wait()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "abc", Ct);
        using var request = ServerHarness.Request(HttpMethod.Get, $"{name}?offset=-1&live=sse");
        var response = await _server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        using (var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct)))
        {
            await sse.ExpectAsync("data", Ct);
            await sse.ExpectAsync("control", Ct);
            await _server.Store.WaitStartedAsync(name, Ct);
        }

        response.Dispose();

        await _server.Store.WaitCancelledAsync(name, Ct);
    }
}
