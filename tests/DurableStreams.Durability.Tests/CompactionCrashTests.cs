using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using DurableStreams.Core;
using DurableStreams.Core.Compaction;
using DurableStreams.Protocol;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Compaction under crashes: a child process (this test assembly, running <see cref="Child_appends_changes_and_compacts_until_killed"/>)
/// appends State-Protocol changes to two JSON streams while a compactor compacts them over and over, and writes each
/// change before it appends it, each acknowledged change, and each compaction it saw committed to a file outside the
/// data directory; it is SIGKILLed at a seeded moment, several times over one directory (and, under LazyFS, its unsynced
/// writes are then dropped as a power cut would). After each kill the store opens, and a reader from -1 materialises,
/// by the State-Protocol rules, exactly the state of the acknowledged changes (plus, or not, the one change that was in
/// flight at the kill): never a mix of an old prefix and a snapshot. The retained start, generation and compacted end
/// never go back past reported ones.
/// </summary>
public sealed class CompactionCrashTests : IDisposable
{
    private const int Seed = 20261206;
    private const int Cycles = 4;
    private const int Streams = 2;
    private const int Keys = 40;
    private const string DataVariable = "DS_COMPACTION_CHILD_DATA";
    private const string LogVariable = "DS_COMPACTION_CHILD_LOG";
    private const string CycleVariable = "DS_COMPACTION_CHILD_CYCLE";
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(90);

    // Made on first use: the child runs in an instance of this class too and is killed with SIGKILL, so a directory
    // made by its constructor would never be deleted.
    private TempDirectory? _temp;

    private TempDirectory Temp => _temp ??= new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public Task Kill_9_during_compactions_under_appends_leaves_the_old_prefix_or_the_whole_snapshot() =>
        RunCyclesAsync(Temp.Combine("data"), cut: null);

    [Fact]
    [Trait("Category", "PowerCut")]
    public async Task Power_cuts_during_compactions_under_appends_leave_the_old_prefix_or_the_whole_snapshot()
    {
        var lazyfs = Environment.GetEnvironmentVariable("DS_LAZYFS");
        Assert.SkipWhen(string.IsNullOrEmpty(lazyfs), "Set DS_LAZYFS to the lazyfs binary to run the power-cut tests.");
        await using var mount = await PowerCutTests.LazyFsMount.StartAsync(lazyfs!, Temp.Path, Ct);
        await RunCyclesAsync(Path.Combine(mount.MountPoint, "data"), mount.ClearCacheAsync);
    }

