using DurableStreams.Core;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Disk-full and device errors at run time. These tests use the store's injected fault layer
/// (<see cref="FileStoreFaults"/>: <c>BeforeWrite</c> fails a data write after half of it reached the file, as a device
/// that accepted part of it would; <c>BeforeSync</c> fails a commit batch's fdatasync), so they are deterministic on any
/// machine and need no privileges. A real full file system (a small tmpfs) is not exercised here.
/// </summary>
public sealed class FaultInjectionTests : FileStoreTestBase
{
    public enum Fault
    {
        DiskFullOnWrite,
        WriteError,
        DiskFullOnSync,
        SyncError,
    }

    private static IOException DeviceError() => new("Input/output error (errno 5).");

    private void Inject(Fault fault)
    {
        switch (fault)
        {
            case Fault.DiskFullOnWrite:
                Store.Faults.BeforeWrite = FileStoreFaults.DiskFull;
                break;
            case Fault.WriteError:
                Store.Faults.BeforeWrite = DeviceError;
                break;
            case Fault.DiskFullOnSync:
                Store.Faults.BeforeSync = FileStoreFaults.DiskFull;
                break;
            case Fault.SyncError:
                Store.Faults.BeforeSync = DeviceError;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(fault));
        }
    }

    private void ClearFaults()
    {
        Store.Faults.BeforeWrite = null;
        Store.Faults.BeforeSync = null;
    }

    [Theory]
    [InlineData(Fault.DiskFullOnWrite, AppendStatus.InsufficientStorage)]
    [InlineData(Fault.WriteError, AppendStatus.StorageFailure)]
    [InlineData(Fault.DiskFullOnSync, AppendStatus.InsufficientStorage)]
    [InlineData(Fault.SyncError, AppendStatus.StorageFailure)]
    public async Task A_failed_append_leaves_no_partial_record_and_the_next_append_succeeds_without_restart(Fault fault, AppendStatus expected)
    {
        await CreatedAsync("s", Binary);
        await CreatedAsync("other", body: "other");
        byte[] committed = [.. Bytes("committed|"), .. Filler(2000, seed: 4)];
        Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("s", committed[..10], Binary, producer: Producer(0, 0))).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("s", committed[10..], Binary, producer: Producer(0, 1))).Status);
        var file = DataFileOf(await IdOfAsync("s"));

        Inject(fault);

        // Larger than one frame, so a partial write would leave a partial frame behind.
        var big = Filler(FileStreamStore.MaxFrameBytes + 5000, seed: 5);
        var failed = await AppendBytesAsync("s", big, Binary, producer: Producer(0, 2));
        Assert.Equal(expected, failed.Status);
        Assert.Equal(expected, (await AppendBytesAsync("s", Bytes("again"), Binary)).Status);

        // Nothing of the failed appends is visible or left in the file, and reads keep working during the fault.
        Assert.Equal(committed, await ReadBytesAsync("s"));
        Assert.Equal(committed.Length, (await InfoAsync("s")).Tail.Position);
        Assert.Equal(committed.Length, new FileInfo(file).Length);
        Assert.Equal("other", await ReadTextAsync("other"));

        ClearFaults();

        // The producer's failed seq was not recorded: its retry is new data, not a duplicate.
        var retry = await AppendBytesAsync("s", big, Binary, producer: Producer(0, 2));
        Assert.Equal(AppendStatus.Appended, retry.Status);
        Assert.Equal(committed.Length + big.Length, retry.NextOffset.Position);
        var next = await AppendBytesAsync("s", Bytes("next"), Binary);
        Assert.Equal(AppendStatus.Appended, next.Status);
        Assert.Equal(committed.Length + big.Length + 4, next.NextOffset.Position);
        byte[] expectedBytes = [.. committed, .. big, .. Bytes("next")];
        Assert.Equal(expectedBytes, await ReadBytesAsync("s"));
        Assert.Equal(expectedBytes.Length, new FileInfo(file).Length);

        await RestartAsync();

        Assert.Equal(expectedBytes, await ReadBytesAsync("s"));
        Assert.Equal(AppendStatus.Duplicate, (await AppendBytesAsync("s", big, Binary, producer: Producer(0, 2))).Status);
        Assert.Equal("other", await ReadTextAsync("other"));
    }

    [Fact]
    public async Task Appends_queued_behind_a_failed_sync_batch_fail_and_the_stream_recovers_by_itself()
    {
        await CreatedAsync("s", body: "base");
        await CreatedAsync("other", body: "o");
        var file = DataFileOf(await IdOfAsync("s"));

        var firstSync = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var release = new ManualResetEventSlim();
        var syncs = 0;
        Store.Faults.BeforeSync = () =>
        {
            if (Interlocked.Increment(ref syncs) > 1)
            {
                return null;
            }
            // Hold the committing thread inside the first batch so later appends are written and queued behind it.
            firstSync.TrySetResult();
            release.Wait(HangGuard);
            return DeviceError();
        };

        // On its own thread, as a request would be: the appender may commit its batch itself and so block in the hook.
        var first = Task.Run(() => AppendAsync("s", "A", producer: Producer(0, 0)).AsTask(), Ct);
        await firstSync.Task.WaitAsync(HangGuard, Ct);
        Task<AppendStreamResult>[] queued =
        [
            AppendAsync("s", "B", producer: Producer(0, 1)).AsTask(),
            AppendAsync("s", "C", producer: Producer(0, 2)).AsTask(),
            AppendAsync("s", "D").AsTask(),
        ];
        var otherStream = AppendAsync("other", "+o").AsTask();
        Assert.False(first.IsCompleted);
        Assert.All(queued, q => Assert.False(q.IsCompleted));
        release.Set();

        Assert.Equal(AppendStatus.StorageFailure, (await first.WaitAsync(HangGuard, Ct)).Status);
        foreach (var q in queued)
        {
            Assert.Equal(AppendStatus.StorageFailure, (await q.WaitAsync(HangGuard, Ct)).Status);
        }
        // A stream that was not in the failed batch is not affected.
        Assert.Equal(AppendStatus.Appended, (await otherStream.WaitAsync(HangGuard, Ct)).Status);
        Assert.Equal("base", await ReadTextAsync("s"));
        Assert.Equal(4, new FileInfo(file).Length);
        Assert.Equal(4, (await InfoAsync("s")).Tail.Position);

        // The hook now lets syncs through: the stream accepts the same producer sequence again, from seq 0.
        Assert.Equal(5, (await AppendedAsync("s", "A", producer: Producer(0, 0))).NextOffset.Position);
        Assert.Equal(6, (await AppendedAsync("s", "B", producer: Producer(0, 1))).NextOffset.Position);
        Assert.Equal(7, (await AppendedAsync("s", "D")).NextOffset.Position);
        Assert.Equal("baseABD", await ReadTextAsync("s"));
        Assert.Equal("o+o", await ReadTextAsync("other"));

        await RestartAsync();

        Assert.Equal("baseABD", await ReadTextAsync("s"));
        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("s", "B", producer: Producer(0, 1))).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "C", producer: Producer(0, 2))).Status);
        Assert.Equal("baseABDC", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task A_create_under_disk_full_returns_InsufficientStorage_and_leaves_no_stream()
    {
        await CreatedAsync("existing", body: "x");
        var filesBefore = DataFiles();

        Store.Faults.BeforeWrite = FileStoreFaults.DiskFull;
        var binary = await CreateAsync("new", Binary, body: "payload");
        Assert.Equal(CreateStatus.InsufficientStorage, binary.Status);
        Assert.Null(binary.Info);
        Assert.Equal(CreateStatus.InsufficientStorage, (await CreateAsync("new-json", Json, body: "[1,2]")).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("new"));
        Assert.Equal(ReadStatus.NotFound, (await ReadFromStartAsync("new")).Status);
        Assert.Equal(AppendStatus.NotFound, (await AppendAsync("new", "x", Binary)).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("new-json"));
        Assert.Equal(filesBefore, DataFiles());
        Assert.Equal("x", await ReadTextAsync("existing"));

        // A create without a body writes no data; disk full at its commit refuses it the same way.
        Store.Faults.BeforeWrite = null;
        Store.Faults.BeforeSync = FileStoreFaults.DiskFull;
        Assert.Equal(CreateStatus.InsufficientStorage, (await CreateAsync("empty")).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("empty"));
        Assert.Equal(filesBefore, DataFiles());
        Assert.Equal(1, Store.Count);

        ClearFaults();

        await CreatedAsync("new", Binary, body: "payload");
        Assert.Equal("payload", await ReadTextAsync("new"));

        await RestartAsync();

        Assert.Equal("payload", await ReadTextAsync("new"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("new-json"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("empty"));
        Assert.Equal(2, Store.Count);
        Assert.Equal(2, DataFiles().Length);
    }

    [Fact]
    public async Task A_fork_refused_by_a_failed_commit_does_not_keep_its_source_alive()
    {
        await CreatedAsync("src", body: "s");

        Store.Faults.BeforeSync = DeviceError;
        Assert.Equal(CreateStatus.StorageFailure, (await CreateAsync("fork", contentType: null, fork: ForkOf("src"))).Status);
        Store.Faults.BeforeSync = null;
        Store.Faults.BeforeWrite = FileStoreFaults.DiskFull;
        Assert.Equal(CreateStatus.InsufficientStorage, (await CreateAsync("fork", contentType: null, body: "own", fork: ForkOf("src"))).Status);
        ClearFaults();

        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork"));
        // No fork holds the source, so deleting it removes it outright rather than soft-deleting it.
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("src"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("src"));
        await CreatedAsync("src", body: "again");
        Assert.Empty(DataFiles().Except([DataFileOf(await IdOfAsync("src"))]));
    }

    [Fact]
    public async Task A_delete_whose_commit_failed_leaves_the_stream_as_it_was_across_restart()
    {
        await CreatedAsync("s", body: "old");

        Store.Faults.BeforeSync = DeviceError;
        Assert.Equal(DeleteStatus.StorageFailure, await DeleteAsync("s"));
        ClearFaults();

        // Nothing was recorded, so the stream is still there; a retry of the delete then removes it for good.
        Assert.Equal("old", await ReadTextAsync("s"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("s"));

        await RestartAsync();

        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("s"));
        Assert.Empty(DataFiles());
    }

    [Fact]
    public async Task A_soft_delete_whose_commit_failed_leaves_the_source_as_it_was_across_restart()
    {
        await CreatedAsync("src", body: "old");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));

        Store.Faults.BeforeSync = DeviceError;
        Assert.Equal(DeleteStatus.StorageFailure, await DeleteAsync("src"));
        ClearFaults();

        // What the store answers now must be what it answers after a restart: the source is still there.
        var before = await MetadataStatusAsync("src");
        await RestartAsync();
        Assert.Equal(before, await MetadataStatusAsync("src"));
        Assert.Equal(ReadStatus.Ok, before);
        Assert.Equal("old", await ReadTextAsync("fork"));

        // A retry of the delete soft-deletes it for good.
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("src"));
        await RestartAsync();
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("src"));
        Assert.Equal("old", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task A_failed_close_or_stream_seq_append_records_neither()
    {
        await CreatedAsync("s", body: "data");

        Store.Faults.BeforeSync = DeviceError;
        Assert.Equal(AppendStatus.StorageFailure, (await AppendAsync("s", null, close: true)).Status);
        Assert.Equal(AppendStatus.StorageFailure, (await AppendAsync("s", "x", streamSeq: "0005")).Status);
        ClearFaults();

        Assert.False((await InfoAsync("s")).Closed);
        await AppendedAsync("s", "+seq", streamSeq: "0005");
        await AppendedAsync("s", null, close: true);

        await RestartAsync();

        Assert.True((await InfoAsync("s")).Closed);
        Assert.Equal("data+seq", await ReadTextAsync("s"));
    }
}
