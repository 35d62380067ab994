using System.Globalization;

namespace DurableStreams.Bench;

/// <summary>Command line of the benchmark.</summary>
internal sealed class BenchOptions
{
    public const string Usage = """
        Usage: dotnet run -c Release --project scripts/bench -- [options]

          --duration <seconds>   Time per scenario and server, warm-up included (default 5).
          --repeat <n>           Interleaved repetitions; the table shows medians (default 3).
          --servers <list>       Comma-separated subset of ours-memory,ours-file,ref-memory,ref-file (default: all).
          --scenarios <list>     Comma-separated subset of 1..17 (default: all; 11-14 only where wrk is installed, 15 where curl is, 17 on Linux).
          --creates <n>          Stream creates in scenario 6 (default 20000).
          --server-warmup <s>    Unmeasured mixed traffic for every server after it starts (default 10; 0 = none).
          --reuse-servers        Start each server once for the whole run instead of afresh (empty store) for every cell.
          --build                Rebuild src/DurableStreams.Cli (Release) even if durable-streams.dll exists.
          --ours <path>          durable-streams.dll to benchmark instead of artifacts/bin/DurableStreams.Cli/release.
          --output <file>        Also write the markdown report to this file.

        Scale scenarios (18-24; never in the default list, name them with --scenarios; sizes, not --duration, bound them):
          --streams <n>          18: streams created (default 1000000).
          --readers <n>          19, 24: SSE readers, one per stream and then all on one stream (default 10000).
          --fanout-readers <n>   20: fan-out readers, half SSE, half long-poll (default 1000).
          --gib <n>              21: GiB written (default 10) over --gib-streams streams (default 10000);
          --cold-gib <n>             then one stream of this many GiB read cold (default 1).
          --gib-hold <file>      21: after the read-back, write the server's pid to <file> and wait until it is deleted
                                 (to inspect the read-back server: /proc, dotnet-gcdump).
          --fixed-messages <n>   22: 100 B messages over 1,000 streams (default 1000000), then
          --fixed-streams <n>        this many streams of one message (default 100000).
          --messages <n>         19, 24: messages each reader must receive (default 20; 20 runs for --duration).
          --drop-one             Self-check of 19, 20 and 24: one reader forgets one message, so the cell must FAIL.
          --scale-timeout <min>  Hard time limit of one scale cell (default 240).
          -h, --help             Show this help.

        Scenarios: 1 sequential 100 B appends (one connection), 2 64 connections x 64 streams, 3 64 connections x one stream,
        4 JSON 10 messages/POST x 64 connections, 5 64 MiB catch-up read, 6 stream creates with 8 connections,
        7 append -> long-poll round trip, 8 idempotent producers, 9 fan-out to 200 long-poll + 200 SSE readers,
        10 1,000 idle SSE subscribers, 11-14 the same as 1, 2, 6 and 4 with wrk as the load generator, 15 the same as 5 read by curl,
        16 the same as 9 with lean raw-socket readers instead of HttpClient, 17 the same as 16 with all readers received on one epoll thread;
        scale: 18 a million streams (file store), 19 ten thousand SSE readers, 20 fan-out to 1,000 readers at the sockets,
        21 gigabytes on disk (restart and cold catch-up), 22 fixed-work memory, 23 HTTP/2 (h2c) vs HTTP/1.1 appends (ours only),
        24 the same as 19 with the readers as HTTP/2 streams over h2c, 100 to a connection (ours only).
        """;

    public double DurationSeconds { get; private set; } = 5;

    public int Repeat { get; private set; } = 3;

    public IReadOnlyList<ServerSpec> Servers { get; private set; } = ServerSpec.All;

    public IReadOnlyList<int> Scenarios { get; set; } = [.. ScenarioInfo.All.Where(s => !ScaleScenarios.Handles(s.Id)).Select(s => s.Id)];

    public long ScaleStreams { get; private set; } = 1_000_000;

    public int Readers { get; private set; } = 10_000;

    public int FanOutReaders { get; private set; } = 1_000;

    public double Gib { get; private set; } = 10;

    public int GibStreams { get; private set; } = 10_000;

    public double ColdGib { get; private set; } = 1;

    public string? GibHold { get; private set; }

    public long FixedMessages { get; private set; } = 1_000_000;

    public int FixedStreams { get; private set; } = 100_000;

    public int Messages { get; private set; } = 20;

    public bool DropOne { get; private set; }

    public double ScaleTimeoutMinutes { get; private set; } = 240;

    public int Creates { get; private set; } = 20_000;

    /// <summary>True when --scenarios was given (then a wrk scenario without wrk is an error, not a skip).</summary>
    public bool ScenariosGiven { get; private set; }

    public bool Build { get; private set; }

    /// <summary>Seconds of unmeasured mixed traffic each server gets after it starts (see <see cref="ServerWarmup"/>).</summary>
    public double ServerWarmupSeconds { get; private set; } = 10;

