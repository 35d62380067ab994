using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace DurableStreams.Bench;

/// <summary>Settings shared by the scenarios of one cell (one scenario, one server, one repetition).</summary>
internal sealed class CellContext
{
    public required ServerProcess Server { get; init; }

    public required string RunId { get; init; }

    public required int Scenario { get; init; }

    public required int Repetition { get; init; }

    /// <summary>Whole time of a timed scenario, warm-up included.</summary>
    public required TimeSpan Duration { get; init; }

    public required int Creates { get; init; }

    /// <summary>The whole command line (the scale scenarios' sizes).</summary>
    public required BenchOptions Options { get; init; }

    /// <summary>Where the servers are (the scale scenarios restart them).</summary>
    public required BenchPaths Paths { get; init; }

    /// <summary>Warm-up at the start of <see cref="Duration"/>: 20 %, at most 1 s.</summary>
    public TimeSpan Warmup => TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, Duration.Ticks / 5));

    public Uri Stream(string name) =>
        new(Server.BaseUri, $"v1/stream/bench-{RunId}/s{Scenario}-r{Repetition}/{name}");

    /// <summary>Stopwatch timestamps of the end of the warm-up and of the scenario, starting now.</summary>
    public (long WarmupEnd, long End) Schedule()
    {
        var now = Stopwatch.GetTimestamp();
        return (now + ToStopwatch(Warmup), now + ToStopwatch(Duration));
    }

    public static long ToStopwatch(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);
}

/// <summary>What one writer of a timed append loop did.</summary>
internal sealed class WriterLog
{
    public long Acknowledged { get; set; }

    public long Measured { get; set; }

    public long LastMeasuredDone { get; set; }

    public List<long> Latencies { get; } = [];

    public List<string> Offsets { get; } = [];
}

/// <summary>The seven scenarios. Each verifies what it wrote or read; a mismatch throws <see cref="BenchFailureException"/>.</summary>
internal static class Scenarios
{
    private const int Concurrency = 64;
    private const int MiB = 1024 * 1024;
    private const int CatchUpMiB = 64;
    private const int PatternPeriod = 251; // prime, so a misplaced 1 MiB chunk never lines up with the pattern

    public static Task<CellResult> RunAsync(CellContext context, CancellationToken cancellationToken) => context.Scenario switch
    {
        1 => AppendsAsync(context, writers: 1, sharedStream: false, withLatency: true, cancellationToken),
        2 => AppendsAsync(context, writers: Concurrency, sharedStream: false, withLatency: false, cancellationToken),
        3 => AppendsAsync(context, writers: Concurrency, sharedStream: true, withLatency: false, cancellationToken),
        4 => JsonAppendsAsync(context, cancellationToken),
        5 => CatchUpReadAsync(context, cancellationToken),
        6 => CreatesAsync(context, cancellationToken),
        7 => LongPollRoundTripAsync(context, cancellationToken),
        8 => LiveScenarios.ProducerAppendsAsync(context, cancellationToken),
        9 => LiveScenarios.FanOutAsync(context, rawSockets: false, epoll: false, cancellationToken),
        10 => LiveScenarios.IdleSubscribersAsync(context, cancellationToken),
        16 => LiveScenarios.FanOutAsync(context, rawSockets: true, epoll: false, cancellationToken),
        17 => LiveScenarios.FanOutAsync(context, rawSockets: true, epoll: true, cancellationToken),
        _ when ScaleScenarios.Handles(context.Scenario) => ScaleScenarios.RunAsync(context, cancellationToken),
        >= WrkScenarios.First => WrkScenarios.RunAsync(context, cancellationToken),
        _ => throw new ArgumentOutOfRangeException(nameof(context), context.Scenario, "unknown scenario"),
    };

