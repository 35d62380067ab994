using System.Diagnostics;
using System.Globalization;
using System.Net;
using DurableStreams.Server;
using DurableStreams.Storage.Postgres;

// Appends/s of N in-process server nodes sharing one PostgreSQL database; clients spread round-robin over the nodes.
// Usage: dotnet run -c Release --project scripts/pgbench -- --postgres "<connection string>" [--nodes 1,3] [--duration 5]
//        [--scenarios 1,2,3] [--no-wake] [--locking] [--warmup 2] [--no-notify] [--memory] [--no-batch] [--direct] [--trace]
//        or   --setup <schema> (streams for PostgreSQL's pgbench, append.sql)
var connection = Arg("--postgres") ?? Environment.GetEnvironmentVariable("DS_POSTGRES")
    ?? throw new ArgumentException("--postgres <connection string> (or DS_POSTGRES) is required.");
var nodeCounts = (Arg("--nodes") ?? "1,3").Split(',').Select(n => int.Parse(n, CultureInfo.InvariantCulture)).ToArray();
var duration = TimeSpan.FromSeconds(double.Parse(Arg("--duration") ?? "5", CultureInfo.InvariantCulture));
// --locking: every append through the locking transaction (three round trips), as before ds_append, for comparison.
var locking = args.Contains("--locking");
// --scenarios: which rows to run, by number (1: one connection, 2: 64 connections on 64 streams, 3: 64 on one stream).
var scenarios = (Arg("--scenarios") ?? "1,2,3").Split(',');
// --warmup: seconds each scenario runs unmeasured first (JIT tiering, pools), so the first row is not the slowest.
var warmup = TimeSpan.FromSeconds(double.Parse(Arg("--warmup") ?? "2", CultureInfo.InvariantCulture));
// --no-notify: nodes without LISTEN/NOTIFY (CrossNodeNotifications off), to measure what the wake-ups cost.
var notify = !args.Contains("--no-notify");
// --memory: the same HTTP harness on one memory store node (the HTTP + rules cost without PostgreSQL).
var memory = args.Contains("--memory");
// --no-batch: PostgresStreamStoreOptions.BatchAppends off (each append its own commit), for comparison.
var batch = !args.Contains("--no-batch");
// --direct: one writer calling the first node's store.AppendAsync in process, no HTTP (the store call's own latency).
var direct = args.Contains("--direct");
// --trace: on the one-connection row, timestamps per append from an ActivityListener (the node's request, its Npgsql
// commands) and the client's own; prints the median of each step. Costs a few µs per append itself.
using var trace = args.Contains("--trace") ? new StepTrace() : null;
var payload = new byte[100];
Array.Fill(payload, (byte)'x');

// --setup <schema>: migrate that schema and create streams bench-1..bench-64 for PostgreSQL's own pgbench (append.sql).
if (Arg("--setup") is { } setupSchema)
{
    await using var store = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions { ConnectionString = connection, Schema = setupSchema });
    for (var i = 1; i <= 64; i++)
    {
        await store.CreateAsync($"bench-{i}", new DurableStreams.Core.CreateStreamRequest { ContentType = "application/octet-stream" });
    }
    Console.WriteLine($"schema {setupSchema}: streams bench-1..bench-64");
    return;
}

