using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace DurableStreams.Bench;

/// <summary>Scenarios 8-10 and 16: idempotent producers, live fan-out (HttpClient or raw socket readers), and the memory cost of idle SSE subscribers.</summary>
internal static class LiveScenarios
{
    private const int Writers = 64;
    private const int LongPollReaders = 200;
    private const int SseReaders = 200;
    private const int MessagesPerSecond = 50;
    private const int IdleSubscribers = 1000;

    // Scenario 8: 64 idempotent producers (Producer-Id/Epoch/Seq), each on its own stream, 100 B per append.
    public static async Task<CellResult> ProducerAppendsAsync(CellContext context, CancellationToken cancellationToken)
    {
        using var client = Protocol.CreateClient(Writers);
        var streams = new Uri[Writers];
        for (var i = 0; i < Writers; i++)
        {
            streams[i] = context.Stream($"producer-{i}");
            await Protocol.CreateAsync(client, streams[i], Protocol.OctetStream, cancellationToken);
        }

        var (warmupEnd, end) = context.Schedule();
        var cpu = CpuMeter.Start(context.Server.Pid, warmupEnd, end);
        var logs = await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(
            async () =>
            {
                var log = new WriterLog();
                var body = new byte[Record.Size];
                var previous = string.Empty;
                for (long seq = 0; ; seq++)
                {
                    var start = Stopwatch.GetTimestamp();
                    if (start >= end)
                    {
                        return log;
                    }

                    Record.Write(body, w, seq);
                    var (status, offset) = await ProducerAppendAsync(client, streams[w], $"bench-{w}", seq, body, cancellationToken);
                    if (status != HttpStatusCode.OK && status != HttpStatusCode.NoContent)
                    {
                        throw new BenchFailureException($"producer append {w}/{seq} answered {(int)status}");
                    }

                    if (string.CompareOrdinal(offset, previous) <= 0)
                    {
                        throw new BenchFailureException($"producer append returned offset {offset}, not after {previous}");
                    }

                    previous = offset;
                    log.Acknowledged++;
                    log.Offsets.Add(offset);
                    if (start >= warmupEnd)
                    {
                        log.Measured++;
                        log.LastMeasuredDone = Stopwatch.GetTimestamp();
                    }
                }
            },
            cancellationToken)));

        var measured = logs.Sum(l => l.Measured);
        if (measured == 0)
        {
            throw new BenchFailureException("no append completed after the warm-up");
        }

        var metrics = new Dictionary<string, double>
        {
            ["appends/s"] = measured / Stats.Seconds(logs.Max(l => l.LastMeasuredDone) - warmupEnd),
        };
        if (await cpu.MicrosecondsPerOpAsync(measured) is { } perOp)
        {
            metrics["srv cpu us/op"] = perOp;
        }

        // Verify: a retry of each writer's last request is deduplicated (no new offset, no new bytes), and every
        // stream holds exactly the acknowledged records once, in order.
        for (var w = 0; w < Writers; w++)
        {
            var last = logs[w].Acknowledged - 1;
            if (last < 0)
            {
                throw new BenchFailureException($"writer {w} acknowledged nothing");
            }

            var body = new byte[Record.Size];
            Record.Write(body, w, last);
            var (status, offset) = await ProducerAppendAsync(client, streams[w], $"bench-{w}", last, body, cancellationToken);
            // 204 = duplicate (§5.2.1); an offset, if the server sends one, must be the original append's.
            if (status != HttpStatusCode.NoContent || (offset.Length > 0 && offset != logs[w].Offsets[^1]))
            {
                throw new BenchFailureException($"a retried producer append answered {(int)status} at '{offset}', expected 204 (at {logs[w].Offsets[^1]})");
            }

            var (bodies, tail) = await Protocol.ReadAllAsync(client, streams[w], json: false, maxRequests: 100_000, cancellationToken);
            Record.VerifyStream(bodies, new Dictionary<int, long> { [w] = logs[w].Acknowledged });
            if (tail != logs[w].Offsets[^1])
            {
                throw new BenchFailureException($"read ended at {tail}, the last append returned {logs[w].Offsets[^1]}");
            }
        }

        return new CellResult(metrics, Info: $"{logs.Sum(l => l.Acknowledged)} producer appends verified, {Writers} retries deduplicated");
    }

    private static async Task<(HttpStatusCode Status, string Offset)> ProducerAppendAsync(
        HttpClient client, Uri stream, string producer, long seq, byte[] body, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(Protocol.OctetStream);
        using var request = new HttpRequestMessage(HttpMethod.Post, stream) { Content = content };
        request.Headers.Add("Producer-Id", producer);
        request.Headers.Add("Producer-Epoch", "0");
        request.Headers.Add("Producer-Seq", seq.ToString(CultureInfo.InvariantCulture));
        using var response = await client.SendAsync(request, cancellationToken);
        var offset = response.Headers.TryGetValues("Stream-Next-Offset", out var values) ? values.First() : string.Empty;
        return (response.StatusCode, offset);
    }

    // Scenarios 9, 16 and 17: 200 long-poll and 200 SSE readers tail one JSON stream while a writer appends 50
    // messages/s; each message carries its send time, each reader records when it arrived. Scenario 16's readers are raw
    // sockets (on two cores HttpClient costs about as much CPU per delivery as the server, which inflates the measured
    // p99); 17's are the same received on one epoll thread (EpollReceiver), leaner still.
    public static Task<CellResult> FanOutAsync(CellContext context, bool rawSockets, bool epoll, CancellationToken cancellationToken) =>
        FanOutAsync(context, rawSockets, epoll, LongPollReaders, SseReaders, dropOne: false, cancellationToken);

    // Scenario 20 runs the same with more readers (--fanout-readers); dropOne makes one reader forget a message (self-check).
    public static async Task<CellResult> FanOutAsync(
        CellContext context, bool rawSockets, bool epoll, int longPollReaders, int sseReaders, bool dropOne, CancellationToken cancellationToken)
    {
        using var receiver = epoll ? new EpollReceiver() : null;
        using var client = Protocol.CreateClient(longPollReaders + sseReaders + 4);
        var stream = context.Stream("fan-out");
        var initial = await Protocol.CreateAsync(client, stream, Protocol.Json, cancellationToken);
        var clock = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var longPoll = Enumerable.Range(0, longPollReaders).Select(_ => new FanOutReader()).ToArray();
        var sse = Enumerable.Range(0, sseReaders).Select(_ => new FanOutReader()).ToArray();
        if (dropOne)
        {
            (sse.Length > 0 ? sse[^1] : longPoll[^1]).DropOne = true;
        }

        var readerTasks = longPoll.Select(r => Task.Run(
                () => rawSockets ? r.LongPollRawAsync(stream, initial, clock, receiver, stop.Token) : r.LongPollAsync(client, stream, initial, clock, stop.Token),
                CancellationToken.None))
            .Concat(sse.Select(r => Task.Run(
                () => rawSockets ? r.SseRawAsync(stream, initial, clock, receiver, stop.Token) : r.SseAsync(client, stream, initial, clock, stop.Token),
                CancellationToken.None)))
            .ToArray();

        // Wait until the server has taken every reader (see FanOutReader.Connected), so all readers start from the first
        // message and none joins late.
        await Task.WhenAll(longPoll.Concat(sse).Select(r => r.Connected.Task)).WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);

        var (warmupEnd, end) = context.Schedule();

        // This process's CPU over the measured window (readers plus the writer), to compare the two kinds of reader, and
        // the server's: on two shared cores their sum per delivery, times 400 readers, bounds how soon the last one is served.
        var clientCpu = CpuMeter.Start(Environment.ProcessId, warmupEnd, end);
        var serverCpu = CpuMeter.Start(context.Server.Pid, warmupEnd, end);
        var interval = TimeSpan.FromSeconds(1.0 / MessagesPerSecond);
        var sent = 0;
        var measuredFrom = -1;
        var writerStart = Stopwatch.GetTimestamp();
        using (var timer = new PeriodicTimer(interval))
        {
            while (Stopwatch.GetTimestamp() < end && await timer.WaitForNextTickAsync(cancellationToken))
            {
                if (measuredFrom < 0 && Stopwatch.GetTimestamp() >= warmupEnd)
                {
                    measuredFrom = sent;
                }

                var message = string.Create(CultureInfo.InvariantCulture, $$"""{"s":{{sent}},"t":{{clock.Elapsed.TotalMilliseconds:F3}}}""");
                await Protocol.AppendAsync(client, stream, Encoding.UTF8.GetBytes(message), Protocol.Json, cancellationToken);
                sent++;
            }
        }

        var writerRate = sent / Stats.Seconds(Stopwatch.GetTimestamp() - writerStart);
        await Protocol.AppendAsync(client, stream, """{"s":-1,"t":0}"""u8.ToArray(), Protocol.Json, cancellationToken);
        // Yield: with scenario 17 the last reader finishes on the epoll thread, which must not run the rest of this method.
        await Task.WhenAll(readerTasks).WaitAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);

        foreach (var reader in longPoll.Concat(sse))
        {
            reader.Verify(sent);
        }

        var metrics = new Dictionary<string, double>
        {
            ["long-poll p50 ms"] = Percentile(longPoll, measuredFrom, 50),
            ["long-poll p99 ms"] = Percentile(longPoll, measuredFrom, 99),
            ["sse p50 ms"] = Percentile(sse, measuredFrom, 50),
            ["sse p99 ms"] = Percentile(sse, measuredFrom, 99),
            ["writer msg/s"] = writerRate,
        };
        if (epoll && longPoll.Concat(sse).All(r => r.SocketLatencies.Count > 0))
        {
            // Scenario 17: the same deliveries timed at the readers' sockets, which leaves out the readers' own queue.
            metrics["long-poll socket p99 ms"] = Percentile(longPoll, measuredFrom, 99, socket: true);
            metrics["sse socket p99 ms"] = Percentile(sse, measuredFrom, 99, socket: true);
        }
        var deliveries = (double)(sent - Math.Max(0, measuredFrom)) * (longPollReaders + sseReaders);
        var cpu = string.Empty;
        if (measuredFrom >= 0 && await clientCpu.MicrosecondsPerOpAsync(deliveries) is { } clientUs && await serverCpu.MicrosecondsPerOpAsync(deliveries) is { } serverUs)
        {
            cpu = string.Create(CultureInfo.InvariantCulture, $", cpu per delivery: server {serverUs:0.0} us, client {clientUs:0.0} us");
        }
        return new CellResult(metrics, Info: $"{sent} messages x {longPollReaders + sseReaders} readers verified{cpu}");
    }

    private static double Percentile(IEnumerable<FanOutReader> readers, int from, double percentile, bool socket = false)
    {
        var all = readers.SelectMany(r => (socket ? r.SocketLatencies : r.Latencies).Where(l => l.Sequence >= Math.Max(0, from)).Select(l => l.Ticks)).ToList();
        return Stats.PercentileMs(all, percentile);
    }

    // Scenario 10: 1,000 SSE subscribers parked on one stream: the server's resident memory before and after.
    public static async Task<CellResult> IdleSubscribersAsync(CellContext context, CancellationToken cancellationToken)
    {
        using var client = Protocol.CreateClient(IdleSubscribers + 4);
        var stream = context.Stream("idle");
        var initial = await Protocol.CreateAsync(client, stream, Protocol.Json, cancellationToken);

        // A few subscribers first, so one-time costs (code paths, pools) are not charged to the thousand.
        await using (var warm = await SubscribersAsync(client, stream, initial, 20, cancellationToken))
        {
        }

        GC.Collect();
        await Task.Delay(500, cancellationToken);
        var before = ProcessMemory.ResidentMiB(context.Server.Pid);
        await using var subscribers = await SubscribersAsync(client, stream, initial, IdleSubscribers, cancellationToken);
        await Task.Delay(1000, cancellationToken);
        var after = ProcessMemory.ResidentMiB(context.Server.Pid);

        // Verify: every subscriber is live and receives the next message.
        await Protocol.AppendAsync(client, stream, """{"s":-1,"t":0}"""u8.ToArray(), Protocol.Json, cancellationToken);
        await subscribers.WaitAllAsync(cancellationToken);
        if (before is null || after is null)
        {
            return new CellResult(new Dictionary<string, double>(), Note: "no /proc: RSS not measured");
        }

        return new CellResult(
            new Dictionary<string, double> { ["added RSS MiB"] = after.Value - before.Value },
            Info: $"{IdleSubscribers} subscribers each received the wake-up message");
    }

    private static async Task<SubscriberSet> SubscribersAsync(HttpClient client, Uri stream, string offset, int count, CancellationToken cancellationToken)
    {
        var set = new SubscriberSet(cancellationToken);
        var readers = Enumerable.Range(0, count).Select(_ => new FanOutReader()).ToArray();
        var clock = Stopwatch.StartNew();
        set.Tasks = readers.Select(r => Task.Run(() => r.SseAsync(client, stream, offset, clock, set.Stop.Token), CancellationToken.None)).ToArray();
        await Task.WhenAll(readers.Select(r => r.Connected.Task)).WaitAsync(TimeSpan.FromSeconds(120), cancellationToken);
        return set;
    }

    /// <summary>SSE subscribers that end when they see the terminator message (s = -1) or on dispose.</summary>
    private sealed class SubscriberSet(CancellationToken cancellationToken) : IAsyncDisposable
    {
        public CancellationTokenSource Stop { get; } = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        public Task[] Tasks { get; set; } = [];

        public Task WaitAllAsync(CancellationToken token) => Task.WhenAll(Tasks).WaitAsync(TimeSpan.FromSeconds(60), token);

        public async ValueTask DisposeAsync()
        {
            await Stop.CancelAsync();
            try
            {
                await Task.WhenAll(Tasks);
            }
            catch (OperationCanceledException)
            {
            }

            Stop.Dispose();
        }
    }
}

