using System.Text;
using DurableStreams.Core;
using DurableStreams.Storage.Postgres;
using Npgsql;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// <see cref="PostgresStreamStoreOptions.BatchAppends"/>: appends of different streams arriving together share one
/// commit, each keeps its own answer, order within a stream is kept, and a failing append fails alone. One batch runs at
/// a time here, and the first is held on a row lock the test owns, so the appends after it deterministically queue and
/// go together in the next batch.
/// </summary>
public sealed class PostgresBatchAppendTests(PostgresServer server) : IAsyncLifetime
{
    private const string Octets = "application/octet-stream";
    private readonly string _schema = server.NewSchema("batch");
    private PostgresStreamStore? _store;

    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        server.SkipIfUnavailable();
        _store = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
        {
            ConnectionString = server.ConnectionString,
            Schema = _schema,
            BatchAppends = true,
            AppendBatches = 1,
        }, Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }

    [Fact]
    public async Task Appends_of_different_streams_arriving_together_share_one_commit_and_each_stream_keeps_its_order()
    {
        foreach (var name in new[] { "hold", "b", "c" })
        {
            await CreateAsync(name);
        }
        List<Task<AppendStreamResult>> appends;
        await using (var holder = await HoldAsync("hold"))
        {
            var held = _store!.AppendAsync("hold", Data("h"), Ct).AsTask();
            appends =
            [
                _store.AppendAsync("b", Data("0", new("p", 0, 0)), Ct).AsTask(),
                _store.AppendAsync("c", Data("x"), Ct).AsTask(),
                _store.AppendAsync("b", Data("1", new("p", 0, 1)), Ct).AsTask(),
                _store.AppendAsync("c", Data("y"), Ct).AsTask(),
                _store.AppendAsync("b", Data("2", new("p", 0, 2)), Ct).AsTask(),
            ];
            await _store.WaitForQueuedAppendsAsync(5, Ct).WaitAsync(HangGuard, Ct);
            Assert.False(held.IsCompleted);
            appends.Add(held);
        }

        var results = await Task.WhenAll(appends);

        Assert.All(results, r => Assert.Equal(AppendStatus.Appended, r.Status));
        Assert.Equal("012", await ContentAsync("b"));
        Assert.Equal("xy", await ContentAsync("c"));
        Assert.Equal(4, _store!.AppendsInSharedCommits);
    }

    [Fact]
    public async Task A_failing_append_of_a_batch_fails_alone_and_the_others_commit()
    {
        foreach (var name in new[] { "hold", "b", "c", "d" })
        {
            await CreateAsync(name);
        }
        // Any data row of stream c makes PostgreSQL raise an error, so the batch carrying c's append rolls back.
        await ExecuteAsync(
            $"""
            CREATE FUNCTION "{_schema}".fail_c() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.stream_id = (SELECT id FROM "{_schema}".ds_streams WHERE name = 'c') THEN
                    RAISE EXCEPTION 'no data for c';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER fail_c BEFORE INSERT ON "{_schema}".ds_data FOR EACH ROW EXECUTE FUNCTION "{_schema}".fail_c();
            """);
        Task<AppendStreamResult> held, b, c, d;
        await using (var holder = await HoldAsync("hold"))
        {
            held = _store!.AppendAsync("hold", Data("h"), Ct).AsTask();
            b = _store.AppendAsync("b", Data("b"), Ct).AsTask();
            c = _store.AppendAsync("c", Data("c"), Ct).AsTask();
            d = _store.AppendAsync("d", Data("d"), Ct).AsTask();
            await _store.WaitForQueuedAppendsAsync(3, Ct).WaitAsync(HangGuard, Ct);
        }

        Assert.Equal(AppendStatus.Appended, (await held).Status);
        Assert.Equal(AppendStatus.Appended, (await b).Status);
        Assert.Equal(AppendStatus.Appended, (await d).Status);
        var failed = await Assert.ThrowsAsync<PostgresException>(() => c);
        Assert.Contains("no data for c", failed.MessageText, StringComparison.Ordinal);
        Assert.Equal(("b", "", "d"), (await ContentAsync("b"), await ContentAsync("c"), await ContentAsync("d")));
    }

    [Fact]
    public async Task A_lone_append_runs_its_batch_itself_and_appends_queued_behind_a_batch_go_in_the_next()
    {
        foreach (var name in new[] { "lone", "hold", "b", "c" })
        {
            await CreateAsync(name);
        }

        // Nothing running: the append's batch is run by the append itself (no hop to a pool thread and back).
        Assert.Equal(AppendStatus.Appended, (await _store!.AppendAsync("lone", Data("1"), Ct)).Status);
        Assert.Equal(1, _store.BatchesRunByCaller);

        Task<AppendStreamResult> held, b, c;
        await using (var holder = await HoldAsync("hold"))
        {
            held = _store.AppendAsync("hold", Data("h"), Ct).AsTask();
            b = _store.AppendAsync("b", Data("b"), Ct).AsTask();
            c = _store.AppendAsync("c", Data("c"), Ct).AsTask();
            await _store.WaitForQueuedAppendsAsync(2, Ct).WaitAsync(HangGuard, Ct);
        }

        Assert.All(await Task.WhenAll(held, b, c), r => Assert.Equal(AppendStatus.Appended, r.Status));
        // The held append ran its own batch; b and c queued behind it and went together in one batch from the pool.
        Assert.Equal(2, _store.BatchesRunByCaller);
        Assert.Equal(2, _store.AppendsInSharedCommits);
        Assert.Equal("1", await ContentAsync("lone"));
        Assert.Equal("b", await ContentAsync("b"));
    }

    private async Task CreateAsync(string name) =>
        Assert.Equal(CreateStatus.Created, (await _store!.CreateAsync(name, new CreateStreamRequest { ContentType = Octets }, Ct)).Status);

    private static AppendRequest Data(string text, ProducerClaim? producer = null) =>
        new() { ContentType = Octets, Body = Encoding.UTF8.GetBytes(text), Producer = producer };

    /// <summary>A transaction holding the stream's row lock until disposed (then it commits, changing nothing).</summary>
    private async Task<Holder> HoldAsync(string name)
    {
        var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync(Ct);
        var transaction = await connection.BeginTransactionAsync(Ct);
        await using var command = new NpgsqlCommand($"SELECT id FROM \"{_schema}\".ds_streams WHERE name = @name FOR UPDATE", connection, transaction);
        command.Parameters.AddWithValue("name", name);
        await command.ExecuteScalarAsync(Ct);
        return new Holder(connection, transaction);
    }

    private sealed class Holder(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await transaction.CommitAsync();
            await connection.DisposeAsync();
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private async Task<string> ContentAsync(string name)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(
            $"""
            SELECT coalesce(string_agg(convert_from(d.data, 'UTF8'), '' ORDER BY d.start_pos), '')
            FROM "{_schema}".ds_data d JOIN "{_schema}".ds_streams s ON s.id = d.stream_id WHERE s.name = @name
            """, connection);
        command.Parameters.AddWithValue("name", name);
        return (string)(await command.ExecuteScalarAsync(Ct))!;
    }
}
