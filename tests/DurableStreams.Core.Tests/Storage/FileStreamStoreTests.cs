using DurableStreams.Storage;
using DurableStreams.Storage.File;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;

namespace DurableStreams.Core.Tests.Storage;

/// <summary>The store contract against <see cref="FileStreamStore"/>, restarting it where the contract asks.</summary>
public sealed class FileStreamStoreTests : StreamStoreContractTests
{
    private static readonly TimeSpan Sweep = TimeSpan.FromSeconds(2);
    private readonly TempDirectory _directory = new();

    protected override TimeSpan SweepInterval => Sweep;

    protected override Task<IStreamStore> CreateStoreAsync(FakeTimeProvider time) => Task.FromResult<IStreamStore>(Open(time));

    protected override async Task<IStreamStore?> ReopenStoreAsync(IStreamStore store, FakeTimeProvider time)
    {
        await store.DisposeAsync();
        return Open(time);
    }

    protected override ValueTask<int> CountLiveStreamsAsync(IStreamStore store) => ValueTask.FromResult(((FileStreamStore)store).Count);

    private FileStreamStore Open(FakeTimeProvider time) => FileStreamStore.Open(new FileStreamStoreOptions
    {
        DataDirectory = _directory.Path,
        TimeProvider = time,
        SweepInterval = Sweep,
    });

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }
}
