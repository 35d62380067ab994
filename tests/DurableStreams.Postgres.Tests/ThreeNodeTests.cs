using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>Tests on a fresh cluster of three in-process nodes sharing one database (nodes A, B and C).</summary>
public abstract class ThreeNodeTests(PostgresServer server, bool subscriptions = false) : IAsyncLifetime
{
    private Cluster? _cluster;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    private protected IReadOnlyList<Cluster.Node> Nodes => _cluster?.Nodes ?? throw new InvalidOperationException("The cluster has not started.");

    private protected Cluster.Node A => Nodes[0];
    private protected Cluster.Node B => Nodes[1];
    private protected Cluster.Node C => Nodes[2];

    public async ValueTask InitializeAsync()
    {
        server.SkipIfUnavailable();
        _cluster = await Cluster.StartAsync(server, 3, Ct, subscriptions);
    }

    public async ValueTask DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }
}