Console.WriteLine("| nodes | scenario | appends/s | p50 ms | p99 ms | CPU µs/append | sleeps/append |");
Console.WriteLine("|---|---|---|---|---|---|---|");
var wakeRows = new List<string>();
foreach (var nodes in nodeCounts)
{
    var schema = $"pgbench_{Environment.ProcessId}_{nodes}";
    var stores = new List<IAsyncDisposable>();
    var servers = new List<DurableStreamServer>();
    for (var i = 0; i < nodes; i++)
    {
        DurableStreams.Core.IStreamStore store = memory
            ? new DurableStreams.Core.Memory.MemoryStreamStore()
            : await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
            {
                ConnectionString = connection, Schema = schema, OneRoundTripAppends = !locking, CrossNodeNotifications = notify, BatchAppends = batch,
            });
        stores.Add(store);
        var server = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = store });
        await server.StartAsync();
        servers.Add(server);
    }
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 });
    if (direct)
    {
        await Direct((DurableStreams.Core.IStreamStore)stores[0]);
    }
    if (scenarios.Contains("1") && !direct)
    {
        await Run(nodes, "1 connection, 1 stream", 1, shared: true);
    }
    if (scenarios.Contains("2") && !direct)
    {
        await Run(nodes, "64 connections, 64 streams", 64, shared: false);
    }
    if (scenarios.Contains("3") && !direct)
    {
        await Run(nodes, "64 connections, 1 stream", 64, shared: true);
    }
    if (!args.Contains("--no-wake") && !direct)
    {
        wakeRows.Add(await WakeLatency(http, servers, nodes));
    }
    foreach (var server in servers)
    {
        await server.DisposeAsync();
    }
    foreach (var store in stores)
    {
        await store.DisposeAsync();
    }

    // One writer, no HTTP: store.AppendAsync in a loop (warmed up as the HTTP rows are), p50/p99 of the call itself.
    async Task Direct(DurableStreams.Core.IStreamStore store)
    {
        var name = $"direct-{Guid.NewGuid():N}";
        await store.CreateAsync(name, new DurableStreams.Core.CreateStreamRequest { ContentType = "application/octet-stream" });
        foreach (var (span, print) in new[] { (warmup, false), (duration, true) })
        {
            var samples = new List<double>();
            var sleeps = Sleeps();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var stop = Stopwatch.StartNew();
            while (stop.Elapsed < span)
            {
                var started = Stopwatch.GetTimestamp();
                var result = await store.AppendAsync(name, new DurableStreams.Core.AppendRequest { ContentType = "application/octet-stream", Body = payload });
                if (result.Status != DurableStreams.Core.AppendStatus.Appended)
                {
                    throw new InvalidOperationException($"append: {result.Status}");
                }
                samples.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            var cpuPerAppend = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds / samples.Count;
            sleeps = Sleeps() - sleeps;
            samples.Sort();
            if (print)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {nodes} | store.AppendAsync, no HTTP | {samples.Count / stop.Elapsed.TotalSeconds:F0} | {samples[samples.Count / 2]:F2} | {samples[(int)(samples.Count * 0.99)]:F2} | {cpuPerAppend:F0} | {(double)sleeps / samples.Count:F1} |"));
            }
        }
    }

    async Task Run(int nodeCount, string title, int writers, bool shared)
    {
        if (warmup > TimeSpan.Zero)
        {
            await Measure(nodeCount, title, writers, shared, warmup, print: false);
        }
        await Measure(nodeCount, title, writers, shared, duration, print: true);
    }

    async Task Measure(int nodeCount, string title, int writers, bool shared, TimeSpan duration, bool print)
    {
        var prefix = Guid.NewGuid().ToString("N");
        for (var w = 0; w < (shared ? 1 : writers); w++)
        {
            using var put = await http.PutAsync(Url(w, $"{prefix}-{w}"), new ByteArrayContent([]) { Headers = { ContentType = new("application/octet-stream") } });
            if (put.StatusCode != HttpStatusCode.Created)
            {
                throw new InvalidOperationException($"create: {(int)put.StatusCode}");
            }
        }
        var latencies = new List<double>[writers];
        var sleeps = Sleeps();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var stop = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = [];
            var name = shared ? $"{prefix}-0" : $"{prefix}-{w}";
            var url = Url(w, name);
            while (stop.Elapsed < duration)
            {
                var started = Stopwatch.GetTimestamp();
                trace?.Mark(print && writers == 1, "client start");
                using var response = await http.PostAsync(url, new ByteArrayContent(payload) { Headers = { ContentType = new("application/octet-stream") } });
                trace?.Mark(print && writers == 1, "client end");
                if (response.StatusCode != HttpStatusCode.NoContent)
                {
                    throw new InvalidOperationException($"append: {(int)response.StatusCode}");
                }
                mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        })));
        var elapsed = stop.Elapsed;
        // CPU of this process (the nodes and the HTTP clients) per append: robust against other load on the machine.
        var cpuPerAppend = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMicroseconds;
        sleeps = Sleeps() - sleeps;
        var all = latencies.SelectMany(l => l).Order().ToList();
        var rate = all.Count / elapsed.TotalSeconds;
        cpuPerAppend /= all.Count;

        // Verify through another node than the one that wrote: every acknowledged append is there, once.
        for (var w = 0; w < (shared ? 1 : writers); w++)
        {
            var expected = (shared ? all.Count : latencies[w].Count) * (long)payload.Length;
            var stored = await ReadLength(http, servers[(w + 1) % servers.Count], $"{prefix}-{w}");
            if (stored != expected)
            {
                throw new InvalidOperationException($"stream {w}: {stored} bytes stored, {expected} acknowledged");
            }
        }

        if (print && writers == 1)
        {
            trace?.Report();
        }
        if (print)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {nodeCount} | {title} | {rate:F0} | {all[all.Count / 2]:F2} | {all[(int)(all.Count * 0.99)]:F2} | {cpuPerAppend:F0} | {(double)sleeps / all.Count:F1} |"));
        }

        // Each writer targets "its" node, so load spreads round-robin over the cluster.
        Uri Url(int writer, string stream) => new(servers[writer % servers.Count].StreamsUrl, stream);
    }
}

