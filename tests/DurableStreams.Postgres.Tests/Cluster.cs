using DurableStreams.Server;
using DurableStreams.Storage.Postgres;
using DurableStreams.Testing;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// N <see cref="DurableStreamServer"/> nodes in this process, each on 127.0.0.1:0 with its own
/// <see cref="PostgresStreamStore"/> (own pool, own LISTEN connection) on one shared schema: a real cluster except for
/// the process boundary. Each node's store is wrapped so tests can await a parked long-poll or SSE wait.
/// </summary>
internal sealed class Cluster : IAsyncDisposable
{
    private readonly List<DurableStreamServer> _servers = [];
    private readonly List<PostgresStreamStore> _stores = [];

    private Cluster()
    {
    }

    public IReadOnlyList<Node> Nodes { get; private set; } = [];

    /// <summary>
    /// Starts <paramref name="nodes"/> nodes on a fresh schema. With <paramref name="subscriptions"/>, every node serves
    /// the subscription APIs on the store's shared subscription state, polling for due work every 100 ms.
    /// </summary>
    public static async Task<Cluster> StartAsync(PostgresServer server, int nodes, CancellationToken cancellationToken, bool subscriptions = false)
    {
        var cluster = new Cluster();
        var schema = server.NewSchema("cluster");
        var list = new List<Node>();
        try
        {
            for (var i = 0; i < nodes; i++)
            {
                var store = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions { ConnectionString = server.ConnectionString, Schema = schema }, cancellationToken);
                cluster._stores.Add(store);
                await store.CrossNodeListening.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
                var observed = new ObservedStore(store);
                var options = new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = observed };
                if (subscriptions)
                {
                    options.EnableSubscriptions = true;
                    options.Subscriptions.Repository = store.CreateSubscriptionRepository();
                    options.Subscriptions.SharedPollInterval = TimeSpan.FromMilliseconds(100);
                    options.Subscriptions.AllowLocalhostHttp = true; // the receivers listen on 127.0.0.1
                }
                var host = new DurableStreamServer(options);
                cluster._servers.Add(host);
                await host.StartAsync(cancellationToken);
                list.Add(new Node(host, observed, new HttpClient { BaseAddress = host.StreamsUrl, Timeout = TimeSpan.FromSeconds(60) }));
            }
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        cluster.Nodes = list;
        return cluster;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes)
        {
            node.Client.Dispose();
        }
        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }
    }

    internal sealed record Node(DurableStreamServer Server, ObservedStore Store, HttpClient Client);
}
