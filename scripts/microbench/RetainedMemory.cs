using System.Globalization;
using System.Text;
using DurableStreams.Core;
using DurableStreams.Core.Memory;

namespace DurableStreams.MicroBench;

/// <summary>
/// What the memory store keeps per stored message and per stream: the managed heap after a full, compacting
/// collection, before and after a fixed workload, divided by the messages (or streams) it stored. Not a BenchmarkDotNet
/// benchmark — retained bytes are a count, not a timing — so it runs with <c>--retained</c> and prints a table.
/// </summary>
internal static class RetainedMemory
{
    private const int Streams = 64;
    private const string Binary = "application/octet-stream";
    private const string Json = "application/json";

    public static async Task RunAsync()
    {
        Console.WriteLine("| workload | stored | retained | per unit | overhead per unit |");
        Console.WriteLine("|---|---|---|---|---|");
        var jsonPost = Encoding.UTF8.GetBytes("[" + string.Join(",", Enumerable.Range(0, 10).Select(JsonMessage)) + "]");
        await MeasureAsync("100 B appends, 64 streams", "message", 1_000_000, 100,
            (store, count) => FillAsync(store, Streams, Binary, new byte[100], appends: count));
        await MeasureAsync("JSON, 10 messages of ~100 B per POST, 64 streams", "message", 1_000_000, JsonMessage(0).Length,
            (store, count) => FillAsync(store, Streams, Json, jsonPost, appends: count / 10));
        await MeasureAsync("1 MiB appends, one stream", "message", 64, 1024 * 1024,
            (store, count) => FillAsync(store, 1, Binary, new byte[1024 * 1024], appends: count));
        await MeasureAsync("empty streams", "stream", 20_000, 0,
            (store, count) => FillAsync(store, count, Binary, [], appends: 0));
        await MeasureAsync("streams holding one 100 B append", "stream", 20_000, 100,
            (store, count) => FillAsync(store, count, Binary, new byte[100], appends: count));
    }

    /// <summary>Creates <paramref name="streams"/> streams and makes <paramref name="appends"/> appends of <paramref name="body"/>, round robin over them.</summary>
    private static async Task FillAsync(MemoryStreamStore store, int streams, string contentType, byte[] body, int appends)
    {
        await CreateAsync(store, streams, contentType);
        for (var i = 0; i < appends; i++)
        {
            Append(await store.AppendAsync(Name(i % streams), new AppendRequest { ContentType = contentType, Body = body }));
        }
    }

    private static string JsonMessage(int index) =>
        string.Create(CultureInfo.InvariantCulture, $$"""{"w":1,"s":{{index}},"p":"{{new string('x', 70)}}"}""");

    private static string Name(int index) => string.Create(CultureInfo.InvariantCulture, $"bench/stream-{index}");

    private static async Task CreateAsync(MemoryStreamStore store, int count, string contentType)
    {
        for (var i = 0; i < count; i++)
        {
            var created = await store.CreateAsync(Name(i), new CreateStreamRequest { ContentType = contentType });
            if (created.Status != CreateStatus.Created)
            {
                throw new InvalidOperationException($"create answered {created.Status}");
            }
        }
    }

    private static void Append(AppendResult result)
    {
        if (result.Status != AppendStatus.Appended)
        {
            throw new InvalidOperationException($"append answered {result.Status}");
        }
    }

    private static async Task MeasureAsync(string workload, string unit, int count, int payload, Func<MemoryStreamStore, int, Task> fill)
    {
        var store = new MemoryStreamStore();
        var before = Retained();
        await fill(store, count);
        var after = Retained();
        GC.KeepAlive(store);
        await store.DisposeAsync();
        var perUnit = (after - before) / (double)count;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {workload} | {count:N0} x {payload:N0} B | {(after - before) / 1048576.0:N1} MiB | {perUnit:N0} B/{unit} | {perUnit - payload:N0} B/{unit} |"));
    }

    private static long Retained()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: false);
    }
}