/// <summary>One live reader: records (sequence, latency) for every message until the terminator (s = -1).</summary>
internal sealed class FanOutReader
{
    /// <summary>
    /// Set once the server has answered this reader (SSE: its first control event; long-poll: a first catch-up read),
    /// so the writer can wait for all of them. A long-poll reader whose first request a busy server takes only after
    /// the appends began joins late; on the reference's file store such a read can even return an append still being
    /// fsynced, whose offset a later read then takes back (a duplicate delivery).
    /// </summary>
    public TaskCompletionSource Connected { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public List<(int Sequence, long Ticks)> Latencies { get; } = [];

    /// <summary>As <see cref="Latencies"/>, to when the bytes reached the reader's socket (kernel receive stamps; scenario 17 only).</summary>
    public List<(int Sequence, long Ticks)> SocketLatencies { get; } = [];

    private readonly List<int> _sequences = [];

    /// <summary>Self-check of the verification: forget the first message received (the cell must then fail).</summary>
    public bool DropOne { get; set; }

    public async Task LongPollAsync(HttpClient client, Uri stream, string offset, Stopwatch clock, CancellationToken cancellationToken)
    {
        using (var first = await client.GetAsync(Protocol.ReadUri(stream, offset), HttpCompletionOption.ResponseContentRead, cancellationToken))
        {
            if (first.StatusCode != HttpStatusCode.OK)
            {
                throw new BenchFailureException($"catch-up GET answered {(int)first.StatusCode}");
            }

            offset = Protocol.NextOffset(first, "catch-up GET");
            _ = Take(await first.Content.ReadAsByteArrayAsync(cancellationToken), clock.Elapsed.TotalMilliseconds);
        }

        Connected.TrySetResult();
        while (true)
        {
            using var response = await client.GetAsync(Protocol.ReadUri(stream, offset, longPoll: true), HttpCompletionOption.ResponseContentRead, cancellationToken);
            var arrived = clock.Elapsed.TotalMilliseconds;
            if (response.StatusCode == HttpStatusCode.NoContent)
            {
                offset = Protocol.NextOffset(response, "long-poll GET");
                continue;
            }

            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new BenchFailureException($"long-poll answered {(int)response.StatusCode}");
            }

            offset = Protocol.NextOffset(response, "long-poll GET");
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            if (Take(body, arrived))
            {
                return;
            }
        }
    }

