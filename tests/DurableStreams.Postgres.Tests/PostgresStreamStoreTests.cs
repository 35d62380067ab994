using System.Threading.Channels;
using DurableStreams.Core;
using DurableStreams.Storage.Postgres;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>The store contract against <see cref="PostgresStreamStore"/> on a real PostgreSQL, one schema per test.</summary>
public class PostgresStreamStoreTests(PostgresServer server) : StreamStoreContractTests
{
    /// <summary><see cref="PostgresStreamStoreOptions.BatchAppends"/> of every store the test opens.</summary>
    protected virtual bool BatchAppends => true;

    private static readonly TimeSpan Sweep = TimeSpan.FromSeconds(2);
    private string _schema = server.NewSchema();
    private bool _created;

    protected override TimeSpan SweepInterval => Sweep;

    /// <summary>
    /// Each create and read runs a recursive query over the chain, so building 10,000 levels one create at a time takes
    /// minutes here (1,000 levels took 2.6 min); 200, past the default limit, exercise the same loops.
    /// </summary>
    protected override int DeepForkChainDepth => 200;

    public override ValueTask InitializeAsync()
    {
        server.SkipIfUnavailable();
        return base.InitializeAsync();
    }

    /// <summary>
    /// A new store: the first in the test's schema, any later one (<c>UseLimitsAsync</c> replaces the store) in a schema
    /// of its own, so it starts empty as a new memory store does (reopening keeps the schema, see <see cref="ReopenStoreAsync"/>).
    /// </summary>
    protected override async Task<IStreamStore> CreateStoreAsync(FakeTimeProvider time)
    {
        if (_created)
        {
            _schema = server.NewSchema();
        }
        _created = true;
        return await OpenAsync(time);
    }

    protected override async Task<IStreamStore?> ReopenStoreAsync(IStreamStore store, FakeTimeProvider time)
    {
        await store.DisposeAsync();
        return await OpenAsync(time);
    }

    protected override ValueTask<int> CountLiveStreamsAsync(IStreamStore store) => ((PostgresStreamStore)store).CountLiveStreamsAsync(TestContext.Current.CancellationToken);

    private async Task<PostgresStreamStore> OpenAsync(FakeTimeProvider time) => await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
    {
        ConnectionString = server.ConnectionString,
        Schema = _schema,
        TimeProvider = time,
        SweepInterval = Sweep,
        MaxForkDepth = Limits.MaxForkDepth,
        MaxMessagesPerAppend = Limits.MaxMessagesPerAppend,
        Retention = Limits.Retention ?? DurableStreams.Core.Retention.RetentionPolicies.None,
        ProducerRetention = ProducerRetention,
        BatchAppends = BatchAppends,
    }, TestContext.Current.CancellationToken);

    [Fact]
    public async Task A_commit_through_another_node_is_raised_on_this_nodes_change_feed()
    {
        await using var other = await OpenAsync(Time);
        await ((PostgresStreamStore)Store).CrossNodeListening.WaitAsync(HangGuard, Ct);
        await other.CrossNodeListening.WaitAsync(HangGuard, Ct);
        var heard = Channel.CreateUnbounded<StreamChanged>();
        await using var subscription = other.Changes.Subscribe((change, _) =>
        {
            heard.Writer.TryWrite(change);
            return ValueTask.CompletedTask;
        });

        await CreatedAsync("s");
        await AppendedAsync("s", "a");

        // Node-to-node notices are coalesced by name: at least one arrives, each a ChangedElsewhere for "s".
        var change = await heard.Reader.ReadAsync(Ct).AsTask().WaitAsync(HangGuard, Ct);
        Assert.Equal((StreamChangeKind.ChangedElsewhere, "s", false), (change.Kind, change.Name, change.IsLocal));
    }

    [Fact]
    public async Task The_sweeper_deletes_producer_rows_idle_past_the_retention()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "a", producer: Producer(0, 0, "idle"));
        Time.Advance(ProducerRetention / 2);
        await AppendedAsync("s", "b", producer: Producer(0, 0, "busy"));
        Assert.Equal(2, await ((PostgresStreamStore)Store).CountProducerRowsAsync(TestContext.Current.CancellationToken));

        Time.Advance(ProducerRetention / 2 + Sweep);

        Assert.Equal(1, await ((PostgresStreamStore)Store).CountProducerRowsAsync(TestContext.Current.CancellationToken));
    }
}

/// <summary>The store contract (and the store's own tests above) with <see cref="PostgresStreamStoreOptions.BatchAppends"/> off.</summary>
public sealed class PostgresUnbatchedStreamStoreTests(PostgresServer server) : PostgresStreamStoreTests(server)
{
    protected override bool BatchAppends => false;
}