Console.WriteLine();
Console.WriteLine("| nodes | wake latency | samples | p50 ms | p99 ms |");
Console.WriteLine("|---|---|---|---|---|");
foreach (var row in wakeRows)
{
    Console.WriteLine(row);
}

// Append on one node, a long-poll reader waiting on the next (the same node when there is one): time from the start
// of the POST until the reader has the bytes. Across nodes this is the LISTEN/NOTIFY path.
async Task<string> WakeLatency(HttpClient http, List<DurableStreamServer> servers, int nodes)
{
    var writerNode = servers[0];
    var readerNode = servers[nodes > 1 ? 1 : 0];
    var name = $"wake-{Guid.NewGuid():N}";
    using var put = await http.PutAsync(new Uri(writerNode.StreamsUrl, name), new ByteArrayContent([]) { Headers = { ContentType = new("application/octet-stream") } });
    var offset = put.Headers.GetValues("Stream-Next-Offset").First();
    var samples = new List<double>();
    var until = Stopwatch.StartNew();
    while (until.Elapsed < duration)
    {
        var poll = http.GetAsync(new Uri(readerNode.StreamsUrl, $"{name}?offset={offset}&live=long-poll"));
        // Give the long-poll time to reach the node and park before the append (a wake, not a catch-up, is measured).
        await Task.Delay(5);
        var started = Stopwatch.GetTimestamp();
        using var append = await http.PostAsync(new Uri(writerNode.StreamsUrl, name), new ByteArrayContent(payload) { Headers = { ContentType = new("application/octet-stream") } });
        if (append.StatusCode != HttpStatusCode.NoContent)
        {
            throw new InvalidOperationException($"append: {(int)append.StatusCode}");
        }
        using var response = await poll;
        var body = await response.Content.ReadAsByteArrayAsync();
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        if (response.StatusCode != HttpStatusCode.OK || body.Length != payload.Length)
        {
            throw new InvalidOperationException($"long-poll: {(int)response.StatusCode} with {body.Length} bytes");
        }
        samples.Add(elapsed);
        offset = response.Headers.GetValues("Stream-Next-Offset").First();
    }
    samples.Sort();
    return string.Create(CultureInfo.InvariantCulture,
        $"| {nodes} | {(nodes > 1 ? "append on node 1, long-poll on node 2" : "append and long-poll on one node")} | {samples.Count} | {samples[samples.Count / 2]:F2} | {samples[(int)(samples.Count * 0.99)]:F2} |");
}

async Task<long> ReadLength(HttpClient http, DurableStreamServer node, string name)
{
    long total = 0;
    var offset = "-1";
    while (true)
    {
        using var response = await http.GetAsync(new Uri(node.StreamsUrl, $"{name}?offset={offset}"));
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"read: {(int)response.StatusCode}");
        }
        total += (await response.Content.ReadAsByteArrayAsync()).Length;
        offset = response.Headers.GetValues("Stream-Next-Offset").First();
        if (response.Headers.Contains("Stream-Up-To-Date"))
        {
            return total;
        }
    }
}

