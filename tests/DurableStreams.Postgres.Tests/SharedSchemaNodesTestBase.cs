using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Storage.Postgres;
using DurableStreams.Testing;
using Npgsql;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// Tests of one PostgreSQL schema shared by several store nodes (as several servers share one database): the first node
/// opens with the test, more with <see cref="OpenNodeAsync"/>, all are closed at the end; <see cref="ScalarAsync"/>
/// looks at what is stored (<c>{s}</c> in the SQL is the schema).
/// </summary>
public abstract class SharedSchemaNodesTestBase(PostgresServer server, string schemaPrefix) : StoreTestBase, IAsyncLifetime
{
    private readonly List<PostgresStreamStore> _nodes = [];

    protected PostgresServer Server => server;

    /// <summary>The schema every node of the test opens.</summary>
    protected string Schema { get; } = server.NewSchema(schemaPrefix);

    /// <summary>The retention and compaction policies the nodes open with (none by default).</summary>
    protected virtual RetentionPolicies Policies => RetentionPolicies.None;

    /// <summary>The node the base class's helpers talk to (the first one opened).</summary>
    protected override IStreamStore CurrentStore => _nodes[0];

    protected PostgresStreamStore NodeA => _nodes[0];

    /// <summary>Every node opened so far, the first one first.</summary>
    protected IReadOnlyList<PostgresStreamStore> Nodes => _nodes;

    public async ValueTask InitializeAsync()
    {
        server.SkipIfUnavailable();
        await OpenNodeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Opens another node on the test's schema (or on <paramref name="schema"/> of another database).</summary>
    protected async Task<PostgresStreamStore> OpenNodeAsync(string? connectionString = null, string? schema = null)
    {
        var node = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
        {
            ConnectionString = connectionString ?? server.ConnectionString,
            Schema = schema ?? Schema,
            TimeProvider = Time,
            SweepInterval = TimeSpan.FromHours(1),
            Retention = Policies,
        }, Ct);
        _nodes.Add(node);
        return node;
    }

    /// <summary>One value of <paramref name="sql"/>, in which <c>{s}</c> is the test's schema.</summary>
    protected async Task<T> ScalarAsync<T>(string sql, params (string Name, object Value)[] parameters)
    {
        await using var dataSource = NpgsqlDataSource.Create(server.ConnectionString);
        await using var command = dataSource.CreateCommand(sql.Replace("{s}", Schema, StringComparison.Ordinal));
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }
}
