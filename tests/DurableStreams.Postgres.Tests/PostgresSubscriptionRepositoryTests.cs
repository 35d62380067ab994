using DurableStreams.Storage.Postgres;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// The repository contract against PostgreSQL (one schema per test), plus what sharing adds: two stores on one schema
/// (two nodes) see each other's writes, race on one version with one winner, agree on one signing key, and hear each
/// other's link changes.
/// </summary>
public sealed class PostgresSubscriptionRepositoryTests(PostgresServer server) : SubscriptionRepositoryContractTests
{
    private readonly string _schema = server.NewSchema("subs");
    private readonly List<PostgresStreamStore> _stores = [];

    public override ValueTask InitializeAsync()
    {
        server.SkipIfUnavailable();
        return base.InitializeAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }
        await base.DisposeAsync();
    }

    protected override async Task<ISubscriptionRepository> CreateRepositoryAsync() => (await OpenNodeAsync()).CreateSubscriptionRepository();

    private async Task<PostgresStreamStore> OpenNodeAsync()
    {
        var store = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions { ConnectionString = server.ConnectionString, Schema = _schema }, Ct);
        _stores.Add(store);
        await store.CrossNodeListening.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        return store;
    }

    [Fact]
    public async Task Two_nodes_see_each_others_writes_and_race_on_one_version_with_one_winner()
    {
        var other = (await OpenNodeAsync()).CreateSubscriptionRepository();
        Assert.True(await Repository.TryInsertAsync(NewSubscription("s"), Ct));
        Assert.False(await other.TryInsertAsync(NewSubscription("s"), Ct));

        var mine = (await Repository.GetAsync("s", Ct))!;
        var theirs = (await other.GetAsync("s", Ct))!;
        Assert.Equal(mine.Version, theirs.Version);
        mine.State.LeaseHolder = "mine";
        theirs.State.LeaseHolder = "theirs";
        var outcomes = await Task.WhenAll(Repository.TryUpdateAsync(mine.State, mine.Version, Ct).AsTask(), other.TryUpdateAsync(theirs.State, theirs.Version, Ct).AsTask());

        Assert.Single(outcomes, won => won);
        var winner = outcomes[0] ? "mine" : "theirs";
        Assert.Equal(winner, (await other.GetAsync("s", Ct))!.State.LeaseHolder);
    }

    [Fact]
    public async Task Nodes_starting_together_agree_on_one_signing_key()
    {
        var repositories = new List<ISubscriptionRepository> { Repository };
        for (var i = 0; i < 3; i++)
        {
            repositories.Add((await OpenNodeAsync()).CreateSubscriptionRepository());
        }

        var keys = await Task.WhenAll(repositories.Select((r, i) => r.GetOrAddSigningKeysAsync([Key("k" + i)], Ct).AsTask()));

        Assert.Single(keys.Select(k => Assert.Single(k).Kid).Distinct());
    }

    [Fact]
    public async Task A_link_change_published_by_one_node_is_heard_by_the_others_but_not_by_itself()
    {
        var other = (await OpenNodeAsync()).CreateSubscriptionRepository();
        var heardByOther = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var heardSecond = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var heardBySelf = new List<string?>();
        other.LinksChanged += id =>
        {
            if (id is not null)
            {
                heardByOther.TrySetResult(id);
            }
        };
        Repository.LinksChanged += id =>
        {
            lock (heardBySelf)
            {
                heardBySelf.Add(id);
            }
            if (id == "second")
            {
                heardSecond.TrySetResult();
            }
        };

        await Repository.PublishLinksChangedAsync("first", Ct);
        await other.PublishLinksChangedAsync("second", Ct);

        Assert.Equal("first", await heardByOther.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        // One channel delivers in commit order: once "second" is heard, the own "first" has been seen and filtered.
        await heardSecond.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        lock (heardBySelf)
        {
            Assert.DoesNotContain("first", heardBySelf);
        }
    }
}
