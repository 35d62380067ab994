namespace DurableStreams.Bench;

/// <summary>One server configuration under test.</summary>
internal sealed record ServerSpec(string Name, bool IsOurs, bool IsFile)
{
    public static ServerSpec OursMemory { get; } = new("ours-memory", IsOurs: true, IsFile: false);

    public static ServerSpec OursFile { get; } = new("ours-file", IsOurs: true, IsFile: true);

    public static ServerSpec RefMemory { get; } = new("ref-memory", IsOurs: false, IsFile: false);

    public static ServerSpec RefFile { get; } = new("ref-file", IsOurs: false, IsFile: true);

    public static IReadOnlyList<ServerSpec> All { get; } = [OursMemory, OursFile, RefMemory, RefFile];

    /// <summary>The reference counterpart of one of ours (same store kind).</summary>
    public ServerSpec Counterpart => (IsOurs, IsFile) switch
    {
        (true, false) => RefMemory,
        (true, true) => RefFile,
        (false, false) => OursMemory,
        _ => OursFile,
    };
}

/// <summary>Scenario metadata: the metrics it reports, in table order.</summary>
internal sealed record ScenarioInfo(int Id, string Title, IReadOnlyList<MetricInfo> Metrics)
{
    // Server CPU time per operation over the measured window: steadier than rates on a shared machine.
    private static readonly MetricInfo Cpu = new("srv cpu us/op", LowerIsBetter: true);

    // The server's peak resident memory (VmHWM) by the end of the cell; every cell starts a fresh server by default.
    private static readonly MetricInfo Rss = new("peak RSS MiB", LowerIsBetter: true);

    // Scenarios 9 and 16 differ only in the readers' client (HttpClient or raw sockets).
    private static readonly MetricInfo[] FanOut =
    [
        new("long-poll p50 ms", LowerIsBetter: true), new("long-poll p99 ms", LowerIsBetter: true),
        new("sse p50 ms", LowerIsBetter: true), new("sse p99 ms", LowerIsBetter: true), new("writer msg/s", LowerIsBetter: false), Rss,
    ];

    // Scenario 17 also times each delivery at the reader's socket (the kernel's receive stamp), before the readers' queue.
    private static readonly MetricInfo[] FanOutWithSocket =
    [
        .. FanOut.Take(4), new("long-poll socket p99 ms", LowerIsBetter: true), new("sse socket p99 ms", LowerIsBetter: true), .. FanOut.Skip(4),
    ];

