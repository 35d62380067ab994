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
