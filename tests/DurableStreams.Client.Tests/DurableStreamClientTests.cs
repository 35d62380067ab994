using System.Text;
using DurableStreams.Client.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>Create, append, close, delete and HEAD against the real in-process server.</summary>
public sealed class DurableStreamClientTests : IAsyncLifetime
{
    private ClientHarness _harness = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DurableStreamClient Client => _harness.Client;

    public async ValueTask InitializeAsync() => _harness = await ClientHarness.StartAsync(cancellationToken: Ct);

    public ValueTask DisposeAsync() => _harness.DisposeAsync();

    [Fact]
    public async Task Create_reports_Created_then_AlreadyExisted_with_the_same_configuration()
    {
        var name = ClientHarness.NewName();

        var first = await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        var second = await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);

        Assert.Equal(CreateOutcome.Created, first.Outcome);
        Assert.Equal(CreateOutcome.AlreadyExisted, second.Outcome);
        Assert.Equal("text/plain", first.ContentType);
        Assert.Equal("0000000000000000_0000000000000000", first.NextOffset);
        Assert.False(first.Closed);
    }

    [Fact]
    public async Task Create_with_a_body_and_Closed_makes_a_finished_stream()
    {
        var name = ClientHarness.NewName();

        var info = await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "done"u8.ToArray(), Closed = true }, Ct);
        var chunks = await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);

        Assert.True(info.Closed);
        Assert.Equal("0000000000000000_0000000000000004", info.NextOffset);
        Assert.Equal("done", Text(chunks));
        Assert.True(chunks[^1].StreamClosed);
    }

    [Fact]
    public async Task Create_from_a_Stream_body_stores_its_bytes()
    {
        var name = ClientHarness.NewName();
        using var body = new MemoryStream("streamed"u8.ToArray());

        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", BodyStream = body }, Ct);

        Assert.Equal("streamed", Text(await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct)));
    }

    [Fact]
    public async Task Ttl_and_ExpiresAt_round_trip_through_HEAD()
    {
        var withTtl = ClientHarness.NewName();
        var withExpiry = ClientHarness.NewName();
        var expiresAt = new DateTimeOffset(2099, 1, 2, 3, 4, 5, TimeSpan.Zero);

        await Client.CreateAsync(withTtl, new CreateStreamOptions { ContentType = "text/plain", Ttl = TimeSpan.FromHours(1) }, Ct);
        await Client.CreateAsync(withExpiry, new CreateStreamOptions { ContentType = "text/plain", ExpiresAt = expiresAt }, Ct);
        var ttlMeta = await Client.GetMetadataAsync(withTtl, Ct);
        var expiryMeta = await Client.GetMetadataAsync(withExpiry, Ct);

        Assert.Equal(TimeSpan.FromHours(1), ttlMeta.Ttl);
        Assert.Null(ttlMeta.ExpiresAt);
        Assert.Equal(expiresAt, expiryMeta.ExpiresAt);
        Assert.Null(expiryMeta.Ttl);
    }

    [Fact]
    public async Task A_fractional_Ttl_is_refused_before_any_request()
    {
        await Assert.ThrowsAsync<ArgumentException>(() =>
            Client.CreateAsync(ClientHarness.NewName(), new CreateStreamOptions { Ttl = TimeSpan.FromMilliseconds(1500) }, Ct));

        Assert.Empty(_harness.Faults.Requests);
    }

    [Fact]
    public async Task Appends_of_bytes_text_and_streams_advance_the_offset_and_HEAD_sees_the_tail()
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/octet-stream" }, Ct);

        var a = await Client.AppendAsync(name, new byte[] { 1, 2, 3 }, "application/octet-stream", cancellationToken: Ct);
        var b = await Client.AppendAsync(name, "xy", "application/octet-stream", cancellationToken: Ct);
        using var body = new MemoryStream(new byte[] { 9, 9, 9, 9 });
        var c = await Client.AppendAsync(name, body, "application/octet-stream", cancellationToken: Ct);
        var meta = await Client.GetMetadataAsync(name, Ct);

        Assert.Equal("0000000000000000_0000000000000003", a.NextOffset);
        Assert.Equal("0000000000000000_0000000000000005", b.NextOffset);
        Assert.Equal("0000000000000000_0000000000000009", c.NextOffset);
        Assert.Equal(c.NextOffset, meta.NextOffset);
        Assert.Equal("application/octet-stream", meta.ContentType);
        Assert.False(meta.Closed);
        var data = (await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct)).SelectMany(x => x.Data.ToArray()).ToArray();
        Assert.Equal(new byte[] { 1, 2, 3, (byte)'x', (byte)'y', 9, 9, 9, 9 }, data);
    }

    [Fact]
    public async Task Append_with_Close_and_CloseAsync_close_the_stream()
    {
        var appendAndClose = ClientHarness.NewName();
        var closeOnly = ClientHarness.NewName();
        await Client.CreateAsync(appendAndClose, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        await Client.CreateAsync(closeOnly, new CreateStreamOptions { ContentType = "text/plain" }, Ct);

        var appended = await Client.AppendAsync(appendAndClose, "last", "text/plain", new AppendOptions { Close = true }, Ct);
        var closed = await Client.CloseAsync(closeOnly, Ct);
        var again = await Client.CloseAsync(closeOnly, Ct);

        Assert.True(appended.Closed);
        Assert.True(closed.Closed);
        Assert.True(again.Closed);
        Assert.True((await Client.GetMetadataAsync(appendAndClose, Ct)).Closed);
        Assert.True((await Client.GetMetadataAsync(closeOnly, Ct)).Closed);
    }

    [Fact]
    public async Task StreamSeq_must_increase()
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        await Client.AppendAsync(name, "a", "text/plain", new AppendOptions { StreamSeq = "002" }, Ct);

        var error = await Assert.ThrowsAsync<DurableStreamException>(() =>
            Client.AppendAsync(name, "b", "text/plain", new AppendOptions { StreamSeq = "001" }, Ct));

        Assert.Equal(DurableStreamErrorCode.SequenceConflict, error.ErrorCode);
    }

    [Fact]
    public async Task Delete_removes_the_stream()
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);

        await Client.DeleteAsync(name, Ct);

        var error = await Assert.ThrowsAsync<DurableStreamException>(() => Client.GetMetadataAsync(name, Ct));
        Assert.Equal(DurableStreamErrorCode.NotFound, error.ErrorCode);
    }

    [Fact]
    public async Task A_fork_inherits_the_source_up_to_ForkOffset_and_then_diverges()
    {
        var source = ClientHarness.NewName();
        var fork = ClientHarness.NewName();
        await Client.CreateAsync(source, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        var split = await Client.AppendAsync(source, "shared", "text/plain", cancellationToken: Ct);
        await Client.AppendAsync(source, "-source-only", "text/plain", cancellationToken: Ct);

        var info = await Client.CreateAsync(fork, new CreateStreamOptions { ForkFrom = source, ForkOffset = split.NextOffset }, Ct);
        await Client.AppendAsync(fork, "-fork-only", "text/plain", cancellationToken: Ct);

        Assert.Equal(CreateOutcome.Created, info.Outcome);
        Assert.Equal(split.NextOffset, info.NextOffset);
        Assert.Equal("shared-fork-only", Text(await Client.ReadAsync(fork, cancellationToken: Ct).ToListAsync(Ct)));
    }

    [Fact]
    public async Task Authorization_and_extra_headers_are_sent_with_every_request()
    {
        HttpRequestMessage? seen = null;
        _harness.Faults.Decide = (request, _) =>
        {
            seen = request;
            return Fault.None;
        };
        using var client = new DurableStreamClient(
            new HttpClient(_harness.Faults, disposeHandler: false),
            Client.Options with { Authorization = "Bearer t0ken", Headers = new Dictionary<string, string> { ["X-Tenant"] = "blue" } });

        await client.CreateAsync(ClientHarness.NewName(), cancellationToken: Ct);

        Assert.NotNull(seen);
        Assert.Equal("Bearer t0ken", seen.Headers.Authorization?.ToString());
        Assert.Equal("blue", seen.Headers.GetValues("X-Tenant").Single());
        Assert.False(client.OwnsHttpClient);
    }

    [Fact]
    public void Stream_names_are_escaped_per_segment()
    {
        var url = Client.StreamUrl("a b/c?d");

        Assert.EndsWith("/v1/stream/a%20b/c%3Fd", url.AbsoluteUri, StringComparison.Ordinal);
    }

    [Fact]
    public void A_full_http_or_https_stream_url_as_the_name_is_used_as_given()
    {
        using var client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = new Uri("http://127.0.0.1:9/v1/stream/") });

        Assert.Equal("http://other.test:8787/s1", client.StreamUrl("http://other.test:8787/s1").AbsoluteUri);
        Assert.Equal("https://other.test/root/a%20b/c", client.StreamUrl("https://other.test/root/a%20b/c").AbsoluteUri);
        Assert.Equal("http://127.0.0.1:9/v1/stream/httpx", client.StreamUrl("httpx").AbsoluteUri);
    }

    [Fact]
    public async Task Every_operation_takes_a_full_stream_url_whatever_the_base_url()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        using var elsewhere = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = new Uri("http://127.0.0.1:9/nowhere/"), Retry = RetryPolicy.None });
        var url = harness.Client.StreamUrl(ClientHarness.NewName()).AbsoluteUri;

        await elsewhere.CreateAsync(url, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        await elsewhere.AppendAsync(url, "a", "text/plain", cancellationToken: Ct);
        await using (var producer = elsewhere.CreateProducer(url, "p", contentType: "text/plain"))
        {
            await producer.AppendAsync("b"u8.ToArray(), Ct);
        }
        var metadata = await elsewhere.GetMetadataAsync(url, Ct);
        var read = await elsewhere.ReadAsync(url, new ReadOptions { Live = LiveMode.Sse }, Ct).FirstAsync(Ct);

        Assert.Equal("text/plain", metadata.ContentType);
        Assert.Equal("ab", Encoding.UTF8.GetString(read.Data.Span));
    }

    internal static string Text(IEnumerable<StreamChunk> chunks) =>
        Encoding.UTF8.GetString(chunks.SelectMany(c => c.Data.ToArray()).ToArray());
}