    public static IReadOnlyList<ScenarioInfo> All { get; } =
    [
        new(1, "Sequential 100 B appends, 1 connection, 1 stream",
            [new("appends/s", LowerIsBetter: false), new("p50 ms", LowerIsBetter: true), new("p99 ms", LowerIsBetter: true), Cpu, Rss]),
        new(2, "100 B appends, 64 connections, 64 streams", [new("appends/s", LowerIsBetter: false), Cpu, Rss]),
        new(3, "100 B appends, 64 connections, 1 stream", [new("appends/s", LowerIsBetter: false), Cpu, Rss]),
        new(4, "JSON, 10 messages/POST, 64 connections, 64 streams", [new("messages/s", LowerIsBetter: false), Cpu, Rss]),
        new(5, "Catch-up read of 64 MiB (written as 1 MiB appends)", [new("MiB/s", LowerIsBetter: false), Rss]),
        new(6, "Stream creates, 8 connections", [new("creates/s", LowerIsBetter: false), Rss]),
        new(7, "Append -> long-poll round trip", [new("p50 ms", LowerIsBetter: true), new("p99 ms", LowerIsBetter: true), Rss]),
        new(8, "Idempotent producers, 100 B, 64 connections, 64 streams", [new("appends/s", LowerIsBetter: false), Cpu, Rss]),
        new(9, "Fan-out: 200 long-poll + 200 SSE readers, writer at 50 msg/s", FanOut),
        new(10, "1,000 idle SSE subscribers on one stream", [new("added RSS MiB", LowerIsBetter: true), Rss]),
        new(11, "Sequential 100 B appends, 1 connection, 1 stream (wrk)",
            [new("appends/s", LowerIsBetter: false), new("p50 ms", LowerIsBetter: true), new("p99 ms", LowerIsBetter: true), Cpu,
             new("disk fdatasync p50 ms", LowerIsBetter: true), Rss]),
        new(12, "100 B appends, 64 connections, 64 streams (wrk)", [new("appends/s", LowerIsBetter: false), Cpu, Rss]),
        new(13, "Stream creates, 8 connections (wrk)", [new("creates/s", LowerIsBetter: false), Rss]),
        new(14, "JSON, 10 messages/POST, 64 connections, 64 streams (wrk)", [new("messages/s", LowerIsBetter: false), Cpu, Rss]),
        new(15, "Catch-up read of 64 MiB (curl)", [new("MiB/s", LowerIsBetter: false), Rss]),
        new(16, "Fan-out: 200 long-poll + 200 SSE readers, writer at 50 msg/s (socket readers)", FanOut),
        new(17, "Fan-out: 200 long-poll + 200 SSE readers, writer at 50 msg/s (socket readers on one epoll thread)", FanOutWithSocket),
        new(18, "Scale: a million streams (creates, restart, HEAD/read of random streams, disk per stream)",
            [new("creates/s", LowerIsBetter: false), new("slowest 10% creates/s", LowerIsBetter: false), new("restart ready s", LowerIsBetter: true),
             new("HEAD p50 ms", LowerIsBetter: true), new("HEAD p99 ms", LowerIsBetter: true), new("read p50 ms", LowerIsBetter: true),
             new("read p99 ms", LowerIsBetter: true), new("disk B/empty stream", LowerIsBetter: true), new("disk B/1-msg stream", LowerIsBetter: true), Rss]),
        new(19, "Scale: SSE readers, one per stream and all on one stream (socket readers on one epoll thread)",
            [new("per-stream socket p99 ms", LowerIsBetter: true), new("per-stream RSS B/idle reader", LowerIsBetter: true),
             new("one-stream socket p99 ms", LowerIsBetter: true), new("one-stream RSS B/idle reader", LowerIsBetter: true), Rss]),
        new(20, "Scale: fan-out to --fanout-readers readers, half long-poll half SSE, writer at 50 msg/s (epoll socket readers)", FanOutWithSocket),
        new(21, "Scale: gigabytes on disk (restart to ready, cold catch-up vs dd)",
            [new("write MiB/s", LowerIsBetter: false), new("clean restart ready s", LowerIsBetter: true), new("kill -9 restart ready s", LowerIsBetter: true),
             new("read-all-back MiB/s", LowerIsBetter: false), new("cold catch-up MiB/s", LowerIsBetter: false), new("dd cold MiB/s", LowerIsBetter: false), Rss]),
        new(22, "Scale: fixed-work memory (100 B messages over 1,000 streams; streams of one message)",
            [new("messages peak RSS MiB", LowerIsBetter: true), new("streams peak RSS MiB", LowerIsBetter: true)]),
        new(23, "Scale: 100 B appends, 64 concurrent over HTTP/1.1 (64 connections) and over h2c (one connection)",
            [new("h1 appends/s", LowerIsBetter: false), new("h2 appends/s", LowerIsBetter: false), new("h2/h1", LowerIsBetter: false), Rss]),
        new(24, "Scale: SSE readers as HTTP/2 streams over h2c, 100 to a connection, one per stream and all on one stream (HttpClient readers)",
            [new("per-stream reader p99 ms", LowerIsBetter: true), new("per-stream RSS B/idle reader", LowerIsBetter: true),
             new("one-stream reader p99 ms", LowerIsBetter: true), new("one-stream RSS B/idle reader", LowerIsBetter: true), Rss]),
    ];

    public static ScenarioInfo? Find(int id) => All.FirstOrDefault(s => s.Id == id);
}

/// <summary>One reported number of a scenario.</summary>
internal sealed record MetricInfo(string Name, bool LowerIsBetter);

/// <summary>The outcome of one scenario on one server in one repetition.</summary>
internal sealed record CellResult(IReadOnlyDictionary<string, double> Metrics, string? Failure = null, string? Note = null, string? Info = null)
{
    public static CellResult Failed(string reason) => new(new Dictionary<string, double>(), Failure: reason);
}

/// <summary>A verification failure: what the server answered or stored is not what the protocol promises.</summary>
internal sealed class BenchFailureException : Exception
{
    public BenchFailureException()
    {
    }

    public BenchFailureException(string message)
        : base(message)
    {
    }

    public BenchFailureException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
