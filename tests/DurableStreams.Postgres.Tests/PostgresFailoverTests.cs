using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// The database's own failover under load (issue 19): a primary and a synchronous standby
/// (<see cref="ReplicatedPostgres"/>), two <c>serve --postgres</c> nodes on the multi-host connection string, an
/// idempotent producer and a plain appender writing through each node, a live long-poll reader on each node tailing
/// the stream the other node writes; the primary is SIGKILLed mid-run and, once both nodes answer 503, the standby is
/// promoted. Every acknowledged append must be there exactly once and in order, and both readers must receive
/// everything (the last part only through a LISTEN re-established on the promoted node); a node started afterwards
/// serves the subscription and the signing key (JWKS) made before the kill. Category
/// <c>PostgresFailover</c>; the measured pause and counts go to the test output.
/// </summary>
[Trait("Category", "PostgresFailover")]
public sealed class PostgresFailoverTests(PostgresServer server)
{
    private const int AppendsPerWriter = 150;
    private const int KillAfterAcks = 100;
    private const string EndMarker = "end;";

    /// <summary>Bound of every wait; a run takes well under it, so reaching it means something is stuck.</summary>
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Back-off after a 503 (the server says Retry-After: 1); shorter so the measured pause shows when the node could
    /// serve again, not when a client chose to come back.
    /// </summary>
    private static readonly TimeSpan s_backoff = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// How long the primary stays dead before the standby is promoted, standing in for a failover manager's decision
    /// (Patroni's loop is 10 s). It is a scenario setting, not a wait for something: three of the LISTEN connection's
    /// 500 ms retry delays, so every node's listener and pool have found the standby still a standby before it is promoted.
    /// </summary>
    private static readonly TimeSpan s_outage = TimeSpan.FromMilliseconds(1500);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Promoting_the_synchronous_standby_under_load_loses_no_acknowledged_append_and_readers_resume()
    {
        server.SkipIfUnavailable();
        await using var pg = await ReplicatedPostgres.StartAsync(server.BinDirectory!, Ct);
        // Host Recheck Seconds=3600: Npgsql would trust for an hour that the standby is a standby and the dead primary
        // dead, so only the store's own re-check after a failure can find the promoted standby within this test.
        var connection = pg.ConnectionString + ";Timeout=2;Command Timeout=10;Host Recheck Seconds=3600";
        await using var processA = await NodeProcess.StartAsync(connection, Ct, "--long-poll-timeout", "5m");
        await using var processB = await NodeProcess.StartAsync(connection, Ct, "--long-poll-timeout", "5m");
        var run = new Run();
        using var a = new Node("A", processA, "via-a", run);
        using var b = new Node("B", processB, "via-b", run);
        run.Nodes.AddRange([a, b]);
        await a.CreateAsync();
        await b.CreateAsync();
        // Subscription state and the signing key are rows too: a subscription (on a quiet stream) and the JWKS made
        // before the kill must be what a node started after the promotion reads.
        await a.SendAsync(HttpMethod.Put, "fo-quiet", null, "text/plain", HttpStatusCode.Created);
        await a.SendAsync(HttpMethod.Put, "fo-wake", null, "application/json", HttpStatusCode.Created);
        await a.SendAsync(HttpMethod.Put, "__ds/subscriptions/fo-sub", """{"type":"pull-wake","streams":["fo-quiet"],"wake_stream":"fo-wake"}""", "application/json", HttpStatusCode.Created);
        var jwksBefore = await a.SendAsync(HttpMethod.Get, "__ds/jwks.json", null, null, HttpStatusCode.OK);

        // Each node's reader tails the stream written through the other node: after it has caught up, only a NOTIFY
        // through its own node's LISTEN connection wakes it.
        var readerA = a.ReadAsync(b.Stream);
        var readerB = b.ReadAsync(a.Stream);
        Task[] writers = [a.ProduceAsync(), a.AppendPlainAsync(), b.ProduceAsync(), b.AppendPlainAsync()];

        await Until(run.KillPoint.Task, $"{KillAfterAcks} appends acknowledged before the kill", run);
        run.KilledAt = Stopwatch.GetTimestamp();
        await pg.KillPrimaryAsync();
        run.Killed = true;
        // A real failover takes a while to decide; here the nodes must first have noticed (and cached the standby as
        // a standby), which is the case that made one node answer 503 for the whole host-recheck interval.
        await Until(Task.WhenAll(a.Saw503AfterKill.Task, b.Saw503AfterKill.Task), "both nodes answering 503 after the kill", run);
        await Task.Delay(s_outage, Ct);
        run.PromotingAt = Stopwatch.GetTimestamp();
        await pg.PromoteStandbyAsync(Ct);
        run.PromotedAt = Stopwatch.GetTimestamp();
        await Until(Task.WhenAll(writers), $"every writer having {AppendsPerWriter} appends acknowledged after the promotion", run);

        // One last append through each writing node: the other node's parked reader is woken only across nodes.
        await a.AppendMarkerAsync();
        await b.AppendMarkerAsync();
        var readA = await Until(readerA, "node A's reader receiving everything appended through B", run);
        var readB = await Until(readerB, "node B's reader receiving everything appended through A", run);
        var output = TestContext.Current.TestOutputHelper;
        output?.WriteLine(run.Summary(a, b));

        var lost = 0;
        // Node A's stream was read live on node B, and B's on A.
        foreach (var (node, read) in new[] { (a, readB), (b, readA) })
        {
            var content = await node.ReadAllAsync();
            Assert.Equal(content, read);
            lost += Verify(content, node, output);
        }
        output?.WriteLine($"acknowledged appends lost: {lost}");
        Assert.Equal(0, lost);
        Assert.Empty(run.Unexpected);

        await using (var processC = await NodeProcess.StartAsync(connection, Ct))
        {
            using var c = new Node("C", processC, "unused", run);
            Assert.Equal(jwksBefore, await c.SendAsync(HttpMethod.Get, "__ds/jwks.json", null, null, HttpStatusCode.OK));
            Assert.Contains("fo-quiet", await c.SendAsync(HttpMethod.Get, "__ds/subscriptions/fo-sub", null, null, HttpStatusCode.OK), StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Checks one stream: the producer's sequence numbers appear once each, in order; each acknowledged plain append
    /// appears exactly once and an unacknowledged one at most once, all in the order they were sent. Returns the lost count.
    /// </summary>
    private static int Verify(string content, Node node, ITestOutputHelper? output)
    {
        Assert.EndsWith(EndMarker, content, StringComparison.Ordinal);
        var tokens = content[..^EndMarker.Length].Split(';', StringSplitOptions.RemoveEmptyEntries);
        var producerSeqs = new List<int>();
        var plain = new List<int>();
        foreach (var token in tokens)
        {
            var colon = token.IndexOf(':', StringComparison.Ordinal);
            Assert.True(colon > 0, $"{node.Stream}: unexpected data '{token}'");
            var number = int.Parse(token.AsSpan(colon + 1), CultureInfo.InvariantCulture);
            if (token.AsSpan(0, colon).SequenceEqual(node.ProducerId))
            {
                producerSeqs.Add(number);
            }
            else if (token.AsSpan(0, colon).SequenceEqual(node.AppenderId))
            {
                plain.Add(number);
            }
            else
            {
                Assert.Fail($"{node.Stream}: data from an unknown writer '{token}'");
            }
        }
        // Producer: seq 0..n-1, each exactly once, in order (duplicates answered 204 were not written again).
        Assert.Equal(Enumerable.Range(0, AppendsPerWriter), producerSeqs);
        // Plain appends: in send order, none twice; every acknowledged one present.
        for (var i = 1; i < plain.Count; i++)
        {
            Assert.True(plain[i] > plain[i - 1], $"{node.Stream}: plain append {plain[i]} follows {plain[i - 1]} (out of order or twice)");
        }
        var present = plain.ToHashSet();
        var lost = node.PlainAcked.Count(k => !present.Contains(k));
        var unknownPresent = plain.Count(k => !node.PlainAcked.Contains(k));
        output?.WriteLine($"node {node.Name}: {unknownPresent} of {node.PlainUnacked.Count} plain appends answered 503 had committed");
        Assert.True(plain.All(k => node.PlainAcked.Contains(k) || node.PlainUnacked.Contains(k)), $"{node.Stream}: a plain append that was never sent");
        return lost;
    }

    private static async Task Until(Task task, string what, Run run)
    {
        try
        {
            await task.WaitAsync(s_bound, Ct);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"Waited {s_bound.TotalSeconds} s for {what}. {run.Progress()}");
        }
    }

    private static async Task<T> Until<T>(Task<T> task, string what, Run run)
    {
        await Until((Task)task, what, run);
        return await task;
    }

    /// <summary>What all writers and readers share: the kill trigger, timestamps and counters.</summary>
    private sealed class Run
    {
        private int _acked;
        private volatile bool _killed;
        private long _promotingAt;

        public TaskCompletionSource KillPoint { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentQueue<string> Unexpected { get; } = new();

        public long KilledAt { get; set; }

        /// <summary>When the promotion was started (the nodes had answered 503 since the kill).</summary>
        public long PromotingAt
        {
            get => Volatile.Read(ref _promotingAt);
            set => Volatile.Write(ref _promotingAt, value);
        }

        public long PromotedAt { get; set; }

        public bool Killed
        {
            get => _killed;
            set => _killed = value;
        }

        public void Acked()
        {
            if (Interlocked.Increment(ref _acked) == KillAfterAcks)
            {
                KillPoint.TrySetResult();
            }
        }

        public List<Node> Nodes { get; } = [];

        public string Progress() =>
            $"Acknowledged so far: {Volatile.Read(ref _acked)}; " +
            string.Join("; ", Nodes.Select(n => $"node {n.Name}: {n.AckedCount} acknowledged, {n.Unavailable} 503s, its reader has {n.ReaderProgress}")) +
            $"; unexpected: {string.Join(" | ", Unexpected)}";

        public string Summary(Node a, Node b)
        {
            var text = new StringBuilder();
            text.AppendLine(CultureInfo.InvariantCulture,
                $"kill -> promotion started (both nodes answering 503, then the outage): {Stopwatch.GetElapsedTime(KilledAt, PromotingAt).TotalMilliseconds:F0} ms; pg_ctl promote took {Stopwatch.GetElapsedTime(PromotingAt, PromotedAt).TotalMilliseconds:F0} ms");
            foreach (var node in new[] { a, b })
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"node {node.Name}: kill -> first acknowledged append after promotion {node.PauseMilliseconds(KilledAt):F0} ms " +
                    $"(promotion start -> it {node.PauseMilliseconds(PromotingAt):F0} ms); acknowledged {node.AckedCount}, 503s {node.Unavailable} " +
                    $"(without Retry-After: {node.MissingRetryAfter}), producer retries {node.ProducerRetries}, duplicates (204) {node.Duplicates}, " +
                    $"plain appends answered 503 {node.PlainUnacked.Count}, reader 503s {node.ReaderUnavailable}");
            }
            return text.ToString().TrimEnd();
        }
    }

    /// <summary>One <c>serve</c> node: the stream written through it, its writers and its reader.</summary>
    private sealed class Node(string name, NodeProcess process, string stream, Run run) : IDisposable
    {
        private readonly HttpClient _client = new() { BaseAddress = process.StreamsUrl, Timeout = TimeSpan.FromSeconds(30) };

        // A parked long-poll is bounded by the test's own wait (with a message saying what is missing), not by a client timeout.
        private readonly HttpClient _reader = new() { BaseAddress = process.StreamsUrl, Timeout = Timeout.InfiniteTimeSpan };
        private long _firstAckAfterPromotion;
        private int _acked;
        private int _unavailable;
        private int _missingRetryAfter;
        private int _producerRetries;
        private int _duplicates;
        private int _readerUnavailable;
        private volatile string _readerProgress = "nothing";

        public string Name { get; } = name;

        public string Stream { get; } = stream;

        public string ProducerId => "p-" + Name;

        public string AppenderId => "q-" + Name;

        public TaskCompletionSource Saw503AfterKill { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentDictionary<int, byte> PlainAckedSet { get; } = new();

        public ICollection<int> PlainAcked => PlainAckedSet.Keys;

        public ConcurrentBag<int> PlainUnacked { get; } = [];

        public int AckedCount => Volatile.Read(ref _acked);

        public int Unavailable => Volatile.Read(ref _unavailable);

        public int MissingRetryAfter => Volatile.Read(ref _missingRetryAfter);

        public int ProducerRetries => Volatile.Read(ref _producerRetries);

        public int Duplicates => Volatile.Read(ref _duplicates);

        public int ReaderUnavailable => Volatile.Read(ref _readerUnavailable);

        public string ReaderProgress => _readerProgress;

        /// <summary>From <paramref name="from"/> to this node's first append acknowledged after the promotion started.</summary>
        public double PauseMilliseconds(long from) =>
            Volatile.Read(ref _firstAckAfterPromotion) is var at && at > 0 ? Stopwatch.GetElapsedTime(from, at).TotalMilliseconds : double.NaN;

        public void Dispose()
        {
            _client.Dispose();
            _reader.Dispose();
        }

        public async Task CreateAsync()
        {
            using var created = await _client.PutAsync(Stream, new ByteArrayContent([]) { Headers = { ContentType = new MediaTypeHeaderValue("text/plain") } }, Ct);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        /// <summary>An idempotent producer: each (epoch 0, seq) is retried, unchanged, until it is acknowledged.</summary>
        public async Task ProduceAsync()
        {
            await Task.Yield();
            for (var seq = 0; seq < AppendsPerWriter; seq++)
            {
                var body = $"{ProducerId}:{seq};";
                for (var attempt = 0; ; attempt++)
                {
                    if (attempt > 0)
                    {
                        Interlocked.Increment(ref _producerRetries);
                    }
                    using var request = new HttpRequestMessage(HttpMethod.Post, Stream) { Content = new StringContent(body, Encoding.UTF8, "text/plain") };
                    request.Headers.Add(ProtocolHeaders.ProducerId, ProducerId);
                    request.Headers.Add(ProtocolHeaders.ProducerEpoch, "0");
                    request.Headers.Add(ProtocolHeaders.ProducerSeq, seq.ToString(CultureInfo.InvariantCulture));
                    var outcome = await SendAsync(request, $"producer seq {seq}");
                    if (outcome == HttpStatusCode.NoContent)
                    {
                        Interlocked.Increment(ref _duplicates);
                    }
                    if (outcome is HttpStatusCode.OK or HttpStatusCode.NoContent)
                    {
                        break;
                    }
                }
            }
        }

        /// <summary>Plain appends (no producer): one that got 503 may or may not have committed, so it is not resent.</summary>
        public async Task AppendPlainAsync()
        {
            await Task.Yield();
            for (var k = 0; PlainAckedSet.Count < AppendsPerWriter; k++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, Stream) { Content = new StringContent($"{AppenderId}:{k};", Encoding.UTF8, "text/plain") };
                if (await SendAsync(request, $"plain append {k}") == HttpStatusCode.NoContent)
                {
                    PlainAckedSet.TryAdd(k, 0);
                }
                else
                {
                    PlainUnacked.Add(k);
                }
            }
        }

        /// <summary>One request that must get <paramref name="expected"/>; returns the body.</summary>
        public async Task<string> SendAsync(HttpMethod method, string path, string? body, string? contentType, HttpStatusCode expected)
        {
            using var request = new HttpRequestMessage(method, path);
            if (contentType is not null)
            {
                request.Content = new StringContent(body ?? "", Encoding.UTF8);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
            }
            using var response = await _client.SendAsync(request, Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == expected, $"node {Name}: {method} {path} answered {(int)response.StatusCode} {text}, expected {(int)expected}");
            return text;
        }

        public async Task AppendMarkerAsync()
        {
            using var marker = await _client.PostAsync(Stream, new StringContent(EndMarker, Encoding.UTF8, "text/plain"), Ct);
            Assert.Equal(HttpStatusCode.NoContent, marker.StatusCode);
        }

        /// <summary>Sends one append; returns 200/204 when acknowledged, 503 (after the back-off) when not; fails on anything else.</summary>
        private async Task<HttpStatusCode> SendAsync(HttpRequestMessage request, string what)
        {
            using var response = await _client.SendAsync(request, Ct);
            if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.NoContent)
            {
                Interlocked.Increment(ref _acked);
                run.Acked();
                if (run.PromotingAt != 0)
                {
                    Interlocked.CompareExchange(ref _firstAckAfterPromotion, Stopwatch.GetTimestamp(), 0);
                }
                return response.StatusCode;
            }
            if (response.StatusCode != HttpStatusCode.ServiceUnavailable)
            {
                var message = $"node {Name}, {what}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}";
                run.Unexpected.Enqueue(message);
                Assert.Fail(message);
            }
            Interlocked.Increment(ref _unavailable);
            if (response.Headers.RetryAfter?.Delta is null)
            {
                Interlocked.Increment(ref _missingRetryAfter);
                run.Unexpected.Enqueue($"node {Name}, {what}: 503 without Retry-After");
            }
            if (run.Killed)
            {
                Saw503AfterKill.TrySetResult();
            }
            await Task.Delay(s_backoff, Ct);
            return HttpStatusCode.ServiceUnavailable;
        }

        /// <summary>A live long-poll reader on this node: everything of <paramref name="target"/> up to the end marker.</summary>
        public async Task<string> ReadAsync(string target)
        {
            await Task.Yield();
            var received = new StringBuilder();
            var offset = "-1";
            while (true)
            {
                using var response = await _reader.GetAsync($"{target}?offset={offset}&live=long-poll", Ct);
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                {
                    Interlocked.Increment(ref _readerUnavailable);
                    await Task.Delay(s_backoff, Ct);
                    continue;
                }
                if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.NoContent))
                {
                    var message = $"node {Name}'s reader: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}";
                    run.Unexpected.Enqueue(message);
                    Assert.Fail(message);
                }
                received.Append(await response.Content.ReadAsStringAsync(Ct));
                offset = response.Headers.GetValues(ProtocolHeaders.StreamNextOffset).Single();
                _readerProgress = $"{received.Length} bytes, offset {offset}";
                if (received.Length >= EndMarker.Length && received.ToString(received.Length - EndMarker.Length, EndMarker.Length) == EndMarker)
                {
                    return received.ToString();
                }
            }
        }

        /// <summary>The whole stream by catch-up reads.</summary>
        public async Task<string> ReadAllAsync()
        {
            var content = new StringBuilder();
            var offset = "-1";
            while (true)
            {
                using var response = await _client.GetAsync($"{Stream}?offset={offset}", Ct);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                content.Append(await response.Content.ReadAsStringAsync(Ct));
                offset = response.Headers.GetValues(ProtocolHeaders.StreamNextOffset).Single();
                if (response.Headers.Contains(ProtocolHeaders.StreamUpToDate))
                {
                    return content.ToString();
                }
            }
        }
    }
}
