using System.Runtime.CompilerServices;
using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using DurableStreams.Storage.Postgres;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// Data written by an earlier build opens with every byte: <c>Fixtures/postgres-v1.sql</c> (schema version 3) and
/// <c>postgres-v2.sql</c> (schema version 4, retention) are plain <c>pg_dump</c>s of one schema (<c>fixture_v1</c>,
/// <c>fixture_v2</c>) written through <see cref="StoreFormatFixture.WriteAsync"/> and the subscription repository (v2
/// also holds a trimmed stream); the tests restore them into a new database and check them as the file store's
/// fixtures are checked (see Fixtures/README.md).
/// </summary>
public sealed class FormatFixtureTests(PostgresServer server)
{
    private const string Fixture = "postgres-v2.sql";
    private const string Schema = "fixture_v2";
    private static int s_databases;

    /// <summary>The stream only the v2 fixture holds: "aaaa", "bbbb", "cccc" (an age policy recorded their times), trimmed to 8.</summary>
    private const string Retained = "retained";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_postgres_v1_dump_opens_with_every_byte_offset_fork_producer_and_subscription()
    {
        await using var store = await RestoreAndVerifyAsync("postgres-v1.sql", "fixture_v1", new FakeTimeProvider(StoreFormatFixture.OpenAt));
        Assert.Equal(ReadStatus.NotFound, (await store.GetMetadataAsync(Retained, Ct)).Status);
    }

    [Fact]
    public async Task The_postgres_v2_dump_opens_with_every_byte_and_its_retained_start_and_append_times()
    {
        await using var store = await RestoreAndVerifyAsync(Fixture, Schema, new FakeTimeProvider(StoreFormatFixture.OpenAt), async store =>
        {
            Assert.Equal(new StreamOffset(8), (await store.GetMetadataAsync(Retained, Ct)).Info!.RetainedStart);
            Assert.Equal(ReadStatus.BeforeRetainedStart, (await store.ReadAsync(Retained, new ReadRequest(OffsetQuery.At(new StreamOffset(4)), 1 << 20), Ct)).Status);
            var read = await store.ReadAsync(Retained, new ReadRequest(OffsetQuery.Beginning, 1 << 20), Ct);
            Assert.Equal((new StreamOffset(8), "cccc"), (read.Start, System.Text.Encoding.UTF8.GetString([.. read.Chunks.SelectMany(c => c.ToArray())])));
            // The stored times: "cccc" was appended at T0 + 40 min, so at OpenAt (T0 + 60 min) a 21-minute age bound
            // keeps it and a 20-minute one drops it.
            Assert.Equal(RetentionStatus.Unchanged, (await store.ApplyRetentionAsync(Retained, new RetentionPolicy(TimeSpan.FromMinutes(21), null), Ct)).Status);
            Assert.Equal(new StreamOffset(12), (await store.ApplyRetentionAsync(Retained, new RetentionPolicy(TimeSpan.FromMinutes(20), null), Ct)).RetainedStart);
        });
    }

    /// <summary>
    /// Restores <paramref name="fixture"/> into a new database, opens it at <see cref="StoreFormatFixture.OpenAt"/>, runs
    /// <paramref name="first"/> (before the shared checks move the clock), checks it, and returns the store.
    /// </summary>
    private async Task<PostgresStreamStore> RestoreAndVerifyAsync(string fixture, string schema, FakeTimeProvider time, Func<PostgresStreamStore, Task>? first = null)
    {
        server.SkipIfUnavailable();
        var database = $"fixture_{Environment.ProcessId}_{Interlocked.Increment(ref s_databases)}";
        var connection = await server.RestoreFixtureAsync(fixture, database);

        // Producer tuples as stored, updated-at included (the store's contract shows only their effects).
        await using (var dataSource = NpgsqlDataSource.Create(connection))
        await using (var command = dataSource.CreateCommand(
            $"SELECT s.name, p.producer_id, p.epoch, p.last_seq, p.updated_ticks FROM {schema}.ds_producers p JOIN {schema}.ds_streams s ON s.id = p.stream_id"))
        await using (var reader = await command.ExecuteReaderAsync(Ct))
        {
            var stored = new List<(string, string, long, long, DateTimeOffset)>();
            while (await reader.ReadAsync(Ct))
            {
                stored.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero)));
            }
            Assert.Equal(StoreFormatFixture.Producers.Order(), stored.Order());
        }

        var store = await PostgresStreamStore.OpenAsync(Options(connection, schema, time), Ct);
        try
        {
            var repository = store.CreateSubscriptionRepository();
            var subscriptions = await repository.ListAsync(Ct);
            var keys = await repository.GetOrAddSigningKeysAsync([], Ct);
            StoreFormatFixture.AssertSubscriptions(subscriptions.Select(s => s.State), keys);
            if (first is not null)
            {
                await first(store);
            }

            await StoreFormatFixture.VerifyAsync(store, time, Ct);
            return store;
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Writes <c>Fixtures/postgres-v2.sql</c> into the source tree (v1 was written by the same method before retention,
    /// without the trimmed stream). Run it only to create a NEW fixture version (rename
    /// the constants first; an existing fixture is never overwritten):
    /// <c>DS_WRITE_FIXTURES=1 dotnet test tests/DurableStreams.Postgres.Tests -c Release --filter Category=FixtureGenerator</c>.
    /// </summary>
    [Fact]
    [Trait("Category", "FixtureGenerator")]
    public async Task Generate_the_postgres_v2_fixture()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("DS_WRITE_FIXTURES") == "1", "Set DS_WRITE_FIXTURES=1 to write a new format fixture.");
        server.SkipIfUnavailable();
        var target = Path.Combine(SourceDirectory(), "Fixtures", Fixture);
        Assert.False(File.Exists(target), $"{target} exists: fixtures are never rewritten");
        var database = $"fixture_gen_{Environment.ProcessId}";
        await server.RunClientToolAsync("psql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", $"CREATE DATABASE {database}");
        var connection = server.ConnectionStringFor(database);

        var time = new FakeTimeProvider(StoreFormatFixture.T0);
        var retention = new RetentionPolicies([new RetentionRule(Retained, new RetentionPolicy(TimeSpan.FromMinutes(30), null))]);
        await using (var store = await PostgresStreamStore.OpenAsync(Options(connection, Schema, time, retention), Ct))
        {
            await StoreFormatFixture.WriteAsync(store, time, null, Ct);
            // Appended at T0 + 30, 35 and 40 min (append-time samples every 18 s for a 30-minute bound), then trimmed by size.
            time.SetUtcNow(StoreFormatFixture.T0.AddMinutes(30));
            Assert.Equal(CreateStatus.Created, (await store.CreateAsync(Retained, new CreateStreamRequest { ContentType = "text/plain" }, Ct)).Status);
            foreach (var body in (string[])["aaaa", "bbbb", "cccc"])
            {
                Assert.Equal(AppendStatus.Appended, (await store.AppendAsync(Retained, new AppendRequest { ContentType = "text/plain", Body = System.Text.Encoding.UTF8.GetBytes(body) }, Ct)).Status);
                time.Advance(TimeSpan.FromMinutes(5));
            }
            Assert.Equal(new StreamOffset(8), (await store.ApplyRetentionAsync(Retained, new RetentionPolicy(null, 4), Ct)).RetainedStart);
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
    private static PostgresStreamStoreOptions Options(string connection, string schema, FakeTimeProvider time, RetentionPolicies? retention = null) =>
        new() { ConnectionString = connection, Schema = schema, TimeProvider = time, SweepInterval = TimeSpan.FromDays(1), Retention = retention ?? RetentionPolicies.None };

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
