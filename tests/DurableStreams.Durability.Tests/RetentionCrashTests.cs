using System.Diagnostics;
using System.Globalization;
using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Retention under crashes: a child process (this test assembly, running <see cref="Child_appends_and_trims_until_killed"/>)
/// appends to four streams while retention trims them, and writes each acknowledged append and each reported retained
/// start to a file outside the data directory; it is SIGKILLed at a seeded moment, several times over one directory
/// (and, under LazyFS, its unsynced writes are then dropped as a power cut would). After each kill the store opens with
/// every stream's retained start at or past every start reported before the kill, and every acknowledged byte at or
/// above it present and intact.
/// </summary>
public sealed class RetentionCrashTests : IDisposable
{
    private const int Seed = 20261218;
    private const int Cycles = 4;
    private const int Streams = 4;
    private const string DataVariable = "DS_RETENTION_CHILD_DATA";
    private const string AcksVariable = "DS_RETENTION_CHILD_ACKS";
    private const string CycleVariable = "DS_RETENTION_CHILD_CYCLE";
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(90);
    private static readonly RetentionPolicies Policies = new([new RetentionRule("**", new RetentionPolicy(null, 256 * 1024))]);

    // Made on first use: the child runs in an instance of this class too and is killed with SIGKILL, so a directory
    // made by its constructor would never be deleted.
    private TempDirectory? _temp;

    private TempDirectory Temp => _temp ??= new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public Task Kill_9_during_trims_under_appends_never_moves_the_start_back_nor_loses_an_acknowledged_byte_above_it() =>
        RunCyclesAsync(Temp.Combine("data"), cut: null);

    [Fact]
    [Trait("Category", "PowerCut")]
    public async Task Power_cuts_during_trims_under_appends_never_move_the_start_back_nor_lose_an_acknowledged_byte_above_it()
    {
        var lazyfs = Environment.GetEnvironmentVariable("DS_LAZYFS");
        Assert.SkipWhen(string.IsNullOrEmpty(lazyfs), "Set DS_LAZYFS to the lazyfs binary to run the power-cut tests.");
        await using var mount = await PowerCutTests.LazyFsMount.StartAsync(lazyfs!, Temp.Path, Ct);
        await RunCyclesAsync(Path.Combine(mount.MountPoint, "data"), mount.ClearCacheAsync);
    }