// Voluntary context switches of the process's live threads (Linux): each is a thread going to sleep, to be woken later;
// per append, a count other load on the machine barely moves.
static long Sleeps()
{
    long total = 0;
    foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
    {
        try
        {
            foreach (var line in File.ReadLines(Path.Combine(task, "status")))
            {
                if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                {
                    total += long.Parse(line.AsSpan("voluntary_ctxt_switches:".Length).Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // The thread ended meanwhile.
        }
    }
    return total;
}

string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

/// <summary>
/// Timestamps (Stopwatch ticks) of the client's start and end of each append and of the node's activities (ASP.NET
/// Core's request, Npgsql's commands) in between; one writer only, so each append's events follow each other.
/// </summary>
internal sealed class StepTrace : IDisposable
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<(long At, string What)> _events = new();
    private readonly ActivityListener _listener;
    private volatile bool _on;

    public StepTrace()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Npgsql" or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStarted = activity => Add(activity, "start"),
            ActivityStopped = activity => Add(activity, "end"),
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener.Dispose();

    // Tags are set after an activity starts, so both edges are queued when it stops (the start's time kept on it).
    private void Add(Activity activity, string edge)
    {
        if (edge == "start")
        {
            activity.SetCustomProperty(nameof(StepTrace), Stopwatch.GetTimestamp());
            return;
        }
        if (_on && activity.GetCustomProperty(nameof(StepTrace)) is long started)
        {
            var what = activity.Source.Name != "Npgsql" ? "request"
                : activity.DisplayName.StartsWith("CONNECT", StringComparison.Ordinal) ? "connect"
                : activity.TagObjects.Any(t => t.Value?.ToString()?.Contains("pg_notify", StringComparison.Ordinal) == true) ? "notify"
                : "sql";
            _events.Enqueue((started, what + " start"));
            _events.Enqueue((Stopwatch.GetTimestamp(), what + " end"));
        }
    }

    public void Mark(bool on, string what)
    {
        _on = on;
        if (on)
        {
            _events.Enqueue((Stopwatch.GetTimestamp(), what));
        }
    }

    /// <summary>Per append: the µs from each event to the next (client start, request start, sql start, sql end, request end, client end).</summary>
    public void Report()
    {
        _on = false;
        string[] steps = ["client start", "request start", "sql start", "sql end", "request end", "client end"];
        var gaps = new List<double>[steps.Length - 1];
        for (var i = 0; i < gaps.Length; i++)
        {
            gaps[i] = [];
        }
        var notifies = 0;
        var connects = 0;
        var current = new Dictionary<string, long>();
        foreach (var (at, what) in _events.OrderBy(e => e.At))
        {
            if (what.StartsWith("notify", StringComparison.Ordinal))
            {
                notifies += what.EndsWith("start", StringComparison.Ordinal) ? 1 : 0;
                continue;
            }
            if (what.StartsWith("connect", StringComparison.Ordinal))
            {
                connects += what.EndsWith("start", StringComparison.Ordinal) ? 1 : 0;
                continue;
            }
            if (what == "client start")
            {
                current.Clear();
            }
            current.TryAdd(what, at);
            if (what == "client end" && steps.All(current.ContainsKey))
            {
                for (var i = 0; i < gaps.Length; i++)
                {
                    gaps[i].Add(Stopwatch.GetElapsedTime(current[steps[i]], current[steps[i + 1]]).TotalMicroseconds);
                }
            }
        }
        _events.Clear();
        Console.WriteLine($"trace: {gaps[0].Count} appends, {notifies} NOTIFY commands, {connects} physical connections opened; median µs per step (p90):");
        for (var i = 0; i < gaps.Length; i++)
        {
            var sorted = gaps[i].Order().ToList();
            if (sorted.Count > 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {steps[i]} -> {steps[i + 1]}: {sorted[sorted.Count / 2]:F0} ({sorted[sorted.Count * 9 / 10]:F0})"));
            }
        }
    }
}
