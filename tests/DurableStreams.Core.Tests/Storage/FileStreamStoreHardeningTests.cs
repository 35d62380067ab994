using System.Runtime.Versioning;
using System.Text;
using DurableStreams.Protocol;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Core.Tests.Storage;

/// <summary>File-store hardening outside the shared contract: limits across restarts, file modes, the frame index.</summary>
public sealed class FileStreamStoreHardeningTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private FileStreamStore Open(int maxForkDepth = ForkRules.DefaultMaxForkDepth, DurabilityMode durability = DurabilityMode.Always) =>
        FileStreamStore.Open(new FileStreamStoreOptions
        {
            DataDirectory = _directory.Path,
            TimeProvider = _time,
            MaxForkDepth = maxForkDepth,
            Durability = durability,
        });

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static async Task<string> ReadAllAsync(FileStreamStore store, string name)
    {
        using var read = await store.ReadAsync(name, new ReadRequest(OffsetQuery.Beginning, 1 << 24), Ct);
        Assert.Equal(ReadStatus.Ok, read.Status);
        return Encoding.UTF8.GetString(read.Chunks.SelectMany(c => c.ToArray()).ToArray());
    }

    [Fact]
    public async Task A_chain_deeper_than_the_limit_opens_and_serves_after_the_limit_is_lowered()
    {
        const int depth = 1_000;
        var expected = new StringBuilder("0");
        await using (var store = Open(maxForkDepth: depth, durability: DurabilityMode.None))
        {
            Assert.Equal(CreateStatus.Created, (await store.CreateAsync("c0", new CreateStreamRequest { ContentType = "text/plain", Body = Bytes("0") }, Ct)).Status);
            for (var i = 1; i <= depth; i++)
            {
                var fork = new CreateStreamRequest { Fork = new ForkRequest($"c{i - 1}", null, 0) };
                Assert.Equal(CreateStatus.Created, (await store.CreateAsync($"c{i}", fork, Ct)).Status);
                if (i % 100 == 0)
                {
                    await store.AppendAsync($"c{i}", new AppendRequest { ContentType = "text/plain", Body = Bytes($"-{i}") }, Ct);
                    expected.Append(System.Globalization.CultureInfo.InvariantCulture, $"-{i}");
                }
            }
        }

        // Reopened with the default limit (100): the existing chain is served; only new forks past the limit are refused.
        await using var reopened = Open();
        // The first lookup loads the whole chain (the store opens without loading streams), here on a thread with a small
        // stack: a chain loaded by recursion would overflow it, as it once overflowed a thread-pool thread's.
        MetadataResult first = default;
        var loader = new Thread(() => first = reopened.GetMetadataAsync($"c{depth}", Ct).AsTask().GetAwaiter().GetResult(), maxStackSize: 192 * 1024);
        loader.Start();
        loader.Join();
        Assert.Equal(ReadStatus.Ok, first.Status);
        Assert.Equal(expected.ToString(), await ReadAllAsync(reopened, $"c{depth}"));
        var refused = await reopened.CreateAsync("deeper", new CreateStreamRequest { Fork = new ForkRequest($"c{depth}", null, 0) }, Ct);
        Assert.Equal(CreateStatus.ForkTooDeep, refused.Status);
        Assert.Equal(ForkRules.DefaultMaxForkDepth, refused.Limit);
        Assert.Equal(CreateStatus.Created, (await reopened.CreateAsync("shallow", new CreateStreamRequest { Fork = new ForkRequest("c99", null, 0) }, Ct)).Status);
        Assert.Equal(AppendStatus.Appended, (await reopened.AppendAsync($"c{depth}", new AppendRequest { ContentType = "text/plain", Body = Bytes("!") }, Ct)).Status);
        Assert.Equal(expected + "!", await ReadAllAsync(reopened, $"c{depth}"));
    }

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateDirectory = Private | UnixFileMode.UserExecute;

    /// <summary>The process umask, from /proc (Linux); the mode tests need the usual 0022 to mean anything.</summary>
    private static int Umask()
    {
        var line = System.IO.File.ReadLines("/proc/self/status").First(l => l.StartsWith("Umask:", StringComparison.Ordinal));
        return Convert.ToInt32(line["Umask:".Length..].Trim(), 8);
    }

    private static string[] StoreFiles(string dataDirectory) =>
    [
        .. new[] { "LOCK", "commit.log", "meta/data.mdb", "meta/lock.mdb" }.Select(f => Path.Combine(dataDirectory, f)),
        .. Directory.GetFiles(Path.Combine(dataDirectory, "streams"), "*.dat"),
    ];

    [UnsupportedOSPlatform("windows")]
    private static void AssertPrivate(string dataDirectory)
    {
        foreach (var directory in new[] { dataDirectory, Path.Combine(dataDirectory, "streams"), Path.Combine(dataDirectory, "meta") })
        {
            Assert.Equal((directory, PrivateDirectory), (directory, System.IO.File.GetUnixFileMode(directory)));
        }
        var files = StoreFiles(dataDirectory);
        Assert.Equal(6, files.Length);
        foreach (var file in files)
        {
            Assert.Equal((file, Private), (file, System.IO.File.GetUnixFileMode(file)));
        }
    }

    private static async Task WriteTwoStreamsAsync(FileStreamStore store)
    {
        foreach (var name in new[] { "a", "b" })
        {
            await store.CreateAsync(name, new CreateStreamRequest { ContentType = "text/plain" }, Ct);
            Assert.Equal(AppendStatus.Appended, (await store.AppendAsync(name, new AppendRequest { ContentType = "text/plain", Body = Bytes("x") }, Ct)).Status);
        }
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task A_new_data_directory_and_every_file_in_it_are_private_under_umask_0022()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "Unix modes, read from /proc.");
        Assert.Equal(0x12, Umask()); // 0022: the test means something only under the usual umask
        var dataDirectory = _directory.Combine("data");

        await using (var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = dataDirectory, TimeProvider = _time }))
        {
            await WriteTwoStreamsAsync(store);
        }

        AssertPrivate(dataDirectory);
    }

    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task An_existing_data_directory_with_looser_modes_is_tightened_on_open_and_each_data_file_when_its_stream_loads()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "Unix modes.");
        await using (var store = Open())
        {
            await WriteTwoStreamsAsync(store);
        }
        const UnixFileMode loose = Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        foreach (var directory in new[] { _directory.Path, _directory.Combine("streams"), _directory.Combine("meta") })
        {
            System.IO.File.SetUnixFileMode(directory, PrivateDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        foreach (var file in StoreFiles(_directory.Path))
        {
            System.IO.File.SetUnixFileMode(file, loose);
        }

        await using (var reopened = Open())
        {
            // Open touches no stream; the 0700 streams directory already keeps the data files private.
            Assert.Equal(loose, System.IO.File.GetUnixFileMode(Directory.GetFiles(_directory.Combine("streams"), "*.dat")[0]));
            Assert.Equal("x", await ReadAllAsync(reopened, "a"));
            Assert.Equal("x", await ReadAllAsync(reopened, "b"));
        }

        AssertPrivate(_directory.Path);
    }

    [Fact]
    public async Task Reads_and_boundaries_stay_exact_over_many_tiny_messages_and_a_multi_frame_one_across_a_restart()
    {
        // 3 x 10,000 one- to five-digit messages, then one message of three frames, then more tiny ones.
        var values = new List<string>();
        await using (var store = Open(durability: DurabilityMode.None))
        {
            await store.CreateAsync("t", new CreateStreamRequest { ContentType = "application/json" }, Ct);
            for (var body = 0; body < 3; body++)
            {
                var batch = Enumerable.Range(body * 10_000, 10_000).Select(v => (v * 7919 % 100_000).ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
                values.AddRange(batch);
                Assert.Equal(AppendStatus.Appended, (await store.AppendAsync("t", new AppendRequest { ContentType = "application/json", Body = Bytes("[" + string.Join(",", batch) + "]") }, Ct)).Status);
            }
            var big = "\"" + new string('b', (2 * FileStreamStore.MaxFrameBytes) + 10) + "\"";
            values.Add(big);
            values.AddRange(["1", "22", "333"]);
            Assert.Equal(AppendStatus.Appended, (await store.AppendAsync("t", new AppendRequest { ContentType = "application/json", Body = Bytes($"[{big},1,22,333]") }, Ct)).Status);
            await AssertMessagesAsync(store, values);
        }
        await using var reopened = Open();
        await AssertMessagesAsync(reopened, values);
    }

    /// <summary>Every message start is a boundary and reads one message from it; a position inside one is not.</summary>
    private static async Task AssertMessagesAsync(FileStreamStore store, List<string> values)
    {
        var position = 0L;
        foreach (var value in values)
        {
            using var read = await store.ReadAsync("t", new ReadRequest(OffsetQuery.At(new StreamOffset(position)), 1), Ct);
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.Equal(value + ",", Encoding.UTF8.GetString(read.Chunks.SelectMany(c => c.ToArray()).ToArray()));
            if (value.Length > 1)
            {
                using var inside = await store.ReadAsync("t", new ReadRequest(OffsetQuery.At(new StreamOffset(position + 1)), 1), Ct);
                Assert.Equal(ReadStatus.OffsetUnaligned, inside.Status);
            }
            position = read.Next.Position;
        }
        Assert.Equal(position, (await store.GetMetadataAsync("t", Ct)).Info!.Tail.Position);
        using var all = await store.ReadAsync("t", new ReadRequest(OffsetQuery.Beginning, 1 << 24), Ct);
        Assert.Equal(string.Concat(values.Select(v => v + ",")), Encoding.UTF8.GetString(all.Chunks.SelectMany(c => c.ToArray()).ToArray()));
        // A fork one message past the 20,000th resolves its boundary through the index.
        var at = values.Take(20_000).Sum(v => v.Length + 1);
        var fork = await store.CreateAsync("f" + Guid.NewGuid().ToString("N"), new CreateStreamRequest { Fork = new ForkRequest("t", new StreamOffset(at), 1) }, Ct);
        Assert.Equal(at + values[20_000].Length + 1, fork.Info!.Tail.Position);
    }

    [Fact]
    public async Task The_frame_index_of_a_cold_stream_costs_about_eight_bytes_a_frame()
    {
        const int messages = 200_000;
        await using (var store = Open(durability: DurabilityMode.None))
        {
            await store.CreateAsync("t", new CreateStreamRequest { ContentType = "application/json" }, Ct);
            for (var body = 0; body < 2; body++)
            {
                var payload = Bytes("[" + string.Join(",", Enumerable.Repeat("0", messages / 2)) + "]");
                Assert.Equal(AppendStatus.Appended, (await store.AppendAsync("t", new AppendRequest { ContentType = "application/json", Body = payload }, Ct)).Status);
            }
        }
        await using var reopened = Open();
        using (var warm = await reopened.ReadAsync("t", new ReadRequest(OffsetQuery.At(new StreamOffset(0)), 1), Ct))
        {
            Assert.Equal(ReadStatus.Ok, warm.Status);
        }
        await reopened.CreateAsync("u", new CreateStreamRequest { ContentType = "application/json", Body = Bytes("[0]") }, Ct);
        await reopened.DisposeAsync();
        await using var cold = Open();

        // The first read loads the whole index from LMDB on this thread (the file store reads synchronously).
        var before = GC.GetAllocatedBytesForCurrentThread();
        using var read = await cold.ReadAsync("t", new ReadRequest(OffsetQuery.At(new StreamOffset(2 * (messages - 1))), 1 << 20), Ct);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Equal("0,", Encoding.UTF8.GetString(read.Chunks.Single().Span));
        // A list of 24-byte frames grown by doubling allocates about 48 bytes a frame; the packed index about 8.
        Assert.True(allocated < messages * 12L, $"{allocated / (double)messages:F1} bytes allocated per frame");
    }

    public void Dispose() => _directory.Dispose();
}
