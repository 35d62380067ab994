using System.Net;
using System.Net.Sockets;
using System.Text;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Storage.Files;
using DurableStreams.Core.Memory;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>Stream-name limits, JSON depth, live-reader cap, per-client rate limit and slow clients.</summary>
public sealed class ServerLimitsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_4000_character_name_works_on_both_stores_and_a_longer_one_than_the_limit_is_400()
    {
        using var directory = new TempDirectory();
        await using var fileStore = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, Durability = DurabilityMode.None });
        await using var memory = await ServerHarness.StartAsync(cancellationToken: Ct);
        await using var file = await ServerHarness.StartAsync(o => o.Store = fileStore, cancellationToken: Ct);
        var name = "n" + new string('x', 3999);

        foreach (var harness in new[] { memory, file })
        {
            await harness.CreateAsync(name, "text/plain", "hello", Ct);
            var (body, _) = await harness.ReadAllAsync(name, Ct);
            Assert.Equal("hello", body);

            using var tooLong = await harness.PutAsync(new string('y', 4097), "text/plain", null, Ct);
            Assert.Contains("4096 bytes", await Http.ErrorAsync(tooLong, HttpStatusCode.BadRequest), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Names_over_the_byte_or_segment_limit_are_400_with_a_message()
    {
        await using var harness = await ServerHarness.StartAsync(o =>
        {
            o.MaxStreamNameBytes = 10;
            o.MaxStreamNameSegments = 3;
        }, cancellationToken: Ct);

        using var multiByte = await harness.PutAsync(Uri.EscapeDataString("ééééé€"), "text/plain", null, Ct);
        using var segments = await harness.PutAsync("a/b/c/d", "text/plain", null, Ct);
        using var fine = await harness.PutAsync("a/b/c", "text/plain", null, Ct);

        Assert.Contains("10 bytes", await Http.ErrorAsync(multiByte, HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("3 '/'-separated segments", await Http.ErrorAsync(segments, HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, fine.StatusCode);
    }

    [Fact]
    public async Task A_JSON_body_nested_100000_levels_deep_is_400_not_500()
    {
        await using var harness = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "application/json", null, Ct);
        var deep = new string('[', 100_000) + new string(']', 100_000);

        using var append = await harness.PostAsync(name, "application/json", deep, Ct);
        using var create = await harness.PutAsync(ServerHarness.NewName(), "application/json", deep, Ct);

        Assert.Contains("nested too deeply", await Http.ErrorAsync(append, HttpStatusCode.BadRequest), StringComparison.Ordinal);
        Assert.Contains("nested too deeply", await Http.ErrorAsync(create, HttpStatusCode.BadRequest), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Live_readers_over_the_cap_get_503_with_Retry_After()
    {
        await using var harness = await ServerHarness.StartAsync(o => o.MaxLiveReaders = 1, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "text/plain", null, Ct);

        // An SSE response's headers arrive only after the handler has taken its slot, so the cap is full from here on.
        using var sse = new HttpRequestMessage(HttpMethod.Get, new Uri(name + "?offset=-1&live=sse", UriKind.Relative));
        using var open = await harness.Client.SendAsync(sse, HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);

        using var refused = await harness.GetAsync(name + "?offset=-1&live=long-poll", Ct);
        using var catchUp = await harness.GetAsync(name, Ct);

        await Http.ErrorAsync(refused, HttpStatusCode.ServiceUnavailable);
        Assert.Equal(TimeSpan.FromSeconds(5), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.OK, catchUp.StatusCode);
    }

    [Fact]
    public async Task A_client_over_its_rate_limit_gets_429_with_Retry_After_and_health_stays_exempt()
    {
        await using var harness = await ServerHarness.StartAsync(o =>
        {
            o.RateLimitPermits = 3;
            o.RateLimitWindow = TimeSpan.FromHours(1);
        }, cancellationToken: Ct);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await harness.GetAsync("missing", Ct);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero);
                // Readable by a browser: CORS headers on the limiter's own answer, Retry-After exposed.
                Assert.Equal("*", Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
                Assert.Contains("Retry-After", Assert.Single(response.Headers.GetValues("Access-Control-Expose-Headers")), StringComparison.Ordinal);
            }
        }
        using var health = await harness.Client.GetAsync(new Uri(harness.Server.BaseUrl, "/healthz"), Ct);

        Assert.Equal([HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.TooManyRequests], statuses);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task A_slowloris_connection_that_never_finishes_its_headers_is_closed_by_the_server()
    {
        await using var harness = await ServerHarness.StartAsync(o => o.RequestHeadersTimeout = TimeSpan.FromSeconds(1), cancellationToken: Ct);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, harness.Server.Port, Ct);
        await socket.SendAsync(Encoding.ASCII.GetBytes("GET /v1/stream/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "), Ct);

        // The server answers 408 (or nothing) and closes: a read ends with 0 bytes well within the test's timeout.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(20));
        var buffer = new byte[4096];
        var received = new StringBuilder();
        int read;
        while ((read = await socket.ReceiveAsync(buffer, deadline.Token)) > 0)
        {
            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        Assert.True(received.Length == 0 || received.ToString().StartsWith("HTTP/1.1 408", StringComparison.Ordinal), received.ToString());
    }

    [Fact]
    public async Task A_fork_deeper_than_the_store_limit_is_400_naming_the_limit()
    {
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { MaxForkDepth = 2 });
        await using var harness = await ServerHarness.StartAsync(o => o.Store = store, cancellationToken: Ct);
        var previous = ServerHarness.NewName();
        await harness.CreateAsync(previous, "text/plain", "a", Ct);
        for (var i = 0; i < 2; i++)
        {
            var fork = ServerHarness.NewName();
            using var created = await harness.PutAsync(fork, null, null, Ct, ("Stream-Forked-From", harness.Server.StreamsUrl.AbsolutePath + previous));
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            previous = fork;
        }

        using var refused = await harness.PutAsync(ServerHarness.NewName(), null, null, Ct, ("Stream-Forked-From", harness.Server.StreamsUrl.AbsolutePath + previous));

        var message = await Http.ErrorAsync(refused, HttpStatusCode.BadRequest);
        Assert.Contains("more than 2 forks deep", message, StringComparison.Ordinal);
        Assert.Contains("--max-fork-depth", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_json_body_with_more_messages_than_the_limit_is_413_naming_the_limit_and_stores_nothing()
    {
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { MaxMessagesPerAppend = 1_000 });
        await using var harness = await ServerHarness.StartAsync(o => o.Store = store, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "application/json", "[1]", Ct);
        var tooMany = "[" + string.Join(",", Enumerable.Repeat("0", 1_001)) + "]";

        using var append = await harness.PostAsync(name, "application/json", tooMany, Ct);
        using var create = await harness.PutAsync(ServerHarness.NewName(), "application/json", tooMany, Ct);

        foreach (var response in new[] { append, create })
        {
            var message = await Http.ErrorAsync(response, HttpStatusCode.RequestEntityTooLarge);
            Assert.Contains("more than 1,000 messages", message, StringComparison.Ordinal);
            Assert.Contains("--max-messages-per-append", message, StringComparison.Ordinal);
        }
        Assert.Equal("[1]", (await harness.ReadAllAsync(name, Ct)).Body);
        using var fits = await harness.PostAsync(name, "application/json", "[" + string.Join(",", Enumerable.Repeat("0", 1_000)) + "]", Ct);
        Assert.Equal(HttpStatusCode.NoContent, fits.StatusCode);
    }
}
