using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;

namespace DurableStreams.Bench;

/// <summary>
/// Scenarios 18-24 (issue 20, "performance at scale"): work of a given size rather than for a given time. They stop
/// and restart the cell's server themselves (restart-to-ready times, fresh servers for a second phase), so every
/// server they start is disposed here and the cell's own server is left stopped for the runner to dispose.
/// </summary>
internal static partial class ScaleScenarios
{
    private const int Connections = 32;
    private const int MiB = 1024 * 1024;

    public static bool Handles(int scenario) => scenario is >= 18 and <= 24;

    public static async Task<CellResult> RunAsync(CellContext context, CancellationToken cancellationToken)
    {
        var options = context.Options;
        var result = context.Scenario switch
        {
            18 => await MillionStreamsAsync(context, cancellationToken),
            19 => await ManyReadersAsync(context, cancellationToken),
            20 => await LiveScenarios.FanOutAsync(
                context, rawSockets: true, epoll: true, options.FanOutReaders - (options.FanOutReaders / 2), options.FanOutReaders / 2, options.DropOne, cancellationToken),
            21 => await GigabytesAsync(context, cancellationToken),
            22 => await FixedWorkMemoryAsync(context, cancellationToken),
            23 => await Http2AppendsAsync(context, cancellationToken),
            24 => await ManyReadersAsync(context, cancellationToken),
            _ => throw new ArgumentOutOfRangeException(nameof(context), context.Scenario, "not a scale scenario"),
        };

        // The table needs every metric; one a server cannot give (a store kind, a protocol) is "-".
        var metrics = new Dictionary<string, double>(result.Metrics);
        foreach (var metric in ScenarioInfo.Find(context.Scenario)!.Metrics)
        {
            metrics.TryAdd(metric.Name, double.NaN);
        }

        return result with { Metrics = metrics };
    }

    // ---- 18: a million streams ----

    private static async Task<CellResult> MillionStreamsAsync(CellContext context, CancellationToken cancellationToken)
    {
        if (!context.Server.Spec.IsFile)
        {
            return NotApplicable("file stores only (restart and disk use)");
        }

        var count = context.Options.ScaleStreams;
        using var client = Protocol.CreateClient(Connections);
        Uri Name(ServerProcess server, long i) => Rebase(context.Stream($"m/{i}"), server);

        // Creates, with the rate of every tenth of them (creates/s over time).
        var buckets = await ForEachAsync(count, Connections, "creates", async i =>
            await Protocol.CreateAsync(client, Name(context.Server, i), Protocol.OctetStream, cancellationToken), cancellationToken);
        var emptyBytes = await DiskUsedAsync(context.Server.DataDir, cancellationToken);

        // One 100 B message in every tenth stream: the disk cost of a stream with data.
        var withMessage = Math.Max(1, count / 10);
        var body = new byte[Record.Size];
        await ForEachAsync(withMessage, Connections, "one-message appends", async i =>
        {
            var record = new byte[Record.Size];
            Record.Write(record, 0, i);
            await Protocol.AppendAsync(client, Name(context.Server, i), record, Protocol.OctetStream, cancellationToken);
        }, cancellationToken);
        var withMessageBytes = await DiskUsedAsync(context.Server.DataDir, cancellationToken);

        var random = new Random(18);
        var (server, ready) = await RestartAsync(context, context.Server, kill: false, Name(context.Server, random.NextInt64(count)).AbsolutePath, cancellationToken);
        await using (server)
        {
            using var one = Protocol.CreateClient(1);
            var heads = new List<long>();
            var reads = new List<long>();
            for (var sample = 0; sample < 2000; sample++)
            {
                var start = Stopwatch.GetTimestamp();
                await Protocol.HeadAsync(one, Name(server, random.NextInt64(count)), cancellationToken);
                heads.Add(Stopwatch.GetTimestamp() - start);

                var i = random.NextInt64(withMessage);
                start = Stopwatch.GetTimestamp();
                using var response = await one.GetAsync(Protocol.ReadUri(Name(server, i), Protocol.StartOffset), cancellationToken);
                var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
                reads.Add(Stopwatch.GetTimestamp() - start);
                Record.Write(body, 0, i);
                if (response.StatusCode != HttpStatusCode.OK || !bytes.AsSpan().SequenceEqual(body))
                {
                    throw new BenchFailureException($"stream m/{i} read back {(int)response.StatusCode} with {bytes.Length} B, not its one record");
                }
            }

            var metrics = new Dictionary<string, double>
            {
                ["creates/s"] = count / buckets.Sum(b => b.Seconds),
                ["slowest 10% creates/s"] = buckets.Min(b => b.Rate),
                ["restart ready s"] = ready,
                ["HEAD p50 ms"] = Stats.PercentileMs(heads, 50),
                ["HEAD p99 ms"] = Stats.PercentileMs(heads, 99),
                ["read p50 ms"] = Stats.PercentileMs(reads, 50),
                ["read p99 ms"] = Stats.PercentileMs(reads, 99),
                ["disk B/empty stream"] = emptyBytes / (double)count,
                ["disk B/1-msg stream"] = (emptyBytes / (double)count) + ((withMessageBytes - emptyBytes) / (double)withMessage),
            };
            AddPeakRss(metrics, server);
            var curve = string.Join(" ", buckets.Select(b => b.Rate.ToString("#,0", CultureInfo.InvariantCulture)));
            return new CellResult(metrics, Info: $"{count:#,0} streams; creates/s per tenth: {curve}; {withMessage:#,0} with one message; 2,000 random HEADs and reads verified");
        }
    }