    public bool ReuseServers { get; private set; }

    public string? OursDll { get; private set; }

    public string? OutputFile { get; private set; }

    public bool ShowHelp { get; private set; }

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            switch (arg)
            {
                case "-h" or "--help" or "-?":
                    options.ShowHelp = true;
                    break;
                case "--duration":
                    options.DurationSeconds = ParseDouble(arg, Next(args, ref i), 0.5, 3600);
                    break;
                case "--repeat":
                    options.Repeat = (int)ParseDouble(arg, Next(args, ref i), 1, 100);
                    break;
                case "--creates":
                    options.Creates = (int)ParseDouble(arg, Next(args, ref i), 1, 10_000_000);
                    break;
                case "--streams":
                    options.ScaleStreams = (long)ParseDouble(arg, Next(args, ref i), 1, 100_000_000);
                    break;
                case "--readers":
                    options.Readers = (int)ParseDouble(arg, Next(args, ref i), 1, 1_000_000);
                    break;
                case "--fanout-readers":
                    options.FanOutReaders = (int)ParseDouble(arg, Next(args, ref i), 2, 1_000_000);
                    break;
                case "--gib":
                    options.Gib = ParseDouble(arg, Next(args, ref i), 0.001, 10_000);
                    break;
                case "--gib-streams":
                    options.GibStreams = (int)ParseDouble(arg, Next(args, ref i), 1, 10_000_000);
                    break;
                case "--cold-gib":
                    options.ColdGib = ParseDouble(arg, Next(args, ref i), 0.001, 1_000);
                    break;
                case "--gib-hold":
                    options.GibHold = Path.GetFullPath(Next(args, ref i));
                    break;
                case "--fixed-messages":
                    options.FixedMessages = (long)ParseDouble(arg, Next(args, ref i), 1, 1_000_000_000);
                    break;
                case "--fixed-streams":
                    options.FixedStreams = (int)ParseDouble(arg, Next(args, ref i), 1, 100_000_000);
                    break;
                case "--messages":
                    options.Messages = (int)ParseDouble(arg, Next(args, ref i), 1, 1_000_000);
                    break;
                case "--drop-one":
                    options.DropOne = true;
                    break;
                case "--scale-timeout":
                    options.ScaleTimeoutMinutes = ParseDouble(arg, Next(args, ref i), 1, 10_000);
                    break;
                case "--servers":
                    options.Servers = ParseServers(Next(args, ref i));
                    break;
                case "--scenarios":
                    options.Scenarios = ParseScenarios(Next(args, ref i));
                    options.ScenariosGiven = true;
                    break;
                case "--server-warmup":
                    options.ServerWarmupSeconds = ParseDouble(arg, Next(args, ref i), 0, 600);
                    break;
                case "--reuse-servers":
                    options.ReuseServers = true;
                    break;
                case "--build":
                    options.Build = true;
                    break;
                case "--ours":
                    options.OursDll = Path.GetFullPath(Next(args, ref i));
                    break;
                case "--output":
                    options.OutputFile = Path.GetFullPath(Next(args, ref i));
                    break;
                default:
                    throw new ArgumentException($"Unknown argument '{arg}'.");
            }
        }

        if (options.ReuseServers && options.Scenarios.Any(ScaleScenarios.Handles))
        {
            throw new ArgumentException("--reuse-servers cannot run the scale scenarios 18-24: they stop and restart the cell's server.");
        }

        return options;
    }

    private static string Next(string[] args, ref int i)
    {
        if (i + 1 >= args.Length)
        {
            throw new ArgumentException($"{args[i]} needs a value.");
        }

        return args[++i];
    }

    private static double ParseDouble(string name, string text, double min, double max)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new ArgumentException($"Invalid value '{text}' for {name}: expected a number from {min} to {max}.");
        }

        return value;
    }

    private static List<ServerSpec> ParseServers(string text)
    {
        var result = new List<ServerSpec>();
        foreach (var name in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var spec = ServerSpec.All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new ArgumentException($"Unknown server '{name}': expected {string.Join(", ", ServerSpec.All.Select(s => s.Name))}.");
            if (!result.Contains(spec))
            {
                result.Add(spec);
            }
        }

        if (result.Count == 0)
        {
            throw new ArgumentException("--servers needs at least one server.");
        }

        // Keep the canonical order so the table columns do not depend on how the list was typed.
        return [.. ServerSpec.All.Where(result.Contains)];
    }

    private static List<int> ParseScenarios(string text)
    {
        var result = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || ScenarioInfo.Find(id) is null)
            {
                throw new ArgumentException($"Unknown scenario '{part}': expected 1 to {ScenarioInfo.All.Count}.");
            }

            result.Add(id);
        }

        if (result.Count == 0)
        {
            throw new ArgumentException("--scenarios needs at least one scenario.");
        }

        return [.. result];
    }
}
