using System.Collections.Concurrent;
using System.Net;
using System.Text;
using DurableStreams.Client.Tests.Infrastructure;
using DurableStreams.Protocol;
using Microsoft.Extensions.Logging;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>Several producer batches in flight at once (MaxInFlight), against the real server with injected faults.</summary>
public sealed class PipelinedProducerTests : IAsyncLifetime
{
    // One 5-byte message per batch, sent only on flush: every test below puts ten batches on the wire at once.
    private static readonly IdempotentProducerOptions Pipelined = new() { Linger = TimeSpan.FromMinutes(5), MaxBatchBytes = 5, MaxInFlight = 5 };

    private ClientHarness _harness = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DurableStreamClient Client => _harness.Client;

    private FaultHandler Faults => _harness.Faults;

    public async ValueTask InitializeAsync() => _harness = await ClientHarness.StartAsync(cancellationToken: Ct);

    public ValueTask DisposeAsync() => _harness.DisposeAsync();

    [Fact]
    public async Task A_batch_that_overtakes_its_predecessor_is_resent_after_it_and_order_is_kept()
    {
        var name = await CreateAsync();
        var secondAnswered = new TaskCompletionSource<HttpStatusCode>(TaskCreationOptions.RunContinuationsAsynchronously);
        // Hold seq 0 back until the server has answered seq 1: only a pipelining producer gets seq 1 out while seq 0 is
        // unanswered (with one batch in flight this test times out), and the server must see seq 1 first.
        Faults.BeforeForwardAsync = request => Seq(request) == "0" ? secondAnswered.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct) : Task.CompletedTask;
        Faults.AfterResponse = (request, response) =>
        {
            if (Seq(request) == "1")
            {
                secondAnswered.TrySetResult(response.StatusCode);
            }
        };
        await using var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: Pipelined);

        await AppendTenAsync(producer);
        await producer.FlushAsync(Ct);

        Assert.Equal(HttpStatusCode.Conflict, await secondAnswered.Task); // 409 with Producer-Expected-Seq: 0
        Assert.Equal(Expected, await ReadTextAsync(name));
        Assert.Equal(10, producer.NextSeq);
        Assert.Equal((await Client.GetMetadataAsync(name, Ct)).NextOffset, producer.NextOffset);
    }

    [Fact]
    public async Task A_pipelined_batch_whose_response_is_lost_is_resent_with_the_same_seq_and_stored_once()
    {
        var name = await CreateAsync();
        var sent = new ConcurrentQueue<(string Seq, string Epoch)>();
        var lost = 0;
        Faults.Decide = (request, _) =>
        {
            if (request.Method != HttpMethod.Post)
            {
                return Fault.None;
            }
            sent.Enqueue((Seq(request)!, request.Headers.GetValues(ProtocolHeaders.ProducerEpoch).Single()));
            // Seq 0 has no predecessor, so its first attempt is always stored (later seqs may first be answered 409).
            return Seq(request) == "0" && Interlocked.Exchange(ref lost, 1) == 0 ? Fault.LoseResponse : Fault.None;
        };
        var answers = new ConcurrentQueue<(string Seq, HttpStatusCode Status)>();
        Faults.AfterResponse = (request, response) => answers.Enqueue((Seq(request)!, response.StatusCode));
        await using var producer = Client.CreateProducer(name, "p1", contentType: "text/plain", options: Pipelined);

        await AppendTenAsync(producer);
        await producer.FlushAsync(Ct);

        Assert.Equal(Expected, await ReadTextAsync(name));
        var resends = sent.Where(s => s.Seq == "0").ToList();
        Assert.Equal(2, resends.Count);
        Assert.All(resends, s => Assert.Equal("0", s.Epoch)); // the same (id, epoch, seq) both times
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.NoContent], answers.Where(a => a.Seq == "0").Select(a => a.Status)); // stored (response lost), then a duplicate
    }

    [Fact]
    public async Task Auto_claim_renumbers_batches_in_flight_in_order()
    {
        var name = await CreateAsync();
        await using (var previous = Client.CreateProducer(name, "shared", epoch: 3, "text/plain"))
        {
            await previous.AppendAsync("old|"u8.ToArray(), Ct);
        }
        await using var producer = Client.CreateProducer(name, "shared", epoch: 0, "text/plain", options: Pipelined);

        await AppendTenAsync(producer);
        await producer.FlushAsync(Ct);

        Assert.Equal("old|" + Expected, await ReadTextAsync(name));
        Assert.Equal(4, producer.Epoch);
        Assert.Equal(10, producer.NextSeq);
    }

    [Fact]
    public void MaxInFlight_below_one_is_rejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Client.CreateProducer("x", "p", options: new() { MaxInFlight = 0 }));

    [Fact]
    public async Task The_client_logs_each_request_and_response_status_to_its_logger_factory()
    {
        var lines = new ConcurrentQueue<string>();
        using var client = new DurableStreamClient(Client.Options with { LoggerFactory = new ListLoggerFactory(lines) });
        var name = ClientHarness.NewName();

        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);

        var url = client.StreamUrl(name);
        Assert.Equal(2, lines.Count);
        Assert.Equal($"PUT {url}", lines.First());
        Assert.StartsWith($"201 Created for PUT {url} in ", lines.Last(), StringComparison.Ordinal);
    }

    private static string Expected => string.Concat(Enumerable.Range(0, 10).Select(i => $"m{i:D3}|"));

    private static string? Seq(HttpRequestMessage request) =>
        request.Headers.TryGetValues(ProtocolHeaders.ProducerSeq, out var values) ? values.Single() : null;

    private static async Task AppendTenAsync(IdempotentProducer producer)
    {
        for (var i = 0; i < 10; i++)
        {
            await producer.AppendAsync(Encoding.UTF8.GetBytes($"m{i:D3}|"), Ct);
        }
    }

    private async Task<string> CreateAsync()
    {
        var name = ClientHarness.NewName();
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        return name;
    }

    private async Task<string> ReadTextAsync(string name) =>
        DurableStreamClientTests.Text(await Client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct));

    private sealed class ListLoggerFactory(ConcurrentQueue<string> lines) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => new ListLogger(lines);

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }

        private sealed class ListLogger(ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Enqueue(formatter(state, exception));
        }
    }
}
