using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>TTL and absolute expiry on the server's (fake) clock, as HTTP clients see them.</summary>
public sealed class StreamEndpointsExpiryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_stream_idle_for_its_TTL_answers_404_and_its_name_can_be_reused()
    {
        await using var server = await ServerHarness.StartWithFakeClockAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct, ("Stream-TTL", "10"));

        server.FakeTime.Advance(TimeSpan.FromSeconds(10));

        using var read = await server.GetAsync(name, Ct);
        await Http.ErrorAsync(read, HttpStatusCode.NotFound);
        using var recreated = await server.PutAsync(name, "application/json", null, Ct);
        Assert.Equal(HttpStatusCode.Created, recreated.StatusCode);
    }

    [Fact]
    public async Task Reads_and_appends_refresh_the_TTL_but_HEAD_does_not()
    {
        await using var server = await ServerHarness.StartWithFakeClockAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct, ("Stream-TTL", "10"));

        server.FakeTime.Advance(TimeSpan.FromSeconds(8));
        await server.ReadAllAsync(name, Ct);
        server.FakeTime.Advance(TimeSpan.FromSeconds(8));
        await server.AppendAsync(name, "text/plain", "d", Ct);
        server.FakeTime.Advance(TimeSpan.FromSeconds(8));
        using (var head = await server.SendAsync(HttpMethod.Head, name, null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal("10", Http.Header(head, "Stream-TTL"));
        }
        server.FakeTime.Advance(TimeSpan.FromSeconds(2));

        using var expired = await server.SendAsync(HttpMethod.Head, name, null, Ct);
        await Http.ErrorAsync(expired, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_stream_past_its_Expires_At_answers_404_and_HEAD_reports_the_expiry_before()
    {
        await using var server = await ServerHarness.StartWithFakeClockAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        var expiresAt = ServerHarness.FakeStart.AddMinutes(5);
        await server.CreateAsync(name, "text/plain", "abc", Ct, ("Stream-Expires-At", expiresAt.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)));

        using (var head = await server.SendAsync(HttpMethod.Head, name, null, Ct))
        {
            Assert.Equal(expiresAt, DateTimeOffset.Parse(Http.Header(head, "Stream-Expires-At")!, System.Globalization.CultureInfo.InvariantCulture));
        }
        server.FakeTime.Advance(TimeSpan.FromMinutes(5));

        using var read = await server.GetAsync(name, Ct);
        await Http.ErrorAsync(read, HttpStatusCode.NotFound);
    }
}