    public async Task SseAsync(HttpClient client, Uri stream, string offset, Stopwatch clock, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(stream.AbsoluteUri + "?offset=" + Uri.EscapeDataString(offset) + "&live=sse"));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new BenchFailureException($"SSE answered {(int)response.StatusCode}");
        }

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var lines = new StreamReader(body, Encoding.UTF8);
        string? eventType = null;
        var data = new StringBuilder();
        try
        {
            while (await lines.ReadLineAsync(cancellationToken) is { } line)
            {
                if (line.Length == 0)
                {
                    if (eventType == "control")
                    {
                        Connected.TrySetResult();
                    }
                    else if (eventType == "data" && Take(Encoding.UTF8.GetBytes(data.ToString()), clock.Elapsed.TotalMilliseconds))
                    {
                        return;
                    }

                    eventType = null;
                    data.Clear();
                }
                else if (line.StartsWith("event:", StringComparison.Ordinal))
                {
                    eventType = line[6..].Trim();
                }
                else if (line.StartsWith("data:", StringComparison.Ordinal))
                {
                    data.Append(data.Length > 0 ? "\n" : string.Empty).Append(line.AsSpan(line.StartsWith("data: ", StringComparison.Ordinal) ? 6 : 5));
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return;
        }

        throw new BenchFailureException("an SSE stream ended before the terminator message");
    }

    /// <summary>As <see cref="LongPollAsync"/>, over a raw socket (<see cref="RawReadConnection"/>).</summary>
    public async Task LongPollRawAsync(Uri stream, string offset, Stopwatch clock, EpollReceiver? receiver, CancellationToken cancellationToken)
    {
        using var connection = new RawReadConnection(stream, "long-poll", offset, receiver);
        var first = await connection.GetAsync(live: false, cancellationToken);
        if (first != 200)
        {
            throw new BenchFailureException($"catch-up GET answered {first}");
        }

        var catchUp = await connection.ReadBodyAsync(cancellationToken);
        var (caughtUp, caughtUpAtSocket) = Arrival(connection, clock);
        _ = Take(catchUp, caughtUp, caughtUpAtSocket);
        connection.UseNextOffset("catch-up GET", first);
        Connected.TrySetResult();
        while (true)
        {
            var status = await connection.GetAsync(live: true, cancellationToken);
            if (status == 204)
            {
                connection.UseNextOffset("long-poll GET", status);
                continue;
            }

            if (status != 200)
            {
                throw new BenchFailureException($"long-poll answered {status}");
            }

            var body = await connection.ReadBodyAsync(cancellationToken);
            var (arrived, atSocket) = Arrival(connection, clock);
            connection.UseNextOffset("long-poll GET", status);
            if (Take(body, arrived, atSocket))
            {
                return;
            }
        }
    }

    /// <summary>As <see cref="SseAsync"/>, over a raw socket (<see cref="RawReadConnection"/>).</summary>
    public async Task SseRawAsync(Uri stream, string offset, Stopwatch clock, EpollReceiver? receiver, CancellationToken cancellationToken)
    {
        using var connection = new RawReadConnection(stream, "sse", offset, receiver);
        var events = new SseEventReader();
        try
        {
            var status = await connection.GetAsync(live: true, cancellationToken);
            if (status != 200)
            {
                throw new BenchFailureException($"SSE answered {status}");
            }

            while (await connection.ReadBodyPieceAsync(cancellationToken) is { IsEmpty: false } piece)
            {
                while (!piece.IsEmpty)
                {
                    piece = piece[events.Read(piece.Span, out var kind)..];
                    if (kind == SseEventReader.Kind.Control)
                    {
                        Connected.TrySetResult();
                    }
                    else if (kind == SseEventReader.Kind.Data)
                    {
                        var (arrived, atSocket) = Arrival(connection, clock);
                        if (Take(events.Data, arrived, atSocket))
                        {
                            return;
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return;
        }

        throw new BenchFailureException("an SSE stream ended before the terminator message");
    }

    /// <summary>
    /// The reader's arrival now on <paramref name="clock"/>, and when the bytes of the connection's last receive reached
    /// its socket on the same clock (null without kernel stamps): both from one reading of the clocks
    /// (<see cref="ArrivalClock"/>), so the stamp can be later than the arrival only if the wall clock says so.
    /// </summary>
    private static (double ArrivedMs, double? AtSocketMs) Arrival(RawReadConnection connection, Stopwatch clock)
    {
        var (arrived, realtime) = ArrivalClock.Now(clock);
        var stamp = connection.LastArrivalNs;
        return (arrived, stamp == 0 ? null : ArrivalClock.SocketMs(stamp, arrived, realtime));
    }

    /// <summary>
    /// Records the messages of one JSON array (arrival in the reader and, when known, at its socket); true when it held
    /// the terminator.
    /// </summary>
    private bool Take(ReadOnlyMemory<byte> json, double arrivedMs, double? atSocketMs = null)
    {
        // A forward-only read of the array (no document built per delivery: it was most of a reader's garbage); every
        // element must be an object with an integer "s" and a number "t", as before.
        var reader = new Utf8JsonReader(json.Span);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
        {
            throw new BenchFailureException("a delivery is not a JSON array");
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var (sequence, sentMs) = ReadMessage(ref reader);
            if (sequence < 0)
            {
                return true;
            }

            if (DropOne)
            {
                DropOne = false;
                continue;
            }

            _sequences.Add(sequence);
            Latencies.Add((sequence, (long)((arrivedMs - sentMs) * Stopwatch.Frequency / 1000.0)));
            if (atSocketMs is { } socketMs)
            {
                // Both come from one reading of the clocks (Arrival), so a later stamp means the kernel's stamp is later than
                // the wall clock read after it: a wall-clock step backwards. Allow a little for the pair's 50 µs window.
                if (socketMs > arrivedMs + 0.5)
                {
                    throw new BenchFailureException($"a kernel receive stamp ({socketMs:F3} ms) is later than the reader's arrival ({arrivedMs:F3} ms)");
                }

                SocketLatencies.Add((sequence, (long)((socketMs - sentMs) * Stopwatch.Frequency / 1000.0)));
            }
        }

        if (reader.TokenType != JsonTokenType.EndArray || reader.Read())
        {
            throw new BenchFailureException("a delivery is not one complete JSON array");
        }

        return false;
    }

    /// <summary>One message object <c>{"s":&lt;int&gt;,"t":&lt;ms&gt;}</c> (any order, other properties skipped), the reader on its start.</summary>
    private static (int Sequence, double SentMs) ReadMessage(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new BenchFailureException("a delivered message is not a JSON object");
        }

        int? sequence = null;
        double? sentMs = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("s"u8))
            {
                reader.Read();
                sequence = reader.GetInt32();
            }
            else if (reader.ValueTextEquals("t"u8))
            {
                reader.Read();
                sentMs = reader.GetDouble();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject || sequence is null || sentMs is null)
        {
            throw new BenchFailureException("a delivered message lacks \"s\" or \"t\"");
        }

        return (sequence.Value, sentMs.Value);
    }

    /// <summary>Every message 0..sent-1 exactly once, in order.</summary>
    public void Verify(int sent)
    {
        if (_sequences.Count != sent)
        {
            throw new BenchFailureException($"a reader got {_sequences.Count} messages, {sent} were sent");
        }

        for (var i = 0; i < sent; i++)
        {
            if (_sequences[i] != i)
            {
                throw new BenchFailureException($"a reader got message {_sequences[i]} where {i} belonged");
            }
        }
    }
}

/// <summary>Resident memory of a process from /proc.</summary>
internal static class ProcessMemory
{
    public static double? ResidentMiB(int pid) => Field(pid, "VmRSS:");

    public static double? PeakResidentMiB(int pid) => Field(pid, "VmHWM:");

    private static double? Field(int pid, string name)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith(name, StringComparison.Ordinal))
                {
                    var kib = long.Parse(line[name.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                    return kib / 1024.0;
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }
}
