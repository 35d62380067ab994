using DurableStreams.Core;
using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Core.Memory;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>The embeddable host: addresses, lifecycle, graceful stop and option validation.</summary>
public sealed class DurableStreamServerTests
{
    private const int Timeout = 20_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Port_0_binds_a_free_loopback_port_and_the_urls_point_at_it()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);

        Assert.NotEqual(0, server.Server.Port);
        Assert.Equal(new Uri($"http://127.0.0.1:{server.Server.Port}/"), server.Server.BaseUrl);
        Assert.Equal(new Uri($"http://127.0.0.1:{server.Server.Port}/v1/stream/"), server.Server.StreamsUrl);
    }

    [Fact]
    public async Task A_custom_StreamsPath_moves_the_streams()
    {
        await using var server = await ServerHarness.StartAsync(o => o.StreamsPath = "/custom/root/", cancellationToken: Ct);
        var name = ServerHarness.NewName();

        using var created = await server.PutAsync(name, "text/plain", "x", Ct);
        using var old = await server.Client.GetAsync(new Uri(server.Server.BaseUrl, "v1/stream/" + name), Ct);

        Assert.Equal(new Uri(server.Server.BaseUrl, "custom/root/"), server.Server.StreamsUrl);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(new Uri(server.Server.BaseUrl, "custom/root/" + name), created.Headers.Location);
        Assert.Equal(HttpStatusCode.NotFound, old.StatusCode);
    }

    [Fact]
    public async Task Two_servers_on_port_0_get_different_ports()
    {
        await using var first = await ServerHarness.StartAsync(cancellationToken: Ct);
        await using var second = await ServerHarness.StartAsync(cancellationToken: Ct);

        Assert.NotEqual(first.Server.Port, second.Server.Port);
    }

    [Fact]
    public async Task The_urls_are_unavailable_before_start_and_a_second_start_throws()
    {
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Port = 0 });

        Assert.Throws<InvalidOperationException>(() => server.BaseUrl);
        await server.StartAsync(Ct);
        await Assert.ThrowsAsync<InvalidOperationException>(() => server.StartAsync(Ct));
    }

    [Fact]
    public async Task Stopping_twice_and_disposing_after_stop_are_harmless()
    {
        var server = new DurableStreamServer(new DurableStreamServerOptions { Port = 0 });
        await server.StartAsync(Ct);

        await server.StopAsync(Ct);
        await server.StopAsync(Ct);
        await server.DisposeAsync();
    }

    [Fact(Timeout = Timeout)]
    public async Task StopAsync_answers_an_open_long_poll_with_204_ends_an_open_SSE_response_and_returns_though_their_waits_hold_no_linked_token_source()
    {
        await using var server = await ServerHarness.StartWithFakeClockAsync(cancellationToken: Ct);
        var polled = ServerHarness.NewName("poll");
        var streamed = ServerHarness.NewName("sse");
        var pollTail = await server.CreateAsync(polled, "text/plain", "abc", Ct);
        await server.CreateAsync(streamed, "text/plain", "abc", Ct);

        var poll = server.GetAsync($"{polled}?offset={pollTail}&live=long-poll", Ct);
        using var sseRequest = ServerHarness.Request(HttpMethod.Get, $"{streamed}?offset=-1&live=sse");
        using var sseResponse = await server.Client.SendAsync(sseRequest, HttpCompletionOption.ResponseHeadersRead, Ct);
        using var sse = new SseReader(await sseResponse.Content.ReadAsStreamAsync(Ct));
        await sse.ExpectAsync("data", Ct);
        await sse.ExpectAsync("control", Ct);
        await server.Store.WaitStartedAsync(polled, Ct);
        await server.Store.WaitStartedAsync(streamed, Ct);
        // Each idle reader's wait registers on the server's stop itself, not through a linked token source of its own
        // (docs/benchmarks.md, "Ten thousand readers"); the stop below must still end both.
        Assert.Equal(1, server.Store.WaitsWithStopToken(polled));
        Assert.Equal(1, server.Store.WaitsWithStopToken(streamed));

        await server.Server.StopAsync(Ct);

        using var pollResponse = await poll;
        Assert.Equal(HttpStatusCode.NoContent, pollResponse.StatusCode);
        Assert.Equal(pollTail, Http.Header(pollResponse, "Stream-Next-Offset"));
        Assert.Equal("true", Http.Header(pollResponse, "Stream-Up-To-Date"));
        Assert.Null(await sse.ReadEventAsync(Ct));
        using var fresh = new HttpClient { Timeout = ServerHarness.RequestTimeout };
        await Assert.ThrowsAsync<HttpRequestException>(() => fresh.GetAsync(server.Url(polled), Ct));
    }

    [Fact]
    public async Task A_store_passed_in_options_outlives_the_server()
    {
        var store = new MemoryStreamStore();
        await using (var server = new DurableStreamServer(new DurableStreamServerOptions { Port = 0, Store = store }))
        {
            await server.StartAsync(Ct);
            using var client = new HttpClient { BaseAddress = server.StreamsUrl, Timeout = ServerHarness.RequestTimeout };
            using var response = await client.PutAsync(new Uri("kept", UriKind.Relative), ServerHarness.Body("text/plain", "abc"), Ct);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        try
        {
            Assert.Equal(WaitOutcome.Changed, await store.WaitAsync("kept", default, TimeSpan.FromSeconds(1), Ct));
            Assert.Equal(WaitOutcome.TimedOut, await store.WaitAsync("kept", new Protocol.StreamOffset(3), TimeSpan.FromTicks(1), Ct));
        }
        finally
        {
            await store.DisposeAsync();
        }
    }

    [Theory]
    [InlineData("Port", "-1")]
    [InlineData("Port", "65536")]
    [InlineData("LongPollTimeout", "0")]
    [InlineData("LongPollTimeout", "-1")]
    [InlineData("SseReconnectInterval", "0")]
    [InlineData("MaxAppendBytes", "0")]
    [InlineData("MaxBufferedBodyBytes", "1")]
    [InlineData("MinRequestBodyDataRate", "-1")]
    [InlineData("MaxReadChunkBytes", "-1")]
    [InlineData("CursorOptions", "0")]
    [InlineData("CorsOrigins", "empty")]
    public void An_invalid_option_throws_an_ArgumentException_naming_it(string option, string value)
    {
        var options = new DurableStreamServerOptions { Port = 0 };
        var number = value == "empty" ? 0 : int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
        switch (option)
        {
            case "Port": options.Port = number; break;
            case "LongPollTimeout": options.LongPollTimeout = TimeSpan.FromSeconds(number); break;
            case "SseReconnectInterval": options.SseReconnectInterval = TimeSpan.FromSeconds(number); break;
            case "MaxAppendBytes": options.MaxAppendBytes = number; break;
            case "MaxBufferedBodyBytes": options.MaxBufferedBodyBytes = number; break;
            case "MinRequestBodyDataRate": options.MinRequestBodyDataRate = number; break;
            case "MaxReadChunkBytes": options.MaxReadChunkBytes = number; break;
            case "CursorOptions": options.CursorOptions = new Protocol.CursorOptions { Interval = TimeSpan.FromSeconds(number) }; break;
            case "CorsOrigins": options.CorsOrigins.Clear(); break;
            default: throw new ArgumentOutOfRangeException(nameof(option), option, null);
        }

        var exception = Assert.ThrowsAny<ArgumentException>(() => new DurableStreamServer(options));

        Assert.Equal(option, exception.ParamName);
    }

    [Fact]
    public async Task A_host_that_is_neither_an_IP_address_nor_localhost_fails_to_start_with_an_ArgumentException()
    {
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Port = 0, Host = "example.invalid" });

        var exception = await Assert.ThrowsAnyAsync<Exception>(() => server.StartAsync(Ct));

        Assert.IsAssignableFrom<ArgumentException>(exception.GetBaseException());
    }
}