    // Scenarios 1-3: 100 B appends from `writers` sequential loops, each on its own stream or all on one.
    private static async Task<CellResult> AppendsAsync(
        CellContext context, int writers, bool sharedStream, bool withLatency, CancellationToken cancellationToken)
    {
        using var client = Protocol.CreateClient(writers);
        var streams = new Uri[sharedStream ? 1 : writers];
        var initial = new string[streams.Length];
        for (var i = 0; i < streams.Length; i++)
        {
            streams[i] = context.Stream($"stream-{i}");
            initial[i] = await Protocol.CreateAsync(client, streams[i], Protocol.OctetStream, cancellationToken);
        }

        var (warmupEnd, end) = context.Schedule();
        var cpu = CpuMeter.Start(context.Server.Pid, warmupEnd, end);
        var logs = await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(
            () =>
            {
                var buffer = new byte[Record.Size];
                var stream = sharedStream ? 0 : w;
                return AppendLoopAsync(
                    client, streams[stream], Protocol.OctetStream, initial[stream], warmupEnd, end,
                    sequence =>
                    {
                        Record.Write(buffer, w, sequence);
                        return buffer;
                    },
                    cancellationToken);
            },
            cancellationToken)));

        var metrics = new Dictionary<string, double> { ["appends/s"] = Rate(logs, warmupEnd) };
        await AddCpuAsync(metrics, cpu, logs.Sum(l => l.Measured));
        if (withLatency)
        {
            var latencies = logs.SelectMany(l => l.Latencies).ToList();
            metrics["p50 ms"] = Stats.PercentileMs(latencies, 50);
            metrics["p99 ms"] = Stats.PercentileMs(latencies, 99);
        }

        // Verify: read every stream back; each writer's records must all be there, once, in order.
        if (sharedStream)
        {
            var all = logs.SelectMany(l => l.Offsets).ToList();
            if (all.Distinct(StringComparer.Ordinal).Count() != all.Count)
            {
                throw new BenchFailureException("two appends to the shared stream got the same Stream-Next-Offset");
            }

            var expected = Enumerable.Range(0, writers).ToDictionary(w => w, w => logs[w].Acknowledged);
            await VerifyBinaryStreamAsync(client, streams[0], expected, all.Count == 0 ? initial[0] : all.Max(StringComparer.Ordinal)!, cancellationToken);
        }
        else
        {
            for (var w = 0; w < writers; w++)
            {
                var tail = logs[w].Offsets.Count == 0 ? initial[w] : logs[w].Offsets[^1];
                await VerifyBinaryStreamAsync(client, streams[w], new Dictionary<int, long> { [w] = logs[w].Acknowledged }, tail, cancellationToken);
            }
        }

        var total = logs.Sum(l => l.Acknowledged);
        return new CellResult(metrics, Info: $"{total} appends verified");
    }

    private static async Task VerifyBinaryStreamAsync(
        HttpClient client, Uri stream, Dictionary<int, long> expectedPerWriter, string expectedTail, CancellationToken cancellationToken)
    {
        var (bodies, tail) = await Protocol.ReadAllAsync(client, stream, json: false, maxRequests: 100_000, cancellationToken);
        Record.VerifyStream(bodies, expectedPerWriter);
        if (tail != expectedTail)
        {
            throw new BenchFailureException($"{stream.AbsolutePath}: read ended at offset {tail}, the last append returned {expectedTail}");
        }
    }

    // Scenario 4: JSON batches of 10 messages per POST from 64 writers, each on its own stream.
    private static async Task<CellResult> JsonAppendsAsync(CellContext context, CancellationToken cancellationToken)
    {
        const int messagesPerPost = 10;
        using var client = Protocol.CreateClient(Concurrency);
        var streams = new Uri[Concurrency];
        var initial = new string[Concurrency];
        for (var i = 0; i < Concurrency; i++)
        {
            streams[i] = context.Stream($"json-{i}");
            initial[i] = await Protocol.CreateAsync(client, streams[i], Protocol.Json, cancellationToken);
        }

        var (warmupEnd, end) = context.Schedule();
        var cpu = CpuMeter.Start(context.Server.Pid, warmupEnd, end);
        var padding = new string('x', 70);
        var logs = await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(w => Task.Run(
            () =>
            {
                var builder = new StringBuilder(1200);
                return AppendLoopAsync(
                    client, streams[w], Protocol.Json, initial[w], warmupEnd, end,
                    post =>
                    {
                        builder.Clear().Append('[');
                        for (var m = 0; m < messagesPerPost; m++)
                        {
                            builder.Append(m == 0 ? "" : ",").Append(CultureInfo.InvariantCulture,
                                $$"""{"w":{{w}},"s":{{(post * messagesPerPost) + m}},"p":"{{padding}}"}""");
                        }

                        return Encoding.UTF8.GetBytes(builder.Append(']').ToString());
                    },
                    cancellationToken);
            },
            cancellationToken)));

        var metrics = new Dictionary<string, double> { ["messages/s"] = Rate(logs, warmupEnd) * messagesPerPost };
        await AddCpuAsync(metrics, cpu, logs.Sum(l => l.Measured) * messagesPerPost);

        // Verify: every stream reads back as JSON arrays holding exactly this writer's messages 0, 1, 2, ... in order.
        long messages = 0;
        for (var w = 0; w < Concurrency; w++)
        {
            var (bodies, tail) = await Protocol.ReadAllAsync(client, streams[w], json: true, maxRequests: 100_000, cancellationToken);
            long next = 0;
            foreach (var body in bodies)
            {
                using var document = JsonDocument.Parse(body);
                if (document.RootElement.ValueKind != JsonValueKind.Array)
                {
                    throw new BenchFailureException($"JSON read of {streams[w].AbsolutePath} is not an array");
                }

                foreach (var message in document.RootElement.EnumerateArray())
                {
                    if (message.ValueKind != JsonValueKind.Object
                        || !message.TryGetProperty("w", out var writer) || writer.GetInt32() != w
                        || !message.TryGetProperty("s", out var sequence) || sequence.GetInt64() != next
                        || !message.TryGetProperty("p", out var pad) || pad.GetString() != padding)
                    {
                        throw new BenchFailureException(
                            string.Create(CultureInfo.InvariantCulture, $"JSON stream {w}: message {next} missing, reordered or altered: {Truncate(message.GetRawText())}"));
                    }

                    next++;
                }
            }

            var expected = logs[w].Acknowledged * messagesPerPost;
            if (next != expected)
            {
                throw new BenchFailureException(
                    string.Create(CultureInfo.InvariantCulture, $"JSON stream {w}: {next} messages read back, {expected} acknowledged"));
            }

            var expectedTail = logs[w].Offsets.Count == 0 ? initial[w] : logs[w].Offsets[^1];
            if (tail != expectedTail)
            {
                throw new BenchFailureException($"JSON stream {w}: read ended at offset {tail}, the last append returned {expectedTail}");
            }

            messages += next;
        }

        return new CellResult(metrics, Info: $"{messages} messages verified");
    }

    // Scenario 5: a 64 MiB stream written as 1 MiB appends, then read from the start repeatedly (catch-up, following
    // Stream-Next-Offset until Stream-Up-To-Date). The first pass is warm-up; later passes are timed.
    private static async Task<CellResult> CatchUpReadAsync(CellContext context, CancellationToken cancellationToken)
    {
        using var client = Protocol.CreateClient(1);
        var (stream, tail, pattern, writeSeconds) = await WriteCatchUpStreamAsync(context, client, cancellationToken);

        var buffer = new byte[MiB];
        var warmup = await ReadPassAsync(client, stream, tail, pattern, buffer, cancellationToken);
        var (_, end) = context.Schedule();
        long bytes = 0;
        var passes = 0;
        var start = Stopwatch.GetTimestamp();
        do
        {
            var pass = await ReadPassAsync(client, stream, tail, pattern, buffer, cancellationToken);
            bytes += pass.Bytes;
            passes++;
        }
        while (Stopwatch.GetTimestamp() < end);

        var seconds = Stats.Seconds(Stopwatch.GetTimestamp() - start);
        return new CellResult(
            new Dictionary<string, double> { ["MiB/s"] = bytes / (double)MiB / seconds },
            Info: string.Create(CultureInfo.InvariantCulture,
                $"{passes + 1} passes of {CatchUpMiB} MiB verified, {warmup.Responses} responses/pass; writing took {writeSeconds:0.00} s"));
    }

    /// <summary>Writes the 64 MiB catch-up stream (64 appends of 1 MiB of a repeating pattern); returns it, its tail and the pattern.</summary>
    internal static async Task<(Uri Stream, string Tail, byte[] Pattern, double WriteSeconds)> WriteCatchUpStreamAsync(
        CellContext context, HttpClient client, CancellationToken cancellationToken)
    {
        var pattern = CatchUpPattern();
        var stream = context.Stream("catch-up");
        var tail = await Protocol.CreateAsync(client, stream, Protocol.OctetStream, cancellationToken);
        var writeStart = Stopwatch.GetTimestamp();
        for (long chunk = 0; chunk < CatchUpMiB; chunk++)
        {
            var phase = (int)(chunk * MiB % PatternPeriod);
            var next = await Protocol.AppendAsync(client, stream, new ArraySegment<byte>(pattern, phase, MiB), Protocol.OctetStream, cancellationToken);
            if (string.CompareOrdinal(next, tail) <= 0)
            {
                throw new BenchFailureException($"append did not advance the offset: {tail} -> {next}");
            }

            tail = next;
        }

        return (stream, tail, pattern, Stats.Seconds(Stopwatch.GetTimestamp() - writeStart));
    }

    /// <summary>1 MiB plus one period of the catch-up pattern, so any 1 MiB window of the stream is a slice of it.</summary>
    private static byte[] CatchUpPattern()
    {
        var pattern = new byte[MiB + PatternPeriod];
        for (var i = 0; i < pattern.Length; i++)
        {
            pattern[i] = (byte)(i % PatternPeriod);
        }

        return pattern;
    }

    internal const int CatchUpBytesPerPass = CatchUpMiB * MiB;

    /// <summary>
    /// One catch-up pass from offset -1 to the tail, checking every byte; <paramref name="offsets"/>, when given,
    /// receives the offset of every request made.
    /// </summary>
    internal static async Task<(long Bytes, int Responses)> ReadPassAsync(
        HttpClient client, Uri stream, string expectedTail, byte[] pattern, byte[] buffer, CancellationToken cancellationToken,
        List<string>? offsets = null, List<long>? sizes = null)
    {
        const long expectedBytes = (long)CatchUpMiB * MiB;
        var offset = Protocol.StartOffset;
        long position = 0;
        for (var responses = 1; responses <= 100_000; responses++)
        {
            offsets?.Add(offset);
            using var response = await client.GetAsync(Protocol.ReadUri(stream, offset), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new BenchFailureException($"catch-up GET answered {(int)response.StatusCode}, expected 200");
            }

            var next = Protocol.NextOffset(response, "GET");
            var upToDate = Protocol.IsUpToDate(response);
            long bodyBytes = 0;
            await using (var body = await response.Content.ReadAsStreamAsync(cancellationToken))
            {
                int read;
                while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    if (position + read > expectedBytes
                        || !buffer.AsSpan(0, read).SequenceEqual(pattern.AsSpan((int)(position % PatternPeriod), read)))
                    {
                        throw new BenchFailureException(
                            string.Create(CultureInfo.InvariantCulture, $"catch-up read returned wrong bytes near byte {position}"));
                    }

                    position += read;
                    bodyBytes += read;
                }
            }

            sizes?.Add(bodyBytes);
            Protocol.CheckAdvance(offset, next, bodyBytes > 0, upToDate);
            offset = next;
            if (upToDate)
            {
                if (position != expectedBytes || offset != expectedTail)
                {
                    throw new BenchFailureException(string.Create(CultureInfo.InvariantCulture,
                        $"catch-up read ended at byte {position} offset {offset}; expected {expectedBytes} bytes and offset {expectedTail}"));
                }

                return (position, responses);
            }
        }

        throw new BenchFailureException("catch-up read: no Stream-Up-To-Date after 100000 responses");
    }

    // Scenario 6: `Creates` stream creates (PUT, 201 each) from 8 connections, bounded by 4 x duration.
    private static async Task<CellResult> CreatesAsync(CellContext context, CancellationToken cancellationToken)
    {
        const int connections = 8;
        using var client = Protocol.CreateClient(connections);

        // Warm-up: a few hundred creates under another prefix.
        var warm = -1;
        await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Task.Run(
            async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref warm)) < 400)
                {
                    await Protocol.CreateAsync(client, context.Stream($"warm/{i}"), Protocol.OctetStream, cancellationToken);
                }
            },
            cancellationToken)));

        var limit = TimeSpan.FromTicks(context.Duration.Ticks * 4);
        var deadline = Stopwatch.GetTimestamp() + CellContext.ToStopwatch(limit);
        var next = -1;
        var done = 0;
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Task.Run(
            async () =>
            {
                while (Stopwatch.GetTimestamp() < deadline)
                {
                    var i = Interlocked.Increment(ref next);
                    if (i >= context.Creates)
                    {
                        return;
                    }

                    await Protocol.CreateAsync(client, context.Stream($"c/{i}"), Protocol.OctetStream, cancellationToken);
                    Interlocked.Increment(ref done);
                }
            },
            cancellationToken)));
        var seconds = Stats.Seconds(Stopwatch.GetTimestamp() - start);

        // Verify: a sample of the streams (first, last, and every k-th) exists; creating one again is idempotent (200).
        var created = Math.Min(Volatile.Read(ref next) + 1, context.Creates);
        if (done != created)
        {
            throw new BenchFailureException($"{done} creates acknowledged but {created} started");
        }

        if (created == 0)
        {
            throw new BenchFailureException("no stream was created");
        }

        var step = Math.Max(1, created / 200);
        for (var i = 0; i < created; i += step)
        {
            await Protocol.HeadAsync(client, context.Stream($"c/{i}"), cancellationToken);
        }

        await Protocol.HeadAsync(client, context.Stream($"c/{created - 1}"), cancellationToken);
        using (var content = new ByteArrayContent([]))
        {
            content.Headers.ContentType = new(Protocol.OctetStream);
            using var again = await client.PutAsync(context.Stream("c/0"), content, cancellationToken);
            if (again.StatusCode != HttpStatusCode.OK)
            {
                throw new BenchFailureException($"re-creating an existing stream answered {(int)again.StatusCode}, expected 200");
            }
        }

        var note = done < context.Creates
            ? string.Create(CultureInfo.InvariantCulture, $"only {done} of {context.Creates} creates within {limit.TotalSeconds:0} s")
            : null;
        return new CellResult(new Dictionary<string, double> { ["creates/s"] = done / seconds }, Note: note, Info: $"{done} creates, sample verified");
    }

    // Scenario 7: a reader long-polls at the tail; a writer appends 100 B; time from the append's start until the
    // reader has the bytes.
    private static async Task<CellResult> LongPollRoundTripAsync(CellContext context, CancellationToken cancellationToken)
    {
        using var client = Protocol.CreateClient(2);
        var stream = context.Stream("live");
        var tail = await Protocol.CreateAsync(client, stream, Protocol.OctetStream, cancellationToken);
        var body = new byte[Record.Size];
        var latencies = new List<long>();
        var (warmupEnd, end) = context.Schedule();
        long sequence = 0;
        while (Stopwatch.GetTimestamp() < end)
        {
            var reader = LongPollAsync(client, stream, tail, cancellationToken);

            // Give the long-poll time to reach the server and park there.
            await Task.Delay(10, cancellationToken);
            Record.Write(body, 0, sequence);
            var start = Stopwatch.GetTimestamp();
            var appended = await Protocol.AppendAsync(client, stream, body, Protocol.OctetStream, cancellationToken);
            var (status, received, readerOffset, done) = await reader;
            if (status != HttpStatusCode.OK)
            {
                throw new BenchFailureException($"long-poll answered {(int)status} after an append, expected 200");
            }

            if (!received.AsSpan().SequenceEqual(body))
            {
                throw new BenchFailureException(string.Create(CultureInfo.InvariantCulture, $"long-poll {sequence} returned {received.Length} bytes that differ from the append"));
            }

            if (readerOffset != appended || string.CompareOrdinal(appended, tail) <= 0)
            {
                throw new BenchFailureException($"offsets disagree: tail {tail}, append -> {appended}, long-poll -> {readerOffset}");
            }

            if (start >= warmupEnd)
            {
                latencies.Add(done - start);
            }

            tail = appended;
            sequence++;
        }

        if (latencies.Count == 0)
        {
            throw new BenchFailureException("no round trip completed after the warm-up");
        }

        return new CellResult(
            new Dictionary<string, double>
            {
                ["p50 ms"] = Stats.PercentileMs(latencies, 50),
                ["p99 ms"] = Stats.PercentileMs(latencies, 99),
            },
            Info: $"{sequence} round trips verified");
    }

    private static async Task<(HttpStatusCode Status, byte[] Body, string Offset, long Done)> LongPollAsync(
        HttpClient client, Uri stream, string offset, CancellationToken cancellationToken)
    {
        using var response = await client.GetAsync(Protocol.ReadUri(stream, offset, longPoll: true), HttpCompletionOption.ResponseContentRead, cancellationToken);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        var done = Stopwatch.GetTimestamp();
        var next = response.StatusCode == HttpStatusCode.OK ? Protocol.NextOffset(response, "long-poll GET") : string.Empty;
        return (response.StatusCode, body, next, done);
    }

    /// <summary>
    /// One writer: sequential appends until <paramref name="end"/>; each acknowledged offset must be greater than the
    /// previous one. Appends started after <paramref name="warmupEnd"/> are measured.
    /// </summary>
    private static async Task<WriterLog> AppendLoopAsync(
        HttpClient client, Uri stream, string contentType, string initialOffset, long warmupEnd, long end,
        Func<long, byte[]> bodyFor, CancellationToken cancellationToken)
    {
        var log = new WriterLog();
        var previous = initialOffset;
        for (long sequence = 0; ; sequence++)
        {
            var start = Stopwatch.GetTimestamp();
            if (start >= end)
            {
                return log;
            }

            var offset = await Protocol.AppendAsync(client, stream, bodyFor(sequence), contentType, cancellationToken);
            var done = Stopwatch.GetTimestamp();
            log.Acknowledged++;
            log.Offsets.Add(offset);
            if (string.CompareOrdinal(offset, previous) <= 0)
            {
                throw new BenchFailureException($"append returned offset {offset}, not after the previous {previous}");
            }

            previous = offset;
            if (start >= warmupEnd)
            {
                log.Measured++;
                log.LastMeasuredDone = done;
                log.Latencies.Add(done - start);
            }
        }
    }

    /// <summary>Measured operations per second, from the end of the warm-up to the last measured completion.</summary>
    private static async Task AddCpuAsync(Dictionary<string, double> metrics, CpuMeter cpu, double operations)
    {
        if (await cpu.MicrosecondsPerOpAsync(operations) is { } perOp)
        {
            metrics["srv cpu us/op"] = perOp;
        }
    }

    private static double Rate(IReadOnlyList<WriterLog> logs, long warmupEnd)
    {
        var measured = logs.Sum(l => l.Measured);
        if (measured == 0)
        {
            throw new BenchFailureException("no append completed after the warm-up");
        }

        return measured / Stats.Seconds(logs.Max(l => l.LastMeasuredDone) - warmupEnd);
    }

    private static string Truncate(string text) => text.Length <= 120 ? text : text[..120] + "...";
}
