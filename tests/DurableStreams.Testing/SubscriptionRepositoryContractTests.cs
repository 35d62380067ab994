using DurableStreams.Core.Subscriptions;
using Xunit;

namespace DurableStreams.Testing;

/// <summary>
/// The <see cref="ISubscriptionRepository"/> contract the subscription engine relies on: insert-if-absent, updates
/// that succeed only against the version read, due work, and insert-if-absent signing keys. Run against the local
/// (in-process) repository and the PostgreSQL one.
/// </summary>
public abstract class SubscriptionRepositoryContractTests : IAsyncLifetime
{
    protected static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private ISubscriptionRepository? _repository;

    protected ISubscriptionRepository Repository => _repository!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A fresh, empty repository (initialised by the suite).</summary>
    protected abstract Task<ISubscriptionRepository> CreateRepositoryAsync();

    public virtual async ValueTask InitializeAsync()
    {
        _repository = await CreateRepositoryAsync();
        await _repository.InitializeAsync(Ct);
    }

    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    protected static SubscriptionState NewSubscription(string id) =>
        SubscriptionState.Create(id, new SubscriptionConfig { Type = SubscriptionType.PullWake, Streams = ["a"], WakeStream = "w" }, Now, "http://127.0.0.1/v1/stream");

    [Fact]
    public async Task Insert_stores_a_new_id_once_and_refuses_an_existing_one()
    {
        Assert.True(await Repository.TryInsertAsync(NewSubscription("s"), Ct));
        var other = NewSubscription("s");
        other.Description = "second";

        Assert.False(await Repository.TryInsertAsync(other, Ct));
        var stored = await Repository.GetAsync("s", Ct);
        Assert.NotNull(stored);
        Assert.Null(stored.State.Description);
        Assert.Null(await Repository.GetAsync("absent", Ct));
    }

    [Fact]
    public async Task An_update_succeeds_only_against_the_version_that_was_read()
    {
        await Repository.TryInsertAsync(NewSubscription("s"), Ct);
        var read = (await Repository.GetAsync("s", Ct))!;
        var stale = (await Repository.GetAsync("s", Ct))!;

        read.State.Generation = 7;
        Assert.True(await Repository.TryUpdateAsync(read.State, read.Version, Ct));
        stale.State.Generation = 99;
        Assert.False(await Repository.TryUpdateAsync(stale.State, stale.Version, Ct));

        var current = (await Repository.GetAsync("s", Ct))!;
        Assert.Equal(7, current.State.Generation);
        Assert.NotEqual(read.Version, current.Version);
    }

    [Fact]
    public async Task Of_concurrent_updates_from_one_read_exactly_one_wins()
    {
        await Repository.TryInsertAsync(NewSubscription("s"), Ct);
        var reads = new List<VersionedSubscription>();
        for (var i = 0; i < 8; i++)
        {
            var read = (await Repository.GetAsync("s", Ct))!;
            read.State.LeaseHolder = "worker-" + i;
            reads.Add(read);
        }

        var outcomes = await Task.WhenAll(reads.Select(r => Repository.TryUpdateAsync(r.State, r.Version, Ct).AsTask()));

        Assert.Single(outcomes, won => won);
        var winner = reads[Array.IndexOf(outcomes, true)].State.LeaseHolder;
        Assert.Equal(winner, (await Repository.GetAsync("s", Ct))!.State.LeaseHolder);
    }

    [Fact]
    public async Task Delete_removes_once_and_a_later_update_of_the_old_read_fails()
    {
        await Repository.TryInsertAsync(NewSubscription("s"), Ct);
        var read = (await Repository.GetAsync("s", Ct))!;

        Assert.True(await Repository.DeleteAsync("s", Ct));
        Assert.False(await Repository.DeleteAsync("s", Ct));
        Assert.False(await Repository.TryUpdateAsync(read.State, read.Version, Ct));
        Assert.Null(await Repository.GetAsync("s", Ct));
    }

