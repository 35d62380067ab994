using System.Runtime.CompilerServices;
using DurableStreams.Storage.Postgres;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// Data written by an earlier build opens with every byte: <c>Fixtures/postgres-v1.sql</c> is a plain <c>pg_dump</c> of
/// one schema (<c>fixture_v1</c>) written by <see cref="Generate_the_postgres_v1_fixture"/> through
/// <see cref="StoreFormatFixture.WriteAsync"/> and the subscription repository; the test restores it into a new
/// database and checks it as the file store's fixture is checked (see Fixtures/README.md).
/// </summary>
public sealed class FormatFixtureTests(PostgresServer server)
{
    private const string Fixture = "postgres-v1.sql";
    private const string Schema = "fixture_v1";
    private static int s_databases;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_postgres_v1_dump_opens_with_every_byte_offset_fork_producer_and_subscription()
    {
        server.SkipIfUnavailable();
        var database = $"fixture_{Environment.ProcessId}_{Interlocked.Increment(ref s_databases)}";
        await server.RunClientToolAsync("psql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", $"CREATE DATABASE {database}");
        await server.RunClientToolAsync("psql", "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-f", Path.Combine(AppContext.BaseDirectory, "Fixtures", Fixture));
        var connection = server.ConnectionStringFor(database);

        // Producer tuples as stored, updated-at included (the store's contract shows only their effects).
        await using (var dataSource = NpgsqlDataSource.Create(connection))
        await using (var command = dataSource.CreateCommand(
            $"SELECT s.name, p.producer_id, p.epoch, p.last_seq, p.updated_ticks FROM {Schema}.ds_producers p JOIN {Schema}.ds_streams s ON s.id = p.stream_id"))
        await using (var reader = await command.ExecuteReaderAsync(Ct))
        {
            var stored = new List<(string, string, long, long, DateTimeOffset)>();
            while (await reader.ReadAsync(Ct))
            {
                stored.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero)));
            }
            Assert.Equal(StoreFormatFixture.Producers.Order(), stored.Order());
        }

        var time = new FakeTimeProvider(StoreFormatFixture.OpenAt);
        await using var store = await PostgresStreamStore.OpenAsync(Options(connection, time), Ct);
        var repository = store.CreateSubscriptionRepository();
        var subscriptions = await repository.ListAsync(Ct);
        var keys = await repository.GetOrAddSigningKeysAsync([], Ct);
        StoreFormatFixture.AssertSubscriptions(subscriptions.Select(s => s.State), keys);

        await StoreFormatFixture.VerifyAsync(store, time, Ct);
    }

    /// <summary>
    /// Writes <c>Fixtures/postgres-v1.sql</c> into the source tree. Run it only to create a NEW fixture version (rename
    /// the constants first; an existing fixture is never overwritten):
    /// <c>DS_WRITE_FIXTURES=1 dotnet test tests/DurableStreams.Postgres.Tests -c Release --filter Category=FixtureGenerator</c>.
    /// </summary>
    [Fact]
    [Trait("Category", "FixtureGenerator")]
    public async Task Generate_the_postgres_v1_fixture()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("DS_WRITE_FIXTURES") == "1", "Set DS_WRITE_FIXTURES=1 to write a new format fixture.");
        server.SkipIfUnavailable();
        var target = Path.Combine(SourceDirectory(), "Fixtures", Fixture);
        Assert.False(File.Exists(target), $"{target} exists: fixtures are never rewritten");
        var database = $"fixture_gen_{Environment.ProcessId}";
        await server.RunClientToolAsync("psql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", $"CREATE DATABASE {database}");
        var connection = server.ConnectionStringFor(database);

        var time = new FakeTimeProvider(StoreFormatFixture.T0);
        await using (var store = await PostgresStreamStore.OpenAsync(Options(connection, time), Ct))
        {
            await StoreFormatFixture.WriteAsync(store, time, null, Ct);
            var repository = store.CreateSubscriptionRepository();
            foreach (var subscription in StoreFormatFixture.Subscriptions())
            {
                Assert.True(await repository.TryInsertAsync(subscription, Ct));
            }
            Assert.True(await repository.TryInsertAsync(StoreFormatFixture.DeletedSubscription(), Ct));
            Assert.True(await repository.DeleteAsync(StoreFormatFixture.DeletedSubscription().Id, Ct));
            await repository.SaveSigningKeysAsync(StoreFormatFixture.SigningKeys(), Ct);
        }

        await server.RunClientToolAsync("pg_dump", "-d", database, "--schema", Schema, "--no-owner", "--no-privileges", "-f", target);
        // pg_dump 15.14+ wraps the dump in \restrict <random key> … \unrestrict <key>, which older psql rejects; the
        // fixture is trusted input, so drop both lines (the dump is then also the same for the same data).
        var lines = await File.ReadAllLinesAsync(target, Ct);
        await File.WriteAllLinesAsync(target, lines.Where(l => !l.StartsWith("\\restrict ", StringComparison.Ordinal) && !l.StartsWith("\\unrestrict ", StringComparison.Ordinal)), Ct);
    }

    /// <summary>
    /// The fake clock jumps by days; a fake periodic timer fires once per period it passes, so the sweeper runs daily
    /// (expiry is checked on access as well).
    /// </summary>
    private static PostgresStreamStoreOptions Options(string connection, FakeTimeProvider time) =>
        new() { ConnectionString = connection, Schema = Schema, TimeProvider = time, SweepInterval = TimeSpan.FromDays(1) };

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
