// Stall check for the file store's create path: N concurrent creators make empty streams with unique names until the
// target count, printing progress and flagging a stall (no completed create for --stall-seconds). On a stall it prints
// the store's state and, when dotnet-stack is found (artifacts/tools or PATH), every managed thread's stack.
using System.Diagnostics;
using DurableStreams.Core;
using DurableStreams.Storage.Files;

var target = 1_100_000L;
var creators = 32;
var every = 50_000L;
var stallSeconds = 20;
var durability = DurabilityMode.None;
string? directory = null;
var keep = false;
var randomNames = false;
var start = 0L;
var blocking = false;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--streams": target = long.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--creators": creators = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--every": every = long.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--stall-seconds": stallSeconds = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--durability": durability = Enum.Parse<DurabilityMode>(args[++i], ignoreCase: true); break;
        case "--dir": directory = args[++i]; break;
        case "--keep": keep = true; break;
        case "--blocking": blocking = true; break;
        case "--start": start = long.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--names": randomNames = args[++i] switch { "random" => true, "sequential" => false, var other => throw new ArgumentException($"--names {other}: sequential or random") }; break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; usage: create-stall [--streams N] [--creators N] [--every N] [--stall-seconds S] [--durability None|Interval|Always] [--names sequential|random] [--start N] [--blocking] [--dir PATH] [--keep]");
            return 2;
    }
}

var dataDirectory = directory ?? Path.Combine(Path.GetTempPath(), "create-stall-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(dataDirectory);
Console.WriteLine($"dir={dataDirectory} streams={target} creators={creators}{(blocking ? " (blocking)" : "")} durability={durability} names={(randomNames ? "random" : "sequential")} pid={Environment.ProcessId}");

var stall = false;
var total = Stopwatch.StartNew();
long created = 0;
long failures = 0;
try
{
    var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = dataDirectory, Durability = durability });
    await using (store)
    {
        long next = -1;
        var request = new CreateStreamRequest();
        var cts = new CancellationTokenSource();
        async Task CreatorAsync()
        {
            while (!cts.IsCancellationRequested)
            {
                var n = Interlocked.Increment(ref next);
                if (n >= target)
                {
                    return;
                }
                var name = randomNames ? $"r/{Guid.NewGuid():N}/{n}" : $"s/{start + n:D8}";
                var result = await store.CreateAsync(name, request, CancellationToken.None);
                if (result.Status != CreateStatus.Created)
                {
                    if (Interlocked.Increment(ref failures) <= 5)
                    {
                        Console.WriteLine($"create {name}: {result.Status}");
                    }
                }
                Interlocked.Increment(ref created);
            }
        }

        // --blocking: each creator is a thread-pool work item that blocks on every create (sync-over-async), so the
        // commit continuations compete with blocked pool threads; otherwise creators await.
        var workers = Enumerable.Range(0, creators)
            .Select(_ => blocking ? Task.Run(() => CreatorAsync().GetAwaiter().GetResult()) : Task.Run(CreatorAsync))
            .ToArray();
        var all = Task.WhenAll(workers);
        long lastReported = 0;
        long lastSeen = 0;
        var lastChange = Stopwatch.StartNew();
        var longestPause = 0.0;
        var window = Stopwatch.StartNew();
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(100));
            var now = Interlocked.Read(ref created);
            if (now != lastSeen)
            {
                longestPause = Math.Max(longestPause, lastChange.Elapsed.TotalSeconds);
                lastSeen = now;
                lastChange.Restart();
            }
            if (now - lastReported >= every || (all.IsCompleted && now != lastReported))
            {
                var rate = (now - lastReported) / window.Elapsed.TotalSeconds;
                Console.WriteLine($"{now,9:N0} streams  {rate,8:N0}/s  t={total.Elapsed.TotalSeconds,6:N1}s  rss={Process.GetCurrentProcess().WorkingSet64 >> 20} MiB  gc={GC.GetTotalMemory(false) >> 20} MiB  threads={ThreadPool.ThreadCount} queued={ThreadPool.PendingWorkItemCount} gen2={GC.CollectionCount(2)}");
                lastReported = now;
                window.Restart();
            }
            if (!all.IsCompleted && lastChange.Elapsed.TotalSeconds >= stallSeconds)
            {
                stall = true;
                Console.WriteLine($"STALL: no create completed for {lastChange.Elapsed.TotalSeconds:N0}s at {now:N0} streams (next index {Interlocked.Read(ref next):N0})");
                Console.WriteLine($"  threadpool threads={ThreadPool.ThreadCount} queued={ThreadPool.PendingWorkItemCount} completed={ThreadPool.CompletedWorkItemCount}");
                Console.WriteLine($"  workers: {workers.Count(w => w.IsCompleted)} done, {workers.Count(w => w.IsFaulted)} faulted of {workers.Length}");
                Console.WriteLine($"  store: Count={await CountWithTimeoutAsync(store)}");
                DumpStacks();
                cts.Cancel();
                break;
            }
        }
        if (!stall)
        {
            await all;
        }
        var du = DirectorySize(dataDirectory);
        Console.WriteLine($"done: {Interlocked.Read(ref created):N0} creates ({Interlocked.Read(ref failures)} not Created) in {total.Elapsed.TotalSeconds:N1}s, peak rss={Process.GetCurrentProcess().PeakWorkingSet64 >> 20} MiB, data dir {du >> 20} MiB");
        Console.WriteLine($"longest time without a completed create: {longestPause:N1}s (sampled every 100 ms); GC pauses {GC.GetTotalPauseDuration().TotalSeconds:N1}s in total, {GC.CollectionCount(2)} gen2");
        if (stall)
        {
            // The store may never finish disposing; leave without waiting for it.
            Console.Out.Flush();
            if (!keep)
            {
                TryDelete(dataDirectory);
            }
            Environment.Exit(1);
        }
    }
}
finally
{
    if (!keep && !stall)
    {
        TryDelete(dataDirectory);
    }
}
return stall ? 1 : 0;

static async Task<string> CountWithTimeoutAsync(FileStreamStore store)
{
    var count = Task.Run(() => $"{store.Count} commitBatches={store.CommitBatches} checkpoints={store.Checkpoints} openFiles={store.OpenFileCount}");
    return await Task.WhenAny(count, Task.Delay(5000)) == count ? await count : "(no answer in 5 s)";
}

static void DumpStacks()
{
    var candidates = new[]
    {
        Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "tools", "dotnet-stack"),
        Path.Combine(Environment.CurrentDirectory, "artifacts", "tools", "dotnet-stack"),
        "dotnet-stack",
    };
    foreach (var tool in candidates)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(tool, $"report -p {Environment.ProcessId}") { RedirectStandardOutput = true, RedirectStandardError = true });
            if (process is null)
            {
                continue;
            }
            // Read both pipes concurrently so neither fills up.
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            Console.WriteLine(stdout.Result);
            Console.WriteLine(stderr.Result);
            return;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Not at this path; try the next.
        }
    }
    Console.WriteLine("dotnet-stack not found: install it with `dotnet tool install dotnet-stack --version 10.0.750501 --tool-path artifacts/tools`");
}

static long DirectorySize(string path) =>
    new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

static void TryDelete(string path)
{
    try
    {
        Directory.Delete(path, recursive: true);
    }
    catch (IOException e)
    {
        Console.Error.WriteLine($"could not delete {path}: {e.Message}");
    }
}
