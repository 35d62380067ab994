using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

/// <summary>The repository contract against the in-process repository over in-memory state.</summary>
public sealed class LocalSubscriptionRepositoryTests : SubscriptionRepositoryContractTests
{
    private readonly MemorySubscriptionStateStore _state = new();
    private LocalSubscriptionRepository? _local;

    protected override Task<ISubscriptionRepository> CreateRepositoryAsync()
    {
        _local = new LocalSubscriptionRepository(_state);
        return Task.FromResult<ISubscriptionRepository>(_local);
    }

    public override async ValueTask DisposeAsync()
    {
        _local?.Dispose();
        await _state.DisposeAsync();
        await base.DisposeAsync();
    }
}

/// <summary>The repository contract over the file-backed state, plus: every accepted write is on disk.</summary>
public sealed class FileSubscriptionRepositoryTests : SubscriptionRepositoryContractTests
{
    private readonly TempDirectory _directory = new();
    private FileSubscriptionStateStore? _state;
    private LocalSubscriptionRepository? _local;

    protected override Task<ISubscriptionRepository> CreateRepositoryAsync()
    {
        _state = FileSubscriptionStateStore.Open(_directory.Path);
        _local = new LocalSubscriptionRepository(_state);
        return Task.FromResult<ISubscriptionRepository>(_local);
    }

    public override async ValueTask DisposeAsync()
    {
        _local?.Dispose();
        if (_state is not null)
        {
            await _state.DisposeAsync();
        }
        _directory.Dispose();
        await base.DisposeAsync();
    }

    [Fact]
    public async Task Accepted_writes_are_in_the_file_and_a_refused_update_is_not()
    {
        await Repository.TryInsertAsync(NewSubscription("s"), Ct);
        var read = (await Repository.GetAsync("s", Ct))!;
        var stale = (await Repository.GetAsync("s", Ct))!;
        read.State.Generation = 3;
        await Repository.TryUpdateAsync(read.State, read.Version, Ct);
        stale.State.Generation = 4;
        await Repository.TryUpdateAsync(stale.State, stale.Version, Ct);

        await using var reopened = FileSubscriptionStateStore.Open(_directory.Path);
        var snapshot = await reopened.LoadAsync(Ct);
        Assert.Equal(3, Assert.Single(snapshot.Subscriptions).Generation);
    }
}