    /// <summary>
    /// The child's workload, run only as a child (its environment names the directories): appends changes and compacts
    /// until it is killed (or, if nobody kills it, for a minute).
    /// </summary>
    [Fact]
    public async Task Child_appends_changes_and_compacts_until_killed()
    {
        var data = Environment.GetEnvironmentVariable(DataVariable);
        Assert.SkipWhen(string.IsNullOrEmpty(data), "Runs only as the child process of the compaction crash tests.");
        var cycle = int.Parse(Environment.GetEnvironmentVariable(CycleVariable)!, CultureInfo.InvariantCulture);
        await using var store = FileStreamStore.Open(Options(data!));
        await using var log = new CrashChild.Log(Environment.GetEnvironmentVariable(LogVariable)!);
        for (var s = 0; s < Streams; s++)
        {
            var created = await store.CreateAsync(StreamName(s), new CreateStreamRequest { ContentType = "application/json" }, Ct);
            Assert.True(created.Status is CreateStatus.Created or CreateStatus.AlreadyExists, created.Status.ToString());
        }
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var writers = Enumerable.Range(0, Streams).Select(s => Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                // Logged before it is sent: a change in flight at the kill may or may not be in the stream.
                await log.WriteAsync($"P {s} {cycle} {n}", Ct);
                var body = Encoding.UTF8.GetBytes(Change(cycle, s, n));
                var result = await store.AppendAsync(StreamName(s), new AppendRequest { ContentType = "application/json", Body = body }, Ct);
                Assert.Equal(AppendStatus.Appended, result.Status);
                await log.WriteAsync($"A {s} {cycle} {n}", Ct);
            }
        }, Ct)).ToList();
        var compactor = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                for (var s = 0; s < Streams; s++)
                {
                    var outcome = await StateCompactor.CompactAsync(store, StreamName(s), CompactionPolicy.State, force: true, Ct);
                    if (outcome.Status == CompactionStatus.Compacted && outcome.Info is { } info)
                    {
                        await log.WriteAsync($"C {s} {info.OffsetGeneration} {info.RetainedStart.Position} {info.CompactedEnd.Position}", Ct);
                    }
                }
                await Task.Delay(1, Ct);
            }
        }, Ct);
        await Task.WhenAll([.. writers, compactor]);
    }

    private async Task RunCyclesAsync(string data, Func<CancellationToken, Task>? cut)
    {
        Directory.CreateDirectory(data);
        var logPath = Temp.Combine("changes.log");
        var random = new Random(Seed);
        // Per stream: the changes known to be in it, in order, and the highest (generation, start, end) reported.
        var applied = Enumerable.Range(0, Streams).Select(_ => new List<(int Cycle, int N)>()).ToArray();
        var reported = new (long Generation, long Start, long End)[Streams];
        var parsed = 0;
        for (var cycle = 0; cycle < Cycles; cycle++)
        {
            using (var child = StartChild(data, logPath, cycle))
            {
                // Kill once the workload has both appended and compacted in this cycle, at a seeded moment after.
                await CrashChild.KillAfterProgressAsync(child, () => CrashChild.CountLines(logPath, parsed, 'C') >= 3 && CrashChild.CountLines(logPath, parsed, 'A') >= 100, random, Guard, cycle, Ct);
            }
            if (cut is not null)
            {
                await cut(Ct);
            }
            var lines = CrashChild.CompleteLinesCuttingTorn(logPath);
            var acknowledged = Enumerable.Range(0, Streams).Select(_ => new List<(int, int)>()).ToArray();
            var inFlight = new (int Cycle, int N)?[Streams];
            foreach (var line in lines.Skip(parsed))
            {
                var f = line.Split(' ');
                var s = int.Parse(f[1], CultureInfo.InvariantCulture);
                var (a, b) = (long.Parse(f[2], CultureInfo.InvariantCulture), long.Parse(f[3], CultureInfo.InvariantCulture));
                switch (f[0])
                {
                    case "P":
                        inFlight[s] = ((int)a, (int)b);
                        break;
                    case "A":
                        acknowledged[s].Add(((int)a, (int)b));
                        inFlight[s] = null;
                        break;
                    default:
                        var end = long.Parse(f[4], CultureInfo.InvariantCulture);
                        reported[s] = (Math.Max(reported[s].Generation, a), Math.Max(reported[s].Start, b), Math.Max(reported[s].End, end));
                        break;
                }
            }
            parsed = lines.Count;
            for (var s = 0; s < Streams; s++)
            {
                applied[s].AddRange(acknowledged[s]);
            }
            await VerifyAsync(data, applied, inFlight, reported, cycle);
        }
    }

    private static async Task VerifyAsync(string data, List<(int Cycle, int N)>[] applied, (int Cycle, int N)?[] inFlight, (long Generation, long Start, long End)[] reported, int cycle)
    {
        await using var store = FileStreamStore.Open(Options(data));
        for (var s = 0; s < Streams; s++)
        {
            var info = (await store.GetMetadataAsync(StreamName(s), Ct)).Info!;
            Assert.True(info.OffsetGeneration >= reported[s].Generation, $"cycle {cycle}: stream {s} came back with generation {info.OffsetGeneration}, below the reported {reported[s].Generation}");
            Assert.True(info.RetainedStart.Position >= reported[s].Start, $"cycle {cycle}: stream {s} came back with start {info.RetainedStart.Position}, below the reported {reported[s].Start}");
            Assert.True(info.CompactedEnd.Position >= reported[s].End, $"cycle {cycle}: stream {s} came back with compacted end {info.CompactedEnd.Position}, below the reported {reported[s].End}");
            reported[s] = (info.OffsetGeneration, info.RetainedStart.Position, info.CompactedEnd.Position);

            using var read = await store.ReadAsync(StreamName(s), new ReadRequest(OffsetQuery.Beginning, int.MaxValue), Ct);
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.Equal(info.RetainedStart.Position, read.Start.Position);
            Assert.Equal(info.Tail.Position, read.Next.Position);
            var stored = Encoding.UTF8.GetString(read.Chunks.SelectMany(c => c.ToArray()).ToArray());
            var actual = Materialize(stored.Length == 0 ? "[]" : "[" + stored[..^1] + "]");

            var without = Expected(applied[s], s, extra: null);
            if (Same(actual, without))
            {
                continue;
            }
            Assert.True(inFlight[s] is not null, $"cycle {cycle}: stream {s} materialises to a state no acknowledged history gives ({actual.Count} keys, expected {without.Count})");
            var with = Expected(applied[s], s, inFlight[s]);
            Assert.True(Same(actual, with), $"cycle {cycle}: stream {s} materialises to a state neither with nor without the change in flight ({actual.Count} keys)");
            // The change in flight was committed: it is part of the stream's history from now on.
            applied[s].Add(inFlight[s]!.Value);
        }
    }

    private static Dictionary<string, string> Expected(List<(int Cycle, int N)> changes, int stream, (int Cycle, int N)? extra)
    {
        var state = new Dictionary<string, string>();
        foreach (var (c, n) in extra is { } e ? changes.Append(e) : changes)
        {
            Apply(state, JsonNode.Parse(Change(c, stream, n))!);
        }
        return state;
    }

    private static Dictionary<string, string> Materialize(string array)
    {
        var state = new Dictionary<string, string>();
        foreach (var message in JsonNode.Parse(array)!.AsArray())
        {
            Apply(state, message!);
        }
        return state;
    }

    /// <summary>The State-Protocol rules, as a reader applies them: insert/update/upsert set, delete removes, reset clears.</summary>
    private static void Apply(Dictionary<string, string> state, JsonNode message)
    {
        var headers = message["headers"]!;
        if (headers["control"] is { } control)
        {
            if ((string?)control == "reset")
            {
                state.Clear();
            }
            return;
        }
        var key = (string)message["type"]! + "/" + (string)message["key"]!;
        if ((string?)headers["operation"] == "delete")
        {
            state.Remove(key);
        }
        else
        {
            state[key] = message["value"]!.ToJsonString();
        }
    }

    private static bool Same(Dictionary<string, string> a, Dictionary<string, string> b) =>
        a.Count == b.Count && a.All(p => b.TryGetValue(p.Key, out var v) && v == p.Value);

    /// <summary>A stream's n-th change in a cycle, deterministic: mostly upserts of one of 40 keys, some deletes and inserts, rare resets.</summary>
    private static string Change(int cycle, int stream, int n)
    {
        // Not HashCode.Combine: its seed differs per process, and the child and the parent must agree.
        var random = new Random(Seed + (((cycle * Streams) + stream) * 10_000_000) + n);
        var roll = random.Next(1000);
        if (roll < 3)
        {
            return """{"headers":{"control":"reset"}}""";
        }
        var key = "k" + random.Next(Keys).ToString(CultureInfo.InvariantCulture);
        var operation = roll < 150 ? "delete" : roll < 250 ? "insert" : roll < 350 ? "update" : "upsert";
        if (operation == "delete")
        {
            return $$$"""{"type":"row","key":"{{{key}}}","headers":{"operation":"delete"}}""";
        }
        var pad = new string((char)('a' + random.Next(26)), random.Next(10, 400));
        return $$$"""{"type":"row","key":"{{{key}}}","value":{"c":{{{cycle}}},"n":{{{n}}},"pad":"{{{pad}}}"},"headers":{"operation":"{{{operation}}}"}}""";
    }

    private static FileStreamStoreOptions Options(string data) => new()
    {
        DataDirectory = data,
        Durability = DurabilityMode.Always,
    };

    private static string StreamName(int stream) => "state/" + stream.ToString(CultureInfo.InvariantCulture);

    private static Process StartChild(string data, string log, int cycle) =>
        CrashChild.Start(typeof(CompactionCrashTests), nameof(Child_appends_changes_and_compacts_until_killed), new Dictionary<string, string>
        {
            [DataVariable] = data,
            [LogVariable] = log,
            [CycleVariable] = cycle.ToString(CultureInfo.InvariantCulture),
        });

    public void Dispose() => _temp?.Dispose();
}
