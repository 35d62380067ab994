using System.Net;
using DurableStreams.Client.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>Server answers become one exception type with a specific error code, the HTTP status and the server's text.</summary>
public sealed class ErrorMappingTests : IAsyncLifetime
{
    private ClientHarness _harness = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DurableStreamClient Client => _harness.Client;

    public async ValueTask InitializeAsync() => _harness = await ClientHarness.StartAsync(cancellationToken: Ct);

    public ValueTask DisposeAsync() => _harness.DisposeAsync();

    [Fact]
    public async Task A_missing_stream_is_NotFound_for_reads_appends_and_HEAD()
    {
        var name = ClientHarness.NewName();

        var read = await Assert.ThrowsAsync<DurableStreamException>(() => Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct).AsTask());
        var append = await Assert.ThrowsAsync<DurableStreamException>(() => Client.AppendAsync(name, "x", "text/plain", cancellationToken: Ct));
        var head = await Assert.ThrowsAsync<DurableStreamException>(() => Client.GetMetadataAsync(name, Ct));

        Assert.All([read, append, head], e => Assert.Equal(DurableStreamErrorCode.NotFound, e.ErrorCode));
        Assert.All([read, append, head], e => Assert.Equal(HttpStatusCode.NotFound, e.StatusCode));
        Assert.EndsWith(" failed: 404 Not Found: Stream not found.", read.Message, StringComparison.Ordinal);
        Assert.StartsWith("POST ", append.Message, StringComparison.Ordinal);
        Assert.EndsWith(" failed: 404 Not Found: Stream not found.", append.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(head.Message)); // HEAD has no body: the status stands in
        Assert.Equal(1, _harness.Faults.Count(HttpMethod.Get)); // a 404 is not retried
    }

    [Fact]
    public async Task Appending_to_a_closed_stream_is_StreamClosed_with_the_final_offset()
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "end"u8.ToArray(), Closed = true }, Ct);

        var error = await Assert.ThrowsAsync<DurableStreamException>(() => Client.AppendAsync(name, "more", "text/plain", cancellationToken: Ct));

        Assert.Equal(DurableStreamErrorCode.StreamClosed, error.ErrorCode);
        Assert.Equal(HttpStatusCode.Conflict, error.StatusCode);
        Assert.Equal("0000000000000000_0000000000000003", error.NextOffset);
        Assert.EndsWith(" failed: 409 Conflict: Stream is closed.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Recreating_with_another_configuration_or_appending_another_type_is_Conflict()
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);

        var create = await Assert.ThrowsAsync<DurableStreamException>(() => Client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json" }, Ct));
        var append = await Assert.ThrowsAsync<DurableStreamException>(() => Client.AppendAsync(name, "{}", "application/json", cancellationToken: Ct));

        Assert.Equal(DurableStreamErrorCode.Conflict, create.ErrorCode);
        Assert.Equal(DurableStreamErrorCode.Conflict, append.ErrorCode);
    }

    [Fact]
    public async Task A_stale_producer_epoch_without_auto_claim_is_StaleEpoch_with_the_server_epoch()
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        await using (var current = Client.CreateProducer(name, "p", epoch: 4, "text/plain"))
        {
            await current.AppendAsync("x"u8.ToArray(), Ct);
        }
        var zombie = Client.CreateProducer(name, "p", epoch: 1, "text/plain", autoClaim: false);

        await zombie.AppendAsync("y"u8.ToArray(), Ct);
        var error = await Assert.ThrowsAsync<DurableStreamException>(() => zombie.FlushAsync(Ct));
        var again = await Assert.ThrowsAsync<DurableStreamException>(() => zombie.AppendAsync("z"u8.ToArray(), Ct).AsTask());
        await Assert.ThrowsAsync<DurableStreamException>(() => zombie.DisposeAsync().AsTask());

        Assert.Equal(DurableStreamErrorCode.StaleEpoch, error.ErrorCode);
        Assert.Equal(HttpStatusCode.Forbidden, error.StatusCode);
        Assert.Equal(4, error.ProducerEpoch);
        Assert.Equal(DurableStreamErrorCode.StaleEpoch, again.ErrorCode);
        Assert.Equal("x", DurableStreamClientTests.Text(await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct)));
    }

    [Fact]
    public async Task A_malformed_offset_is_BadRequest()
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);

        var error = await Assert.ThrowsAsync<DurableStreamException>(() =>
            Client.ReadAsync(name, new ReadOptions { Offset = "not-an-offset" }, Ct).ToListAsync(Ct).AsTask());

        Assert.Equal(DurableStreamErrorCode.BadRequest, error.ErrorCode);
        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
    }

    [Fact]
    public async Task A_body_over_the_server_limit_is_PayloadTooLarge()
    {
        await using var harness = await ClientHarness.StartAsync(o => o.MaxAppendBytes = 16, cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/octet-stream" }, Ct);

        var error = await Assert.ThrowsAsync<DurableStreamException>(() =>
            harness.Client.AppendAsync(name, new byte[17], "application/octet-stream", cancellationToken: Ct));

        Assert.Equal(DurableStreamErrorCode.PayloadTooLarge, error.ErrorCode);
    }
}
