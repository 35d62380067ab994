using System.Net;
using System.Text;
using DurableStreams.Client.Tests.Infrastructure;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>Client behaviour the official client conformance suite checks (issue 21, section 3).</summary>
public sealed class ConformanceFixesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 30_000)]
    public async Task A_long_poll_that_times_out_yields_an_empty_up_to_date_chunk_carrying_the_resolved_offset()
    {
        await using var harness = await ClientHarness.StartAsync(o => o.LongPollTimeout = TimeSpan.FromMilliseconds(50), cancellationToken: Ct);
        var name = ClientHarness.NewName();
        var created = await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "old"u8.ToArray() }, Ct);

        await using var chunks = harness.Client.ReadAsync(name, new ReadOptions { Offset = ProtocolQuery.NowSentinel, Live = LiveMode.LongPoll }, Ct).GetAsyncEnumerator(Ct);
        Assert.True(await chunks.MoveNextAsync());

        Assert.True(chunks.Current.Data.IsEmpty);
        Assert.True(chunks.Current.UpToDate);
        Assert.False(chunks.Current.StreamClosed);
        Assert.Equal(created.NextOffset, chunks.Current.NextOffset);
    }

    [Fact]
    public async Task Error_messages_name_the_method_the_URL_and_the_status()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var name = ClientHarness.NewName("missing");
        var url = harness.Client.StreamUrl(name).ToString();

        var read = await Assert.ThrowsAsync<DurableStreamException>(() => harness.Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct).AsTask());
        var head = await Assert.ThrowsAsync<DurableStreamException>(() => harness.Client.GetMetadataAsync(name, Ct));

        Assert.StartsWith($"GET {url}?offset=-1 failed: 404 Not Found", read.Message, StringComparison.Ordinal);
        Assert.EndsWith(": Stream not found.", read.Message, StringComparison.Ordinal); // the server's words follow
        Assert.Equal($"HEAD {url} failed: 404 Not Found", head.Message);
    }

    [Fact]
    public async Task A_Stream_Seq_conflict_is_SequenceConflict_not_Conflict()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        await harness.Client.AppendAsync(name, "a", "text/plain", new AppendOptions { StreamSeq = "2" }, Ct);

        var error = await Assert.ThrowsAsync<DurableStreamException>(
            () => harness.Client.AppendAsync(name, "b", "text/plain", new AppendOptions { StreamSeq = "1" }, Ct));

        Assert.Equal(DurableStreamErrorCode.SequenceConflict, error.ErrorCode);
        Assert.Equal(HttpStatusCode.Conflict, error.StatusCode);
    }

    [Fact]
    public void Data_that_is_not_JSON_is_a_ParseError()
    {
        var error = Assert.Throws<DurableStreamException>(() => DurableStreamClient.JsonMessages("[1, {\"a\": ]"u8.ToArray()));

        Assert.Equal(DurableStreamErrorCode.ParseError, error.ErrorCode);
        Assert.Null(error.StatusCode);
    }

    [Theory]
    [InlineData(0, 5, 1, "maxBatchBytes", "MaxBatchBytes")]
    [InlineData(-1, 5, 1, "maxBatchBytes", "MaxBatchBytes")]
    [InlineData(1024, 0, 1, "maxInFlight", "MaxInFlight")]
    [InlineData(1024, 5, 0, "maxBatchItems", "MaxBatchItems")]
    [InlineData(1024, 5, -1, "maxBatchItems", "MaxBatchItems")]
    public void A_bad_producer_option_is_named_in_the_exception(int maxBatchBytes, int maxInFlight, int maxBatchItems, string paramName, string property)
    {
        using var client = new DurableStreamClient();
        var options = new IdempotentProducerOptions { MaxBatchBytes = maxBatchBytes, MaxInFlight = maxInFlight, MaxBatchItems = maxBatchItems };

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => client.CreateProducer("s", "p", options: options));

        Assert.Equal(paramName, error.ParamName);
        Assert.Contains("IdempotentProducerOptions." + property, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CloseStreamAsync_sends_the_final_message_and_the_close_under_producer_headers_once()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        var sent = new List<(string? ProducerId, string? Seq, string? Closed)>();
        harness.Faults.BeforeForwardAsync = request =>
        {
            if (request.Method == HttpMethod.Post)
            {
                lock (sent)
                {
                    sent.Add((Header(request, ProtocolHeaders.ProducerId), Header(request, ProtocolHeaders.ProducerSeq), Header(request, ProtocolHeaders.StreamClosed)));
                }
            }
            return Task.CompletedTask;
        };
        var producer = harness.Client.CreateProducer(name, "p1", contentType: "text/plain", options: new IdempotentProducerOptions { Linger = TimeSpan.Zero });

        await producer.AppendAsync("message-1"u8.ToArray(), Ct);
        var first = await producer.CloseStreamAsync("final"u8.ToArray(), Ct);
        var again = await producer.CloseStreamAsync("ignored"u8.ToArray(), Ct);
        await producer.DisposeAsync();

        var chunks = await harness.Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);
        Assert.Equal("message-1final", DurableStreamClientTests.Text(chunks));
        Assert.True(chunks[^1].StreamClosed);
        Assert.True(first.Closed);
        Assert.Equal(chunks[^1].NextOffset, first.NextOffset);
        Assert.Equal(first, again);
        Assert.Equal([("p1", "0", null), ("p1", "1", "true")], sent);
    }

    [Fact]
    public async Task MaxBatchItems_caps_the_messages_per_batch()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        var options = new IdempotentProducerOptions { Linger = TimeSpan.FromMinutes(5), MaxBatchItems = 2, MaxInFlight = 1 };
        await using var producer = harness.Client.CreateProducer(name, "p1", contentType: "text/plain", options: options);

        foreach (var message in new[] { "a", "b", "c", "d", "e" })
        {
            await producer.AppendAsync(Encoding.UTF8.GetBytes(message), Ct);
        }
        await producer.FlushAsync(Ct);

        Assert.Equal("abcde", DurableStreamClientTests.Text(await harness.Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct)));
        Assert.Equal(3, producer.NextSeq); // [a b] [c d] [e]
        Assert.Equal(3, harness.Faults.Count(HttpMethod.Post));
    }

    [Fact]
    public async Task Header_and_query_parameter_providers_are_called_for_every_request()
    {
        var calls = 0;
        await using var harness = await ClientHarness.StartAsync(
            configureClient: o => o with
            {
                Headers = new Dictionary<string, string> { ["X-Token"] = "static" },
                HeaderProviders = new Dictionary<string, Func<CancellationToken, ValueTask<string>>>
                {
                    ["X-Token"] = _ => ValueTask.FromResult("t" + Interlocked.Increment(ref calls)),
                },
                QueryParameterProviders = new Dictionary<string, Func<CancellationToken, ValueTask<string>>>
                {
                    ["sig"] = _ => ValueTask.FromResult("a b"),
                },
            },
            cancellationToken: Ct);
        var seen = new List<(string? Token, string Query)>();
        harness.Faults.BeforeForwardAsync = request =>
        {
            seen.Add((Header(request, "X-Token"), request.RequestUri!.Query));
            return Task.CompletedTask;
        };
        var name = ClientHarness.NewName();

        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        await harness.Client.AppendAsync(name, "x", "text/plain", cancellationToken: Ct);
        await harness.Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal(["t1", "t2", "t3"], seen.Select(s => s.Token));
        Assert.Equal("?sig=a%20b", seen[0].Query);
        Assert.Equal("?offset=-1&sig=a%20b", seen[2].Query);
    }

    [Fact]
    public async Task A_provided_query_parameter_value_is_redacted_in_error_messages()
    {
        await using var harness = await ClientHarness.StartAsync(
            configureClient: o => o with
            {
                QueryParameterProviders = new Dictionary<string, Func<CancellationToken, ValueTask<string>>>
                {
                    ["sig"] = _ => ValueTask.FromResult("secret-token"),
                },
            },
            cancellationToken: Ct);
        var name = ClientHarness.NewName();

        var error = await Assert.ThrowsAsync<DurableStreamException>(() => harness.Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct).AsTask());

        Assert.Equal(DurableStreamErrorCode.NotFound, error.ErrorCode);
        Assert.DoesNotContain("secret-token", error.Message, StringComparison.Ordinal);
        Assert.Contains("sig=***", error.Message, StringComparison.Ordinal);
        Assert.Contains(name, error.Message, StringComparison.Ordinal);
    }

    [Theory(Timeout = 30_000)]
    [InlineData("text/plain", "live=sse")]
    [InlineData("application/octet-stream", "live=long-poll")]
    public async Task Auto_catches_up_then_follows_with_SSE_or_long_poll_by_content_type(string contentType, string followQuery)
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = contentType, Body = "old"u8.ToArray() }, Ct);
        await using var chunks = harness.Client.ReadAsync(name, new ReadOptions { Live = LiveMode.Auto }, Ct).GetAsyncEnumerator(Ct);

        Assert.True(await chunks.MoveNextAsync());
        var old = chunks.Current;
        var received = new StringBuilder();
        var moving = chunks.MoveNextAsync().AsTask();
        await harness.Store.WaitStartedAsync(name, Ct);
        await harness.Client.AppendAsync(name, "new", contentType, cancellationToken: Ct);
        while (received.Length < 3 && await moving)
        {
            received.Append(Encoding.UTF8.GetString(chunks.Current.Data.Span));
            if (received.Length < 3)
            {
                moving = chunks.MoveNextAsync().AsTask();
            }
        }

        Assert.Equal("old", Encoding.UTF8.GetString(old.Data.Span));
        Assert.True(old.UpToDate);
        Assert.Equal("new", received.ToString());
        var gets = harness.Faults.Requests.Where(r => r.Method == HttpMethod.Get).Select(r => r.Uri.Query).ToList();
        Assert.DoesNotContain("live=", gets[0], StringComparison.Ordinal); // the catch-up
        Assert.All(gets.Skip(1), q => Assert.Contains(followQuery, q, StringComparison.Ordinal));
    }

    [Fact]
    public async Task With_RetryAppends_a_plain_append_answered_503_is_retried()
    {
        await using var harness = await ClientHarness.StartAsync(configureClient: o => o with { RetryAppends = true }, cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        harness.Faults.Decide = (request, index) => request.Method == HttpMethod.Post && index == 0 ? Fault.ServiceUnavailable : Fault.None;

        await harness.Client.AppendAsync(name, "x", "text/plain", cancellationToken: Ct);

        Assert.Equal("x", DurableStreamClientTests.Text(await harness.Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct)));
        Assert.Equal(2, harness.Faults.Count(HttpMethod.Post));
    }

    private static string? Header(HttpRequestMessage request, string name) =>
        request.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;
}