    /// <summary>
    /// The child's workload, run only as a child (its environment names the directories): appends and trims until it is
    /// killed (or, if nobody kills it, for a minute).
    /// </summary>
    [Fact]
    public async Task Child_appends_and_trims_until_killed()
    {
        var data = Environment.GetEnvironmentVariable(DataVariable);
        Assert.SkipWhen(string.IsNullOrEmpty(data), "Runs only as the child process of the retention crash tests.");
        var cycle = int.Parse(Environment.GetEnvironmentVariable(CycleVariable)!, CultureInfo.InvariantCulture);
        await using var store = FileStreamStore.Open(Options(data!));
        await using var log = new CrashChild.Log(Environment.GetEnvironmentVariable(AcksVariable)!);
        for (var s = 0; s < Streams; s++)
        {
            var created = await store.CreateAsync(StreamName(s), new CreateStreamRequest { ContentType = "application/octet-stream" }, Ct);
            Assert.True(created.Status is CreateStatus.Created or CreateStatus.AlreadyExists, created.Status.ToString());
        }
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        var writers = Enumerable.Range(0, Streams).Select(s => Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var body = Body(cycle, s, n);
                var result = await store.AppendAsync(StreamName(s), new AppendRequest { ContentType = "application/octet-stream", Body = body }, Ct);
                Assert.Equal(AppendStatus.Appended, result.Status);
                await log.WriteAsync($"A {s} {result.NextOffset.Position - body.Length} {body.Length} {cycle} {n}", Ct);
            }
        }, Ct)).ToList();
        var trimmer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                for (var s = 0; s < Streams; s++)
                {
                    var result = await store.ApplyRetentionAsync(StreamName(s), Policies.Resolve(StreamName(s)), Ct);
                    if (result.Status == RetentionStatus.Trimmed)
                    {
                        await log.WriteAsync($"S {s} {result.RetainedStart.Position}", Ct);
                    }
                }
                await Task.Delay(2, Ct);
            }
        }, Ct);
        await Task.WhenAll([.. writers, trimmer]);
    }

    private async Task RunCyclesAsync(string data, Func<CancellationToken, Task>? cut)
    {
        Directory.CreateDirectory(data);
        var acksPath = Temp.Combine("acks.log");
        var random = new Random(Seed);
        var reported = new long[Streams];
        var appends = new List<(int Stream, long Position, int Length, int Cycle, int N)>();
        var parsed = 0;
        for (var cycle = 0; cycle < Cycles; cycle++)
        {
            using (var child = StartChild(data, acksPath, cycle))
            {
                // Kill once the workload has both appended and trimmed in this cycle, at a seeded moment after.
                await CrashChild.KillAfterProgressAsync(child, () => CrashChild.CountLines(acksPath, parsed, 'S') >= 3 && CrashChild.CountLines(acksPath, parsed, 'A') >= 50, random, Guard, cycle, Ct);
            }
            if (cut is not null)
            {
                await cut(Ct);
            }
            parsed = Parse(acksPath, reported, appends);
            await VerifyAsync(data, reported, appends, cycle);
        }
    }

    private static async Task VerifyAsync(string data, long[] reported, List<(int Stream, long Position, int Length, int Cycle, int N)> appends, int cycle)
    {
        await using var store = FileStreamStore.Open(Options(data));
        for (var s = 0; s < Streams; s++)
        {
            var info = (await store.GetMetadataAsync(StreamName(s), Ct)).Info!;
            var start = info.RetainedStart.Position;
            Assert.True(start >= reported[s], $"cycle {cycle}: stream {s} came back with start {start}, below the reported {reported[s]}");
            reported[s] = start;
            using var read = await store.ReadAsync(StreamName(s), new ReadRequest(OffsetQuery.Beginning, int.MaxValue), Ct);
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.Equal(start, read.Start.Position);
            var bytes = read.Chunks.SelectMany(c => c.ToArray()).ToArray();
            Assert.Equal(info.Tail.Position - start, bytes.Length);
            var checkedAppends = 0;
            foreach (var append in appends.Where(a => a.Stream == s && a.Position + a.Length > start))
            {
                var body = Body(append.Cycle, s, append.N);
                var from = Math.Max(append.Position, start);
                Assert.True(append.Position + append.Length <= info.Tail.Position, $"cycle {cycle}: stream {s} lost acknowledged bytes up to {append.Position + append.Length} (tail {info.Tail.Position})");
                Assert.True(
                    body.AsSpan((int)(from - append.Position)).SequenceEqual(bytes.AsSpan((int)(from - start), (int)(append.Position + append.Length - from))),
                    $"cycle {cycle}: stream {s}: acknowledged append {append.Cycle}/{append.N} at {append.Position} differs");
                checkedAppends++;
            }
            Assert.True(checkedAppends > 0 || appends.All(a => a.Stream != s), $"cycle {cycle}: nothing of stream {s} was checked");
        }
    }

    private static FileStreamStoreOptions Options(string data) => new()
    {
        DataDirectory = data,
        Durability = DurabilityMode.Always,
        Retention = Policies,
    };

    private static string StreamName(int stream) => "s" + stream.ToString(CultureInfo.InvariantCulture);

    /// <summary>The body of a stream's n-th append in a cycle: 1 byte to 20 KB, deterministic.</summary>
    private static byte[] Body(int cycle, int stream, int n)
    {
        // Not HashCode.Combine: its seed differs per process, and the child and the parent must agree.
        var random = new Random(Seed + (((cycle * Streams) + stream) * 10_000_000) + n);
        var body = new byte[random.Next(1, 20_000)];
        random.NextBytes(body);
        return body;
    }

    private static Process StartChild(string data, string acks, int cycle) =>
        CrashChild.Start(typeof(RetentionCrashTests), nameof(Child_appends_and_trims_until_killed), new Dictionary<string, string>
        {
            [DataVariable] = data,
            [AcksVariable] = acks,
            [CycleVariable] = cycle.ToString(CultureInfo.InvariantCulture),
        });

    /// <summary>Reads every complete line: acknowledged appends, and the highest reported start per stream. Returns the line count.</summary>
    private static int Parse(string path, long[] reported, List<(int, long, int, int, int)> appends)
    {
        appends.Clear();
        var lines = CrashChild.CompleteLinesCuttingTorn(path);
        foreach (var line in lines)
        {
            var f = line.Split(' ');
            var stream = int.Parse(f[1], CultureInfo.InvariantCulture);
            if (f[0] == "S")
            {
                reported[stream] = Math.Max(reported[stream], long.Parse(f[2], CultureInfo.InvariantCulture));
            }
            else
            {
                appends.Add((stream, long.Parse(f[2], CultureInfo.InvariantCulture), int.Parse(f[3], CultureInfo.InvariantCulture),
                    int.Parse(f[4], CultureInfo.InvariantCulture), int.Parse(f[5], CultureInfo.InvariantCulture)));
            }
        }
        return lines.Count;
    }

    public void Dispose() => _temp?.Dispose();
}
