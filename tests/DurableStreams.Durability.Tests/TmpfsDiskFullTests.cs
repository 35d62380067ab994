using System.Diagnostics;
using DurableStreams.Protocol;
using DurableStreams.Core;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// A real full file system: a 2 MiB tmpfs mounted for each test. Mounting needs root (CI runs as root): elsewhere the
/// tests skip with the reason, and under <c>CI=true</c> they fail when they cannot mount. The injected fault tests in
/// <see cref="FaultInjectionTests"/> cover disk-full on every machine.
/// </summary>
public sealed class TmpfsDiskFullTests : IAsyncDisposable
{
    private readonly TempDirectory _directory = new();
    private bool _mounted;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string DataDirectory => _directory.Combine("data");

    /// <summary>Mounts the tmpfs over the test's directory, or skips (fails under CI) where that is not possible.</summary>
    private async Task MountAsync()
    {
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
        {
            TestEnvironment.SkipOrFailUnderCI("Mounting a tmpfs for the real disk-full tests needs root on Linux.");
        }
        var exitCode = await RunAsync("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", _directory.Path);
        if (exitCode != 0)
        {
            TestEnvironment.SkipOrFailUnderCI($"mount -t tmpfs exited with {exitCode} (a container without CAP_SYS_ADMIN?).");
        }
        _mounted = true;
    }

    public async ValueTask DisposeAsync()
    {
        if (_mounted)
        {
            Assert.Equal(0, await RunAsync("umount", _directory.Path));
        }
        _directory.Dispose();
    }

    private static async Task<int> RunAsync(string file, params string[] arguments)
    {
        using var process = Process.Start(file, arguments);
        await process.WaitForExitAsync(Ct);
        return process.ExitCode;
    }

    private FileStreamStore Open() => FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = DataDirectory });

    private static async Task<byte[]> ReadAllAsync(FileStreamStore store, string name)
    {
        var read = await store.ReadAsync(name, new ReadRequest(OffsetQuery.Beginning, 1 << 24), Ct);
        Assert.Equal(ReadStatus.Ok, read.Status);
        return [.. read.Chunks.SelectMany(c => c.ToArray())];
    }

    [Fact]
    public async Task Appends_fill_a_real_disk_then_succeed_again_once_a_delete_frees_space()
    {
        await MountAsync();
        var store = Open();
        try
        {
            Assert.Equal(CreateStatus.Created, (await store.CreateAsync("filler", new CreateStreamRequest { ContentType = "application/octet-stream" }, Ct)).Status);
            Assert.Equal(CreateStatus.Created, (await store.CreateAsync("keep", new CreateStreamRequest { ContentType = "application/octet-stream", Body = "keep"u8.ToArray() }, Ct)).Status);
            var chunk = new byte[64 * 1024];
            new Random(9).NextBytes(chunk);
            var acknowledged = new List<byte>();
            AppendStreamResult result = default;
            for (var i = 0; i < 100; i++)
            {
                result = await store.AppendAsync("filler", new AppendRequest { ContentType = "application/octet-stream", Body = chunk }, Ct);
                if (result.Status != AppendStatus.Appended)
                {
                    break;
                }
                acknowledged.AddRange(chunk);
            }

            Assert.Equal(AppendStatus.InsufficientStorage, result.Status);
            Assert.NotEmpty(acknowledged);
            Assert.Equal(acknowledged.ToArray(), await ReadAllAsync(store, "filler"));
            Assert.Equal("keep"u8.ToArray(), await ReadAllAsync(store, "keep"));

            Assert.Equal(DeleteStatus.Deleted, (await store.DeleteAsync("filler", Ct)).Status);
            var after = await store.AppendAsync("keep", new AppendRequest { ContentType = "application/octet-stream", Body = chunk }, Ct);
            Assert.Equal(AppendStatus.Appended, after.Status);
            Assert.Equal(4 + chunk.Length, after.NextOffset.Position);

            await store.DisposeAsync();
            store = Open();
            var kept = await ReadAllAsync(store, "keep");
            Assert.Equal([.. "keep"u8.ToArray(), .. chunk], kept);
        }
        finally
        {
            await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task Filling_a_real_disk_through_the_metadata_answers_InsufficientStorage()
    {
        await MountAsync();
        await using var store = Open();
        Assert.Equal(CreateStatus.Created, (await store.CreateAsync("s", new CreateStreamRequest { ContentType = "text/plain" }, Ct)).Status);
        // Tiny appends: each adds a frame index entry (LMDB) but only 10 bytes of data, so LMDB's write hits ENOSPC
        // first (checked: it then throws LightningException "No space left on device", not an IOException).
        var body = "0123456789"u8.ToArray();
        var status = AppendStatus.Appended;
        for (var i = 0; i < 200_000 && status == AppendStatus.Appended; i++)
        {
            status = (await store.AppendAsync("s", new AppendRequest { ContentType = "text/plain", Body = body }, Ct)).Status;
        }
        Assert.Equal(AppendStatus.InsufficientStorage, status);
    }
}