    [Fact]
    public async Task Reads_are_copies_and_list_returns_every_subscription()
    {
        var original = NewSubscription("s1");
        original.Links["a"] = new SubscriptionLink { Explicit = true, AckedOffset = "0000000000000000_0000000000000005" };
        await Repository.TryInsertAsync(original, Ct);
        await Repository.TryInsertAsync(NewSubscription("s2"), Ct);
        original.Links["a"].AckedOffset = "changed";

        var read = (await Repository.GetAsync("s1", Ct))!;
        read.State.Links.Clear();

        var again = (await Repository.GetAsync("s1", Ct))!;
        Assert.Equal("0000000000000000_0000000000000005", again.State.Links["a"].AckedOffset);
        Assert.Equal(["s1", "s2"], (await Repository.ListAsync(Ct)).Select(s => s.State.Id).Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public async Task Link_candidates_are_subscriptions_linking_the_path_or_having_a_pattern()
    {
        await InsertAsync("linked", s => s.Links["feed/a"] = new SubscriptionLink { Explicit = true, AckedOffset = "0000000000000000_0000000000000000" });
        await InsertAsync("pattern", s => s.Pattern = "other/*");
        await InsertAsync("both", s =>
        {
            s.Pattern = "feed/*";
            s.Links["feed/a"] = new SubscriptionLink { Glob = true, AckedOffset = "0000000000000000_0000000000000000" };
        });
        await InsertAsync("unrelated", s => s.Links["feed/b"] = new SubscriptionLink { Explicit = true, AckedOffset = "0000000000000000_0000000000000000" });

        var candidates = await Repository.ListLinkCandidatesAsync("feed/a", Ct);

        Assert.Equal(
            [new LinkCandidate("both", "feed/*", true), new LinkCandidate("linked", null, true), new LinkCandidate("pattern", "other/*", false)],
            candidates.OrderBy(c => c.Id, StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public async Task Due_work_is_an_expired_lease_or_without_a_lease_a_retry_whose_time_has_come()
    {
        await InsertAsync("expired-lease", s => s.LeaseExpiresAt = Now.AddSeconds(-1));
        await InsertAsync("live-lease", s => s.LeaseExpiresAt = Now.AddSeconds(1));
        await InsertAsync("retry-due", s => s.NextAttemptAt = Now);
        await InsertAsync("retry-later", s => s.NextAttemptAt = Now.AddSeconds(1));
        await InsertAsync("retry-due-lease-live", s =>
        {
            s.NextAttemptAt = Now.AddSeconds(-5);
            s.LeaseExpiresAt = Now.AddSeconds(5);
        });
        await InsertAsync("idle", _ => { });

        var due = await Repository.ListDueAsync(Now, Ct);

        Assert.Equal(["expired-lease", "retry-due"], due.Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public async Task Due_work_follows_updates()
    {
        await InsertAsync("s", s => s.LeaseExpiresAt = Now.AddSeconds(-1));
        var read = (await Repository.GetAsync("s", Ct))!;
        read.State.LeaseExpiresAt = null;

        await Repository.TryUpdateAsync(read.State, read.Version, Ct);

        Assert.Empty(await Repository.ListDueAsync(Now, Ct));
    }

    [Fact]
    public async Task Signing_keys_are_stored_only_when_none_exist_and_replaced_by_a_save()
    {
        var first = Key("k1");

        Assert.Equal(["k1"], (await Repository.GetOrAddSigningKeysAsync([first], Ct)).Select(k => k.Kid));
        Assert.Equal(["k1"], (await Repository.GetOrAddSigningKeysAsync([Key("k2")], Ct)).Select(k => k.Kid));
        await Repository.SaveSigningKeysAsync([first, Key("k3")], Ct);
        var keys = await Repository.GetOrAddSigningKeysAsync([Key("k4")], Ct);
        Assert.Equal(["k1", "k3"], keys.Select(k => k.Kid));
        Assert.Equal(first.PrivateKey, keys[0].PrivateKey);
    }

    protected static SigningKeyState Key(string kid) => new() { Kid = kid, PrivateKey = "p-" + kid, PublicKey = "x-" + kid, CreatedAt = Now };

    private async Task InsertAsync(string id, Action<SubscriptionState> configure)
    {
        var subscription = NewSubscription(id);
        configure(subscription);
        Assert.True(await Repository.TryInsertAsync(subscription, Ct));
    }
}
