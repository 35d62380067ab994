using System.Net;
using System.Text;
using DurableStreams.Client.Tests.Infrastructure;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>Batching, ordering, dedup of re-sends and auto-claim, against the real server.</summary>
public sealed class IdempotentProducerTests : IAsyncLifetime
{
    private static readonly IdempotentProducerOptions LongLinger = new() { Linger = TimeSpan.FromMinutes(5) };

    private ClientHarness _harness = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DurableStreamClient Client => _harness.Client;

    private FaultHandler Faults => _harness.Faults;

    public async ValueTask InitializeAsync() => _harness = await ClientHarness.StartAsync(cancellationToken: Ct);

    public ValueTask DisposeAsync() => _harness.DisposeAsync();

    [Fact]
    public async Task Queued_messages_go_out_in_one_ordered_batch_on_flush()
    {
        var name = await CreateAsync("text/plain");
        await using var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: LongLinger);

        for (var i = 0; i < 50; i++)
        {
            await producer.AppendAsync(Encoding.UTF8.GetBytes($"{i},"), Ct);
        }
        Assert.Equal(0, Faults.Count(HttpMethod.Post)); // lingering, nothing sent yet
        await producer.FlushAsync(Ct);

        Assert.Equal(string.Concat(Enumerable.Range(0, 50).Select(i => $"{i},")), await ReadTextAsync(name));
        Assert.Equal(1, Faults.Count(HttpMethod.Post));
        Assert.Equal(1, producer.NextSeq);
        Assert.NotNull(producer.NextOffset);
    }

    [Fact]
    public async Task MaxBatchBytes_splits_batches_and_their_Producer_Seq_values_are_consecutive()
    {
        var name = await CreateAsync("text/plain");
        var seqs = new List<string>();
        Faults.Decide = (request, _) =>
        {
            if (request.Method == HttpMethod.Post)
            {
                lock (seqs)
                {
                    seqs.Add(request.Headers.GetValues(ProtocolHeaders.ProducerSeq).Single());
                }
            }
            return Fault.None;
        };
        await using var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: LongLinger with { MaxBatchBytes = 10, MaxInFlight = 1 }); // one at a time: the wire order is the seq order

        for (var i = 0; i < 10; i++)
        {
            await producer.AppendAsync(Encoding.UTF8.GetBytes($"m{i:D3}|"), Ct); // 5 bytes each: two per batch
        }
        await producer.FlushAsync(Ct);

        Assert.Equal(string.Concat(Enumerable.Range(0, 10).Select(i => $"m{i:D3}|")), await ReadTextAsync(name));
        Assert.Equal(["0", "1", "2", "3", "4"], seqs);
    }

    [Fact]
    public async Task Zero_linger_sends_without_a_flush()
    {
        var name = await CreateAsync("text/plain");
        await using var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: new() { Linger = TimeSpan.Zero });
        await using var follow = Client.ReadAsync(name, new ReadOptions { Live = LiveMode.LongPoll }, Ct).GetAsyncEnumerator(Ct);
        var arrived = follow.MoveNextAsync().AsTask();
        await _harness.Store.WaitStartedAsync(name, Ct);

        await producer.AppendAsync("now"u8.ToArray(), Ct);

        Assert.True(await arrived); // no FlushAsync: the live reader is the signal that the batch went out
        Assert.Equal("now", Encoding.UTF8.GetString(follow.Current.Data.Span));
    }

    [Fact]
    public async Task JSON_messages_are_batched_as_one_array_and_read_back_one_by_one()
    {
        var name = await CreateAsync("application/json");
        await using var producer = Client.CreateProducer(name, "p1", contentType: "application/json", options: LongLinger);

        await producer.AppendAsync("""{"id":1}"""u8.ToArray(), Ct);
        await producer.AppendAsync("[2,3]"u8.ToArray(), Ct);
        await producer.AppendAsync("\"four\""u8.ToArray(), Ct);
        await producer.FlushAsync(Ct);

        var messages = await Client.ReadJsonAsync(name, cancellationToken: Ct).ToListAsync(Ct);
        Assert.Equal(["""{"id":1}""", "[2,3]", "\"four\""], messages.Select(m => m.GetRawText()));
        Assert.Equal(1, Faults.Count(HttpMethod.Post));
    }

    [Fact]
    public async Task A_batch_whose_response_is_lost_is_resent_with_the_same_seq_and_stored_once()
    {
        var name = await CreateAsync("text/plain");
        Faults.Decide = (request, index) => request.Method == HttpMethod.Post && index == 0 ? Fault.LoseResponse : Fault.None;
        await using var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: LongLinger);

        await producer.AppendAsync("exactly-once"u8.ToArray(), Ct);
        await producer.FlushAsync(Ct);
        await producer.AppendAsync("|next"u8.ToArray(), Ct);
        await producer.FlushAsync(Ct);

        Assert.Equal("exactly-once|next", await ReadTextAsync(name));
        var posts = Faults.Requests.Where(r => r.Method == HttpMethod.Post).Select(r => r.Status).ToList();
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.NoContent, HttpStatusCode.OK], posts); // processed, deduplicated, next
        Assert.Equal(2, producer.NextSeq);
    }

    [Fact]
    public async Task A_batch_answered_503_is_resent_and_stored_once()
    {
        var name = await CreateAsync("text/plain");
        Faults.Decide = (request, index) => request.Method == HttpMethod.Post && index == 0 ? Fault.ServiceUnavailable : Fault.None;
        await using var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: LongLinger);

        await producer.AppendAsync("x"u8.ToArray(), Ct);
        await producer.FlushAsync(Ct);

        Assert.Equal("x", await ReadTextAsync(name));
        Assert.Equal(2, Faults.Count(HttpMethod.Post));
    }

    [Fact]
    public async Task Auto_claim_after_a_403_moves_to_the_server_epoch_plus_one_and_restarts_seq()
    {
        var name = await CreateAsync("text/plain");
        await using (var previous = Client.CreateProducer(name, "shared", epoch: 5, "text/plain", options: LongLinger))
        {
            await previous.AppendAsync("a"u8.ToArray(), Ct);
            await previous.FlushAsync(Ct);
            await previous.AppendAsync("b"u8.ToArray(), Ct);
        }
        await using var producer = Client.CreateProducer(name, "shared", epoch: 0, "text/plain", options: LongLinger);

        await producer.AppendAsync("c"u8.ToArray(), Ct);
        await producer.FlushAsync(Ct);
        await producer.AppendAsync("d"u8.ToArray(), Ct);
        await producer.FlushAsync(Ct);

        Assert.Equal("abcd", await ReadTextAsync(name));
        Assert.Equal(6, producer.Epoch);
        Assert.Equal(2, producer.NextSeq);
        var statuses = Faults.Requests.Where(r => r.Method == HttpMethod.Post).Select(r => r.Status).ToList();
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.Forbidden, HttpStatusCode.OK, HttpStatusCode.OK], statuses);
    }

    [Fact]
    public async Task CloseAsync_with_closeStream_flushes_then_closes_the_stream()
    {
        var name = await CreateAsync("text/plain");
        var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: LongLinger);

        await producer.AppendAsync("final"u8.ToArray(), Ct);
        await producer.CloseAsync(closeStream: true, Ct);

        var chunks = await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);
        Assert.Equal("final", DurableStreamClientTests.Text(chunks));
        Assert.True(chunks[^1].StreamClosed);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => producer.AppendAsync("late"u8.ToArray(), Ct).AsTask());
        await producer.DisposeAsync();
    }

    [Fact]
    public async Task DisposeAsync_flushes_what_is_queued()
    {
        var name = await CreateAsync("text/plain");

        await using (var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: LongLinger))
        {
            await producer.AppendAsync("kept"u8.ToArray(), Ct);
        }

        Assert.Equal("kept", await ReadTextAsync(name));
    }

    private async Task<string> CreateAsync(string contentType)
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = contentType }, Ct);
        return name;
    }

    private async Task<string> ReadTextAsync(string name) =>
        DurableStreamClientTests.Text(await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct));
}