    // ---- 19 and 24: ten thousand SSE readers (24: as HTTP/2 streams over h2c) ----

    /// <summary>Readers of scenario 24 that share one HTTP/2 connection (Kestrel allows 1,000 by default, ours sets <c>--max-http2-streams</c> 1000).</summary>
    private const int ReadersPerHttp2Connection = 100;

    private static async Task<CellResult> ManyReadersAsync(CellContext context, CancellationToken cancellationToken)
    {
        var count = context.Options.Readers;
        var h2 = context.Scenario == 24;
        if (h2 && !context.Server.Spec.IsOurs)
        {
            return NotApplicable("the reference server does not serve h2c");
        }

        // SSE responses end after the server's reconnect interval (60 s by default), and these readers do not reconnect:
        // ours runs this cell with a 1 h interval (the reference keeps its own).
        // Each phase gets a fresh server: a second phase on the first one's server would reuse the heap it grew and
        // understate its own cost per reader.
        await context.Server.StopAsync(kill: false, cancellationToken);
        using var client = h2 ? CreateHttp2Client(Connections) : Protocol.CreateClient(Connections);
        double perStreamP99, perStreamRss, sharedP99, sharedRss;
        string perStreamInfo, sharedInfo;
        await using (var first = await StartReadersServerAsync(context, h2, cancellationToken))
        {
            var perStream = Enumerable.Range(0, count).Select(i => Rebase(context.Stream($"r/{i}"), first)).ToArray();
            await ForEachAsync(count, Connections, "creates", async i =>
                await Protocol.CreateAsync(client, perStream[i], Protocol.Json, cancellationToken), cancellationToken);
            (perStreamP99, perStreamRss, perStreamInfo) = await ReadersPhaseAsync(first, client, perStream, context.Options, h2, cancellationToken);
            await first.StopAsync(kill: false, cancellationToken);
        }

        await using var server = await StartReadersServerAsync(context, h2, cancellationToken);
        var shared = Rebase(context.Stream("one"), server);
        await Protocol.CreateAsync(client, shared, Protocol.Json, cancellationToken);
        (sharedP99, sharedRss, sharedInfo) = await ReadersPhaseAsync(server, client, [.. Enumerable.Repeat(shared, count)], context.Options, h2, cancellationToken);

        var latency = h2 ? "reader" : "socket";
        var metrics = new Dictionary<string, double>
        {
            [$"per-stream {latency} p99 ms"] = perStreamP99,
            ["per-stream RSS B/idle reader"] = perStreamRss,
            [$"one-stream {latency} p99 ms"] = sharedP99,
            ["one-stream RSS B/idle reader"] = sharedRss,
        };
        AddPeakRss(metrics, server);
        return new CellResult(metrics, Info: $"one per stream: {perStreamInfo}; all on one stream: {sharedInfo}");
    }

    /// <summary>A fresh server (empty store) for one phase of scenario 19 or 24 (<paramref name="h2"/>: h2c), with SSE responses that outlast the phase.</summary>
    private static Task<ServerProcess> StartReadersServerAsync(CellContext context, bool h2, CancellationToken cancellationToken) =>
        ServerProcess.StartAsync(
            context.Server.Spec, context.Paths, cancellationToken,
            extraArguments: h2 ? ["--sse-reconnect-interval", "1h", "--h2c"] : ["--sse-reconnect-interval", "1h"]);

    /// <summary>
    /// One reader per entry of <paramref name="streams"/> (an entry may repeat): connects them all, measures the server's
    /// added RSS, then appends --messages messages to every distinct stream at 10 rounds/s and a terminator; every reader
    /// must get every message once, in order. Readers are raw sockets received on one epoll thread (latency at the
    /// sockets), or with <paramref name="h2"/> HTTP/2 streams, <see cref="ReadersPerHttp2Connection"/> to a connection
    /// (HttpClient; latency in the reader).
    /// </summary>
    private static async Task<(double P99, double BytesPerReader, string Info)> ReadersPhaseAsync(
        ServerProcess server, HttpClient client, Uri[] streams, BenchOptions options, bool h2, CancellationToken cancellationToken)
    {
        var before = ProcessMemory.ResidentMiB(server.Pid);
        using var receiver = h2 ? null : new EpollReceiver();
        var connections = h2
            ? Enumerable.Range(0, (streams.Length + ReadersPerHttp2Connection - 1) / ReadersPerHttp2Connection).Select(_ => CreateHttp2Client(1)).ToArray()
            : [];
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            var clock = Stopwatch.StartNew();
            var readers = streams.Select(_ => new FanOutReader()).ToArray();
            if (options.DropOne)
            {
                readers[^1].DropOne = true;
            }

            // Connect in waves of 500 so the listen backlog never overflows.
            var tasks = new Task[readers.Length];
            for (var i = 0; i < readers.Length; i++)
            {
                var (reader, stream) = (readers[i], streams[i]);
                var connection = h2 ? connections[i / ReadersPerHttp2Connection] : null;
                tasks[i] = connection is null
                    ? Task.Run(() => reader.SseRawAsync(stream, Protocol.StartOffset, clock, receiver, stop.Token), CancellationToken.None)
                    : Task.Run(() => reader.SseAsync(connection, stream, Protocol.StartOffset, clock, stop.Token), CancellationToken.None);
                if (i % 500 == 499)
                {
                    await Task.WhenAll(readers.Skip(i - 499).Take(500).Select(r => r.Connected.Task)).WaitAsync(TimeSpan.FromMinutes(5), cancellationToken);
                }
            }

            await Task.WhenAll(readers.Select(r => r.Connected.Task)).WaitAsync(TimeSpan.FromMinutes(10), cancellationToken);
            await Task.Delay(1000, cancellationToken);
            var after = ProcessMemory.ResidentMiB(server.Pid);
            Log($"{readers.Length:#,0} readers connected{(h2 ? $" over {connections.Length:#,0} HTTP/2 connections" : string.Empty)}");

            var distinct = streams.Distinct().ToArray();
            using (var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100)))
            {
                for (var message = 0; message <= options.Messages; message++)
                {
                    await timer.WaitForNextTickAsync(cancellationToken);
                    var sequence = message == options.Messages ? -1 : message; // the last round is the terminator
                    await ForEachAsync(distinct.Length, Connections, null, async i =>
                    {
                        var json = string.Create(CultureInfo.InvariantCulture, $$"""{"s":{{sequence}},"t":{{clock.Elapsed.TotalMilliseconds:F3}}}""");
                        await Protocol.AppendAsync(client, distinct[i], Encoding.UTF8.GetBytes(json), Protocol.Json, cancellationToken);
                    }, cancellationToken);
                }
            }

            // Yield: the last reader finishes on the epoll thread, which must not run the rest of this method.
            await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromMinutes(5), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
            foreach (var reader in readers)
            {
                reader.Verify(options.Messages);
            }

            var latencies = readers.SelectMany(r => (h2 ? r.Latencies : r.SocketLatencies).Select(l => l.Ticks)).ToList();
            var perReader = before is { } b && after is { } a ? (a - b) * MiB / readers.Length : double.NaN;
            var over = h2 ? $" as HTTP/2 streams over {connections.Length:#,0} connections" : string.Empty;
            return (Stats.PercentileMs(latencies, 99), perReader,
                $"{readers.Length:#,0} readers{over} x {options.Messages} messages verified over {distinct.Length:#,0} streams");
        }
        finally
        {
            foreach (var connection in connections)
            {
                connection.Dispose();
            }
        }
    }

    /// <summary>
    /// A client that sends every request as HTTP/2 with prior knowledge (h2c) over at most <paramref name="connections"/>
    /// connections, including the requests <see cref="Protocol"/> builds itself (they default to HTTP/1.1).
    /// </summary>
    private static HttpClient CreateHttp2Client(int connections) =>
        new(new Http2Only(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            EnableMultipleHttp2Connections = connections > 1,
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        }))
        {
            // SSE reads are bounded by the cell's token, not by a client timeout.
            Timeout = Timeout.InfiniteTimeSpan,
        };

    /// <summary>Makes every request HTTP/2 only (no fallback to HTTP/1.1, which an h2c server cannot speak).</summary>
    private sealed class Http2Only(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
            return base.SendAsync(request, cancellationToken);
        }
    }

    // ---- 21: gigabytes on disk ----

    private static async Task<CellResult> GigabytesAsync(CellContext context, CancellationToken cancellationToken)
    {
        if (!context.Server.Spec.IsFile)
        {
            return NotApplicable("file stores only (restart and cold reads)");
        }

        var options = context.Options;
        var total = (long)(options.Gib * 1024 * MiB);
        var perStream = Math.Max(1, total / options.GibStreams);
        var chunk = (int)Math.Min(256 * 1024, perStream);
        Uri Name(ServerProcess server, long i) => Rebase(context.Stream($"g/{i}"), server);
        using var client = Protocol.CreateClient(16);

        var start = Stopwatch.GetTimestamp();
        await ForEachAsync(options.GibStreams, 16, "GiB streams written", async i =>
        {
            await Protocol.CreateAsync(client, Name(context.Server, i), Protocol.OctetStream, cancellationToken);
            var buffer = new byte[chunk];
            for (long position = 0; position < perStream; position += chunk)
            {
                var length = (int)Math.Min(chunk, perStream - position);
                Pattern(buffer.AsSpan(0, length), i, position);
                await Protocol.AppendAsync(client, Name(context.Server, i), new ArraySegment<byte>(buffer, 0, length), Protocol.OctetStream, cancellationToken);
            }
        }, cancellationToken);
        var writeSeconds = Stats.Seconds(Stopwatch.GetTimestamp() - start);

        var probe = Name(context.Server, 0).AbsolutePath;
        var (clean, cleanReady) = await RestartAsync(context, context.Server, kill: false, probe, cancellationToken);
        ServerProcess killed;
        double killReady;
        await using (clean)
        {
            (killed, killReady) = await RestartAsync(context, clean, kill: true, probe, cancellationToken);
        }

        var metrics = new Dictionary<string, double>
        {
            ["write MiB/s"] = total / (double)MiB / writeSeconds,
            ["clean restart ready s"] = cleanReady,
            ["kill -9 restart ready s"] = killReady,
        };
        await using (killed)
        {
            // Read everything back (verified byte by byte); the peak RSS of this server is the issue's "RSS does not grow with the data".
            start = Stopwatch.GetTimestamp();
            await ForEachAsync(options.GibStreams, 16, "GiB streams read back", async i =>
                await ReadVerifiedAsync(client, Name(killed, i), i, perStream, cancellationToken), cancellationToken);
            metrics["read-all-back MiB/s"] = total / (double)MiB / Stats.Seconds(Stopwatch.GetTimestamp() - start);
            AddPeakRss(metrics, killed);
            if (options.GibHold is { } hold)
            {
                // Opt-in: hold the read-back server as it is now until the file is deleted.
                await File.WriteAllTextAsync(hold, killed.Pid.ToString(CultureInfo.InvariantCulture), cancellationToken);
                Log($"read-back server {killed.Pid} held until {hold} is deleted");
                while (File.Exists(hold))
                {
                    await Task.Delay(500, cancellationToken);
                }
            }

            // One more stream of --cold-gib, written and then read after its pages were dropped from the page cache.
            var cold = (long)(options.ColdGib * 1024 * MiB);
            var coldStream = Name(killed, -1);
            await Protocol.CreateAsync(client, coldStream, Protocol.OctetStream, cancellationToken);
            var buffer = new byte[MiB];
            for (long position = 0; position < cold; position += MiB)
            {
                var length = (int)Math.Min(MiB, cold - position);
                Pattern(buffer.AsSpan(0, length), -1, position);
                await Protocol.AppendAsync(client, coldStream, new ArraySegment<byte>(buffer, 0, length), Protocol.OctetStream, cancellationToken);
            }

            var (coldServer, _) = await RestartAsync(context, killed, kill: false, coldStream.AbsolutePath, cancellationToken, dropCaches: true);
            await using (coldServer)
            {
                start = Stopwatch.GetTimestamp();
                await ReadVerifiedAsync(client, Rebase(coldStream, coldServer), -1, cold, cancellationToken);
                metrics["cold catch-up MiB/s"] = cold / (double)MiB / Stats.Seconds(Stopwatch.GetTimestamp() - start);
                await coldServer.StopAsync(kill: false, cancellationToken);
            }

            // The disk's own sequential read: a file of the cold stream's size written next to the data directory (same
            // file system), synced and evicted the same way, read by dd. (The stores' data files mix streams, so no one
            // file is "the stream's".)
            var ddFile = Path.Combine(Path.GetDirectoryName(context.Server.DataDir)!, "dd-probe");
            await using (var file = new FileStream(ddFile, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None))
            {
                for (long position = 0; position < cold; position += MiB)
                {
                    var length = (int)Math.Min(MiB, cold - position);
                    Pattern(buffer.AsSpan(0, length), -2, position);
                    await file.WriteAsync(buffer.AsMemory(0, length), cancellationToken);
                }
            }

            DropFromPageCache(ddFile);
            metrics["dd cold MiB/s"] = await DdAsync(ddFile, cancellationToken);
            File.Delete(ddFile);
            return new CellResult(metrics, Info: string.Create(CultureInfo.InvariantCulture,
                $"{options.Gib:0.###} GiB over {options.GibStreams:#,0} streams written and read back verified; cold stream {options.ColdGib:0.###} GiB vs dd of a file of that size on the same file system"));
        }
    }

    private static async Task ReadVerifiedAsync(HttpClient client, Uri stream, long index, long expected, CancellationToken cancellationToken)
    {
        var offset = Protocol.StartOffset;
        long position = 0;
        var pattern = new byte[MiB];
        while (true)
        {
            using var response = await client.GetAsync(Protocol.ReadUri(stream, offset), HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new BenchFailureException($"GET {stream.AbsolutePath} answered {(int)response.StatusCode}");
            }

            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
            {
                Pattern(pattern.AsSpan(0, read), index, position);
                if (!buffer.AsSpan(0, read).SequenceEqual(pattern.AsSpan(0, read)))
                {
                    throw new BenchFailureException($"{stream.AbsolutePath}: wrong bytes near position {position}");
                }

                position += read;
            }

            var next = Protocol.NextOffset(response, "GET");
            if (Protocol.IsUpToDate(response))
            {
                break;
            }

            offset = next;
        }

        if (position != expected)
        {
            throw new BenchFailureException($"{stream.AbsolutePath} read back {position} B, {expected} were written");
        }
    }

    private static void Pattern(Span<byte> destination, long stream, long position)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = (byte)(((position + i) * 31 + stream + 7) % 251);
        }
    }

    // ---- 22: fixed-work memory ----

    private static async Task<CellResult> FixedWorkMemoryAsync(CellContext context, CancellationToken cancellationToken)
    {
        const int Streams = 1000;
        var options = context.Options;
        using var client = Protocol.CreateClient(Connections);

        // Both shapes on a fresh server each, without the runner's warm-up traffic, so the peak is this work's alone.
        await context.Server.StopAsync(kill: false, cancellationToken);
        await using var first = await ServerProcess.StartAsync(context.Server.Spec, context.Paths, cancellationToken);
        var streams = Enumerable.Range(0, Streams).Select(i => Rebase(context.Stream($"f/{i}"), first)).ToArray();
        await ForEachAsync(Streams, Connections, null, async i => await Protocol.CreateAsync(client, streams[i], Protocol.OctetStream, cancellationToken), cancellationToken);
        await ForEachAsync(options.FixedMessages, Connections, "100 B messages", async i =>
        {
            var record = new byte[Record.Size];
            Record.Write(record, (int)(i % Streams), i / Streams);
            await Protocol.AppendAsync(client, streams[i % Streams], record, Protocol.OctetStream, cancellationToken);
        }, cancellationToken);
        var messagesPeak = ProcessMemory.PeakResidentMiB(first.Pid) ?? double.NaN;
        long stored = 0;
        foreach (var stream in streams)
        {
            var (bodies, _) = await Protocol.ReadAllAsync(client, stream, json: false, maxRequests: 100_000, cancellationToken);
            stored += bodies.Sum(b => (long)b.Length);
        }

        if (stored != options.FixedMessages * Record.Size)
        {
            throw new BenchFailureException($"the streams hold {stored} B, {options.FixedMessages * Record.Size} were appended");
        }

        await first.StopAsync(kill: false, cancellationToken);
        await using var fresh = await ServerProcess.StartAsync(context.Server.Spec, context.Paths, cancellationToken);
        await ForEachAsync(options.FixedStreams, Connections, "one-message streams", async i =>
        {
            var stream = Rebase(context.Stream($"o/{i}"), fresh);
            await Protocol.CreateAsync(client, stream, Protocol.OctetStream, cancellationToken);
            var record = new byte[Record.Size];
            Record.Write(record, 0, i);
            await Protocol.AppendAsync(client, stream, record, Protocol.OctetStream, cancellationToken);
        }, cancellationToken);
        var streamsPeak = ProcessMemory.PeakResidentMiB(fresh.Pid) ?? double.NaN;
        for (var i = 0; i < options.FixedStreams; i += Math.Max(1, options.FixedStreams / 100))
        {
            var (bodies, _) = await Protocol.ReadAllAsync(client, Rebase(context.Stream($"o/{i}"), fresh), json: false, maxRequests: 10, cancellationToken);
            if (bodies.Sum(b => b.Length) != Record.Size)
            {
                throw new BenchFailureException($"stream o/{i} does not hold its one message");
            }
        }

        return new CellResult(
            new Dictionary<string, double> { ["messages peak RSS MiB"] = messagesPeak, ["streams peak RSS MiB"] = streamsPeak },
            Info: $"{options.FixedMessages:#,0} x 100 B over {Streams:#,0} streams verified; {options.FixedStreams:#,0} one-message streams (1 % sampled)");
    }

    // ---- 23: HTTP/2 vs HTTP/1.1 appends ----

    private static async Task<CellResult> Http2AppendsAsync(CellContext context, CancellationToken cancellationToken)
    {
        if (!context.Server.Spec.IsOurs)
        {
            return NotApplicable("the reference server does not serve h2c");
        }

        const int Writers = 64;
        using var h1 = Protocol.CreateClient(Writers);
        var h1Rate = await TimedAppendsAsync(context, context.Server, h1, HttpVersion.Version11, Writers, "h1", cancellationToken);

        await context.Server.StopAsync(kill: false, cancellationToken);
        await using var h2Server = await ServerProcess.StartAsync(context.Server.Spec, context.Paths, cancellationToken, extraArguments: ["--h2c"]);
        using var h2 = new HttpClient(new SocketsHttpHandler { EnableMultipleHttp2Connections = false, MaxConnectionsPerServer = 1, UseProxy = false })
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(90),
        };
        var h2Rate = await TimedAppendsAsync(context, h2Server, h2, HttpVersion.Version20, Writers, "h2", cancellationToken);
        var metrics = new Dictionary<string, double> { ["h1 appends/s"] = h1Rate, ["h2 appends/s"] = h2Rate, ["h2/h1"] = h2Rate / h1Rate };
        AddPeakRss(metrics, h2Server);
        return new CellResult(metrics, Info: $"{Writers} writers on their own streams, --duration each; HTTP/2 over one connection, every stream's tail checked");
    }

    private static async Task<double> TimedAppendsAsync(
        CellContext context, ServerProcess server, HttpClient client, Version version, int writers, string prefix, CancellationToken cancellationToken)
    {
        var streams = Enumerable.Range(0, writers).Select(i => Rebase(context.Stream($"{prefix}-{i}"), server)).ToArray();
        foreach (var stream in streams)
        {
            using var create = await SendAsync(client, HttpMethod.Put, stream, [], version, cancellationToken);
            if (create.StatusCode != HttpStatusCode.Created)
            {
                throw new BenchFailureException($"{prefix} PUT answered {(int)create.StatusCode}");
            }
        }

        var (warmupEnd, end) = context.Schedule();
        var measured = 0L;
        var tails = new string[writers];
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var record = new byte[Record.Size];
            for (long seq = 0; Stopwatch.GetTimestamp() < end; seq++)
            {
                var started = Stopwatch.GetTimestamp();
                Record.Write(record, w, seq);
                using var response = await SendAsync(client, HttpMethod.Post, streams[w], record, version, cancellationToken);
                if (response.StatusCode is not (HttpStatusCode.NoContent or HttpStatusCode.OK) || response.Version != version)
                {
                    throw new BenchFailureException($"{prefix} append answered {(int)response.StatusCode} over HTTP/{response.Version}");
                }

                tails[w] = Protocol.NextOffset(response, "POST");
                if (started >= warmupEnd)
                {
                    Interlocked.Increment(ref measured);
                }
            }
        }, cancellationToken)));
        var seconds = Stats.Seconds(end - warmupEnd);
        for (var w = 0; w < writers; w++)
        {
            using var head = await SendAsync(client, HttpMethod.Head, streams[w], null, version, cancellationToken);
            if (Protocol.NextOffset(head, "HEAD") != tails[w])
            {
                throw new BenchFailureException($"{prefix} stream {w} ends at {Protocol.NextOffset(head, "HEAD")}, its last append returned {tails[w]}");
            }
        }

        return measured / seconds;
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient client, HttpMethod method, Uri stream, byte[]? body, Version version, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, stream) { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(Protocol.OctetStream);
        }

        return await client.SendAsync(request, cancellationToken);
    }

    // ---- shared ----

    private static CellResult NotApplicable(string why) => new(new Dictionary<string, double>(), Note: why);

    private static Uri Rebase(Uri stream, ServerProcess server) => new(server.BaseUri, stream.AbsolutePath.TrimStart('/'));

    private static void AddPeakRss(Dictionary<string, double> metrics, ServerProcess server)
    {
        if (ProcessMemory.PeakResidentMiB(server.Pid) is { } peak)
        {
            metrics["peak RSS MiB"] = peak;
        }
    }

    /// <summary>
    /// Stops <paramref name="current"/> (SIGTERM, or SIGKILL with <paramref name="kill"/>), starts the same server on the
    /// same data directory and returns it with the seconds from its process start until HEAD <paramref name="probePath"/>
    /// answered 200. <paramref name="dropCaches"/>: between the two, evict the data files from the page cache.
    /// </summary>
    private static async Task<(ServerProcess Server, double ReadySeconds)> RestartAsync(
        CellContext context, ServerProcess current, bool kill, string probePath, CancellationToken cancellationToken, bool dropCaches = false)
    {
        await current.StopAsync(kill, cancellationToken);
        if (dropCaches)
        {
            DropFromPageCache(current.DataDir);
        }

        var server = await ServerProcess.StartAsync(context.Server.Spec, context.Paths, cancellationToken, current.DataDir);
        try
        {
            using var client = Protocol.CreateClient(1);
            var probe = new Uri(server.BaseUri, probePath.TrimStart('/'));
            while (true)
            {
                using var request = new HttpRequestMessage(HttpMethod.Head, probe);
                using var response = await client.SendAsync(request, cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    break;
                }

                if (server.HasExited || Stopwatch.GetElapsedTime(server.StartedAt) > TimeSpan.FromMinutes(10))
                {
                    throw new BenchFailureException($"after the restart HEAD {probe.AbsolutePath} answered {(int)response.StatusCode}");
                }

                await Task.Delay(5, cancellationToken);
            }

            var ready = Stopwatch.GetElapsedTime(server.StartedAt).TotalSeconds;
            Log($"{(kill ? "kill -9" : "clean")} restart of {server.Spec.Name}: ready in {ready:0.000} s");
            return (server, ready);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> for 0..count-1 on <paramref name="workers"/> loops; logs progress every tenth (when
    /// <paramref name="what"/> is given) and returns the rate of every tenth.
    /// </summary>
    private static async Task<List<(double Seconds, double Rate)>> ForEachAsync(
        long count, int workers, string? what, Func<long, Task> work, CancellationToken cancellationToken)
    {
        var tenth = Math.Max(1, count / 10);
        var marks = new long[(count + tenth - 1) / tenth + 1];
        marks[0] = Stopwatch.GetTimestamp();
        long next = -1;
        long done = 0;
        await Task.WhenAll(Enumerable.Range(0, (int)Math.Min(workers, count)).Select(_ => Task.Run(async () =>
        {
            long i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                await work(i);
                var finished = Interlocked.Increment(ref done);
                if (finished % tenth == 0 || finished == count)
                {
                    var k = (int)((finished + tenth - 1) / tenth);
                    marks[k] = Stopwatch.GetTimestamp();
                    if (what is not null)
                    {
                        Log(string.Create(CultureInfo.InvariantCulture,
                            $"{finished:#,0}/{count:#,0} {what}, {(finished - ((k - 1) * tenth)) / Stats.Seconds(marks[k] - marks[k - 1]):#,0}/s over the last {finished - ((k - 1) * tenth):#,0}"));
                    }
                }
            }
        }, cancellationToken)));

        var result = new List<(double, double)>();
        for (var k = 1; k < marks.Length; k++)
        {
            var items = Math.Min(tenth, count - ((k - 1) * tenth));
            var seconds = Stats.Seconds(marks[k] - marks[k - 1]);
            result.Add((seconds, items / seconds));
        }

        return result;
    }

    /// <summary>Bytes the directory takes on disk (allocated blocks, <c>du -sB1</c>).</summary>
    private static async Task<long> DiskUsedAsync(string directory, CancellationToken cancellationToken)
    {
        var output = await RunAsync("du", ["-sB1", directory], cancellationToken);
        return long.Parse(output.Split('\t', ' ')[0], CultureInfo.InvariantCulture);
    }

    /// <summary>MiB/s of <c>dd</c> reading <paramref name="file"/> sequentially (1 MiB blocks), from its own stderr summary's byte count and our clock.</summary>
    private static async Task<double> DdAsync(string file, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        await RunAsync("dd", [$"if={file}", "of=/dev/null", "bs=1M"], cancellationToken);
        return new FileInfo(file).Length / (double)MiB / Stats.Seconds(Stopwatch.GetTimestamp() - start);
    }

    private static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(fileName, arguments) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(startInfo) ?? throw new BenchFailureException($"could not start {fileName}");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new BenchFailureException($"{fileName} failed ({process.ExitCode}): {await error}");
        }

        return await output;
    }

    /// <summary>
    /// Evicts a file or every file under a directory (<paramref name="path"/>) from the page cache without root: fsync, then
    /// posix_fadvise(POSIX_FADV_DONTNEED) over the whole file (clean pages are dropped). The server must be stopped.
    /// </summary>
    private static void DropFromPageCache(string path)
    {
        foreach (var file in File.Exists(path) ? [path] : Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories))
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            RandomAccess.FlushToDisk(handle);
            var result = PosixFadvise((int)handle.DangerousGetHandle(), 0, 0, 4); // POSIX_FADV_DONTNEED
            if (result != 0)
            {
                throw new BenchFailureException($"posix_fadvise({file}) failed: {result}");
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(int fd, long offset, long length, int advice);

    private static void Log(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}]   {message}");
}

/// <summary>The process's open-file limit (scenarios 19 and 20 hold thousands of sockets).</summary>
internal static partial class FileLimit
{
    private const int RlimitNoFile = 7; // Linux

    /// <summary>Raises the soft RLIMIT_NOFILE to the hard one (children inherit it); returns "soft/hard", null off Linux.</summary>
    public static string? RaiseToHard()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var limit = default(RLimit);
        if (GetRLimit(RlimitNoFile, ref limit) != 0)
        {
            return null;
        }

        if (limit.Current < limit.Maximum)
        {
            var raised = limit with { Current = limit.Maximum };
            if (SetRLimit(RlimitNoFile, ref raised) == 0)
            {
                limit = raised;
            }
        }

        return string.Create(CultureInfo.InvariantCulture, $"{limit.Current}/{limit.Maximum}");
    }

    [StructLayout(LayoutKind.Sequential)]
    private record struct RLimit(ulong Current, ulong Maximum);

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRLimit(int resource, ref RLimit limit);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int SetRLimit(int resource, ref RLimit limit);
}
