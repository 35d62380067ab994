using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using DurableStreams.Storage.Postgres;
using DurableStreams.Testing;
using Npgsql;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// Retention in the PostgreSQL store beyond the shared contract: several nodes on one database trimming and reading the
/// same stream, reads racing a trim, the schema migration, and what is actually stored (rows, samples).
/// </summary>
public sealed class PostgresRetentionTests(PostgresServer server) : SharedSchemaNodesTestBase(server, "ret")
{
    /// <summary>size/**: the last 50 bytes; age/**: one hour (samples every 36 s); anything else keeps everything.</summary>
    private static readonly RetentionPolicies Rules = new(
    [
        new RetentionRule("size/**", new RetentionPolicy(null, 50)),
        new RetentionRule("age/**", new RetentionPolicy(TimeSpan.FromHours(1), null)),
    ]);

    protected override RetentionPolicies Policies => Rules;

    private static readonly RetentionPolicy Size = Rules.Resolve("size/x");
    private static readonly RetentionPolicy Age = Rules.Resolve("age/x");

    /// <summary>A text stream of <paramref name="appends"/> appends of 10 bytes each ("a000000000", "a000000001", ...).</summary>
    private async Task FillAsync(string name, int appends, int first = 0)
    {
        if (first == 0)
        {
            await CreatedAsync(name);
        }
        for (var i = first; i < first + appends; i++)
        {
            await AppendedAsync(name, $"a{i:D9}");
        }
    }

    private static StreamOffset At(long position) => new(position);

    private static string TextOf(ReadResult read) => System.Text.Encoding.UTF8.GetString(BytesOf(read));

    private async Task AppendedAsync(string name, string body, string contentType = TextPlain) =>
        Assert.Equal(AppendStatus.Appended, (await AppendAsync(name, body, contentType)).Status);

    private static string Appends(int from, int to) => string.Concat(Enumerable.Range(from, to - from).Select(i => $"a{i:D9}"));

    private Task<long> DataRowsAsync(string name) =>
        ScalarAsync<long>("SELECT count(*) FROM {s}.ds_data d JOIN {s}.ds_streams s ON s.id = d.stream_id WHERE s.name = @n", ("n", name));

    [Fact]
    public async Task Two_nodes_trimming_the_same_stream_at_once_move_the_start_once_and_free_each_row_once()
    {
        var nodeB = await OpenNodeAsync();
        await FillAsync("size/s", 20);

        var passes = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
            await (i % 2 == 0 ? NodeA : nodeB).ApplyRetentionAsync("size/s", Size, Ct), Ct)));

        // 200 bytes, keep the last 50: the start moves to 150 (an append start) exactly once, by one pass.
        Assert.All(passes, p => Assert.Equal(At(150), p.RetainedStart));
        var trimmed = Assert.Single(passes, p => p.Status == RetentionStatus.Trimmed);
        Assert.Equal(150, trimmed.BytesDropped);
        Assert.Equal(150, passes.Sum(p => p.BytesFreed));
        Assert.Equal(5, await DataRowsAsync("size/s"));
        foreach (var node in Nodes)
        {
            var read = await node.ReadAsync("size/s", new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);
            Assert.Equal((ReadStatus.Ok, At(150), Appends(15, 20)), (read.Status, read.Start, TextOf(read)));
        }

        // Idempotent: another pass on either node changes nothing.
        Assert.Equal(new RetentionResult(RetentionStatus.Unchanged, At(150)), await nodeB.ApplyRetentionAsync("size/s", Size, Ct));
    }

    [Fact]
    public async Task A_node_reads_the_start_another_node_moved_on_its_next_read()
    {
        var nodeB = await OpenNodeAsync();
        await FillAsync("size/s", 20);
        // Node B has read the stream before: nothing it keeps may serve the old start afterwards.
        Assert.Equal(At(0), (await nodeB.GetMetadataAsync("size/s", Ct)).Info!.RetainedStart);
        Assert.Equal(ReadStatus.Ok, (await nodeB.ReadAsync("size/s", new ReadRequest(OffsetQuery.At(At(0)), Unlimited), Ct)).Status);

        Assert.Equal(RetentionStatus.Trimmed, (await NodeA.ApplyRetentionAsync("size/s", Size, Ct)).Status);

        Assert.Equal(At(150), (await nodeB.GetMetadataAsync("size/s", Ct)).Info!.RetainedStart);
        var below = await nodeB.ReadAsync("size/s", new ReadRequest(OffsetQuery.At(At(0)), Unlimited), Ct);
        Assert.Equal((ReadStatus.BeforeRetainedStart, At(150)), (below.Status, below.Info!.RetainedStart));
        var at = await nodeB.ReadAsync("size/s", new ReadRequest(OffsetQuery.At(At(150)), Unlimited), Ct);
        Assert.Equal((ReadStatus.Ok, Appends(15, 20), At(150)), (at.Status, TextOf(at), at.Info!.RetainedStart));
    }

    [Fact]
    public async Task A_read_racing_a_trim_answers_410_never_a_body_with_a_hole()
    {
        var nodeB = await OpenNodeAsync();
        await FillAsync("size/s", 20);
        // Node A trims (start published, rows freed) after node B read the row and its start, before B reads data rows.
        nodeB.ReadResolvedHook = TrimOnceAsync;

        var read = await nodeB.ReadAsync("size/s", new ReadRequest(OffsetQuery.At(At(0)), Unlimited), Ct);

        Assert.Equal((ReadStatus.BeforeRetainedStart, At(150)), (read.Status, read.Info!.RetainedStart));
        Assert.Equal(5, await DataRowsAsync("size/s"));

        async Task TrimOnceAsync()
        {
            nodeB.ReadResolvedHook = null;
            Assert.Equal(RetentionStatus.Trimmed, (await NodeA.ApplyRetentionAsync("size/s", Size, Ct)).Status);
        }
    }

    [Fact]
    public async Task A_read_from_the_start_racing_a_trim_serves_from_the_new_start()
    {
        var nodeB = await OpenNodeAsync();
        await FillAsync("size/s", 20);
        await NodeA.ApplyRetentionAsync("size/s", Size, Ct);
        await FillAsync("size/s", 10, first: 20);
        nodeB.ReadResolvedHook = async () =>
        {
            nodeB.ReadResolvedHook = null;
            Assert.Equal(At(250), (await NodeA.ApplyRetentionAsync("size/s", Size, Ct)).RetainedStart);
        };

        var read = await nodeB.ReadAsync("size/s", new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);

        Assert.Equal((ReadStatus.Ok, At(250), Appends(25, 30), At(250)), (read.Status, read.Start, TextOf(read), read.Info!.RetainedStart));
    }

    [Fact]
    public async Task A_fork_read_racing_its_sources_trim_on_another_node_serves_from_the_new_effective_start()
    {
        var nodeB = await OpenNodeAsync();
        await FillAsync("size/src", 20);
        await CreatedAsync("plain/fork", fork: ForkOf("size/src"));
        await AppendedAsync("plain/fork", "own");
        nodeB.ReadResolvedHook = async () =>
        {
            nodeB.ReadResolvedHook = null;
            Assert.Equal(At(150), (await NodeA.ApplyRetentionAsync("size/src", Size, Ct)).RetainedStart);
        };

        var read = await nodeB.ReadAsync("plain/fork", new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);

        Assert.Equal((ReadStatus.Ok, At(150), Appends(15, 20) + "own", At(150)), (read.Status, read.Start, TextOf(read), read.Info!.RetainedStart));
    }

    [Fact]
    public async Task A_json_offset_whose_message_was_freed_by_a_racing_trim_answers_410_not_unaligned()
    {
        var nodeB = await OpenNodeAsync();
        await CreatedAsync("size/j", Json);
        for (var i = 0; i < 10; i++)
        {
            await AppendedAsync("size/j", $"\"m{i:D7}\"", Json); // stored with its separator: 11 bytes per message
        }
        nodeB.ReadResolvedHook = async () =>
        {
            nodeB.ReadResolvedHook = null;
            // The last 50 of 110 bytes start inside the message at 55: the start rounds up to the next message, 66.
            Assert.Equal(At(66), (await NodeA.ApplyRetentionAsync("size/j", Size, Ct)).RetainedStart);
        };

        var read = await nodeB.ReadAsync("size/j", new ReadRequest(OffsetQuery.At(At(22)), Unlimited), Ct);

        Assert.Equal((ReadStatus.BeforeRetainedStart, At(66)), (read.Status, read.Info!.RetainedStart));
    }

    [Fact]
    public async Task Rows_missing_at_or_above_the_retained_start_fail_the_read_instead_of_serving_a_gap()
    {
        await FillAsync("plain/s", 5);
        await ScalarAsync<int>(
            "WITH d AS (DELETE FROM {s}.ds_data WHERE start_pos = 20 AND stream_id = (SELECT id FROM {s}.ds_streams WHERE name = 'plain/s') RETURNING 1) SELECT count(*)::int FROM d");

        Assert.Equal(ReadStatus.Corrupt, (await ReadAsync("plain/s", 20)).Status);
        Assert.Equal(ReadStatus.Corrupt, (await ReadFromStartAsync("plain/s")).Status);
    }

    [Fact]
    public async Task Age_retention_drops_by_the_append_times_every_node_recorded()
    {
        var nodeB = await OpenNodeAsync();
        var start = Time.GetUtcNow();
        await CreatedAsync("age/s");
        await AppendedAsync("age/s", "a"); // [0, 1) at start
        Time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(AppendStatus.Appended, (await nodeB.AppendAsync("age/s", new AppendRequest { Body = Bytes("b"), ContentType = TextPlain }, Ct)).Status);
        Time.Advance(TimeSpan.FromMinutes(10));
        await AppendedAsync("age/s", "c"); // [2, 3) at +20 min

        Time.Advance(TimeSpan.FromMinutes(45)); // +65 min: only "a" is an hour old... but its sample says nothing below 0
        Assert.Equal(RetentionStatus.Unchanged, (await nodeB.ApplyRetentionAsync("age/s", Age, Ct)).Status);
        Time.Advance(TimeSpan.FromMinutes(5)); // +70 min: everything below "b" (appended at +10) is old
        Assert.Equal(At(1), (await nodeB.ApplyRetentionAsync("age/s", Age, Ct)).RetainedStart);
        Time.Advance(TimeSpan.FromMinutes(10)); // +80 min: the last append is old: everything goes
        Assert.Equal(At(3), (await NodeA.ApplyRetentionAsync("age/s", Age, Ct)).RetainedStart);

        Assert.Equal(0, await DataRowsAsync("age/s"));
        Assert.Equal(0L, await ScalarAsync<long>("SELECT count(*) FROM {s}.ds_append_times"));
        Assert.Equal(start.AddMinutes(20).UtcTicks, await ScalarAsync<long>("SELECT last_append_ticks FROM {s}.ds_streams WHERE name = 'age/s'"));
    }

    [Fact]
    public async Task Appends_to_streams_without_an_age_policy_record_no_times()
    {
        await FillAsync("size/s", 3);
        await FillAsync("plain/s", 3);
        await FillAsync("age/s", 3);

        // One sample for age/s (the appends were less than 36 s apart), nothing for the others.
        Assert.Equal(1L, await ScalarAsync<long>("SELECT count(*) FROM {s}.ds_append_times"));
        Assert.Equal(2L, await ScalarAsync<long>("SELECT count(*) FROM {s}.ds_streams WHERE last_append_ticks IS NULL"));
    }

    [Fact]
    public async Task A_fork_reads_410_for_the_inherited_range_its_source_dropped()
    {
        await FillAsync("size/src", 20);
        await CreatedAsync("plain/fork", fork: ForkOf("size/src", 100));
        await AppendedAsync("plain/fork", "forked");

        Assert.Equal(At(150), (await NodeA.ApplyRetentionAsync("size/src", Size, Ct)).RetainedStart);

        // The fork's effective start is min(fork position, source's start) = 100: its inherited part is gone.
        Assert.Equal(At(100), (await InfoAsync("plain/fork")).RetainedStart);
        Assert.Equal(ReadStatus.BeforeRetainedStart, (await ReadAsync("plain/fork", 50)).Status);
        var read = await ReadFromStartAsync("plain/fork");
        Assert.Equal((At(100), "forked"), (read.Start, TextOf(read)));
    }

    [Fact]
    public async Task A_json_stream_can_be_forked_below_its_retained_start_and_the_fork_inherits_nothing_readable()
    {
        await CreatedAsync("size/j", Json);
        for (var i = 0; i < 10; i++)
        {
            await AppendedAsync("size/j", $"\"m{i:D7}\"", Json);
        }
        Assert.Equal(At(66), (await NodeA.ApplyRetentionAsync("size/j", Size, Ct)).RetainedStart);

        // 22 starts a message that is gone; 11 + one message lands on 22 as well (the dropped range counts as one message).
        await CreatedAsync("plain/f1", Json, fork: ForkOf("size/j", 22));
        await CreatedAsync("plain/f2", Json, fork: ForkOf("size/j", 11, subOffset: 1));
        await CreatedAsync("plain/f3", Json, fork: ForkOf("size/j", 11, subOffset: 2));
        await AppendedAsync("plain/f1", "\"own\"", Json);

        Assert.Equal(At(22), (await InfoAsync("plain/f1")).RetainedStart);
        var own = await ReadFromStartAsync("plain/f1");
        Assert.Equal((At(22), "[\"own\"]"), (own.Start, JsonOf(own)));
        Assert.Equal(At(66), (await InfoAsync("plain/f2")).Tail);
        var inherited = await ReadFromStartAsync("plain/f3");
        Assert.Equal((At(66), "[\"m0000006\"]"), (inherited.Start, JsonOf(inherited)));
    }

    /// <summary>
    /// A one-off measurement, not a check of speed (run by hand; numbers in docs/postgres.md): 100 MiB in 1,600 appends of
    /// 64 KiB of random bytes, trimmed to the last 10 MiB, with the size of <c>ds_data</c> (heap, TOAST and index)
    /// before, after the trim, after <c>VACUUM</c>, after appending 90 MiB more, and after <c>VACUUM FULL</c>:
    /// <c>DS_MEASURE=1 dotnet test tests/DurableStreams.Postgres.Tests -c Release --filter "FullyQualifiedName~Measure" --logger "console;verbosity=detailed"</c>.
    /// </summary>
    [Fact]
    [Trait("Category", "Measurement")]
    public async Task Measure_the_table_size_a_trim_gives_back()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("DS_MEASURE") == "1", "Set DS_MEASURE=1 to measure.");
        var output = TestContext.Current.TestOutputHelper!;
        var chunk = new byte[64 << 10];
        async Task FillBigAsync(int appends)
        {
            for (var i = 0; i < appends; i++)
            {
                Random.Shared.NextBytes(chunk);
                Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("size/big", chunk, Binary)).Status);
            }
        }
        await CreatedAsync("size/big", Binary);
        await FillBigAsync(1600);
        Task<long> SizeAsync() => ScalarAsync<long>("SELECT pg_total_relation_size('{s}.ds_data')");
        async Task VacuumAsync(string how)
        {
            await using var dataSource = NpgsqlDataSource.Create(Server.ConnectionString);
            await using var command = dataSource.CreateCommand($"VACUUM {how} {Schema}.ds_data");
            await command.ExecuteNonQueryAsync(Ct);
        }
        await VacuumAsync("");
        var before = await SizeAsync();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var pass = await NodeA.ApplyRetentionAsync("size/big", new RetentionPolicy(null, 10L << 20), Ct);
        var took = watch.Elapsed;
        var afterTrim = await SizeAsync();
        await VacuumAsync("");
        var afterVacuum = await SizeAsync();
        // The freed space is reused: as much again as was dropped fits in the same files.
        await FillBigAsync(1440);
        var refilled = await SizeAsync();
        await NodeA.ApplyRetentionAsync("size/big", new RetentionPolicy(null, 10L << 20), Ct);
        await VacuumAsync("FULL");
        var afterFull = await SizeAsync();
        output.WriteLine($"trim: dropped {pass.BytesDropped:N0} B, freed {pass.BytesFreed:N0} B in {took.TotalMilliseconds:N0} ms, rows left {await DataRowsAsync("size/big")}");
        output.WriteLine($"ds_data total size: before {before:N0} B, after the trim {afterTrim:N0} B, after VACUUM {afterVacuum:N0} B, after appending 90 MiB more {refilled:N0} B, after trimming again and VACUUM FULL {afterFull:N0} B");
        Assert.Equal(pass.BytesDropped, pass.BytesFreed);
    }

    /// <summary>
    /// A one-off measurement (run as above): sequential 100-byte appends to a stream without a policy, one with a size
    /// policy and one with an age policy (which also records append times), in rounds of 500 in rotating order, so the
    /// machine's noise falls on all three alike.
    /// </summary>
    [Fact]
    [Trait("Category", "Measurement")]
    public async Task Measure_the_append_rate_with_and_without_an_age_policy()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("DS_MEASURE") == "1", "Set DS_MEASURE=1 to measure.");
        var output = TestContext.Current.TestOutputHelper!;
        string[] names = ["plain/s", "size/s", "age/s"];
        var elapsed = new TimeSpan[names.Length];
        var body = new string('x', 100);
        foreach (var name in names)
        {
            await CreatedAsync(name);
            await AppendedAsync(name, body); // warm the connection's prepared statements
        }
        for (var round = 0; round < 6; round++)
        {
            for (var k = 0; k < names.Length; k++)
            {
                var n = (round + k) % names.Length; // each stream goes first in two of the six rounds
                var watch = System.Diagnostics.Stopwatch.StartNew();
                for (var i = 0; i < 500; i++)
                {
                    await AppendedAsync(names[n], body);
                    Time.Advance(TimeSpan.FromMilliseconds(10)); // age/s takes a sample every 36 s: one per 3,600 appends
                }
                elapsed[n] += watch.Elapsed;
            }
        }
        for (var n = 0; n < names.Length; n++)
        {
            output.WriteLine($"{names[n]}: {3000 / elapsed[n].TotalSeconds:N0} appends/s");
        }
    }

    [Fact]
    public async Task A_schema_newer_than_this_build_is_refused_with_both_versions()
    {
        await ScalarAsync<int>("WITH u AS (UPDATE {s}.ds_schema_version SET version = 99 RETURNING 1) SELECT count(*)::int FROM u");

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => OpenNodeAsync());

        Assert.Contains($"at version 99; this build knows up to {PostgresSchema.CurrentVersion}", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_version_3_database_upgrades_and_then_trims_its_streams()
    {
        var database = $"ret_v1_{Environment.ProcessId}_{Guid.NewGuid():N}";
        var connection = await Server.RestoreFixtureAsync("postgres-v1.sql", database);
        Time.SetUtcNow(StoreFormatFixture.OpenAt);
        var node = await OpenNodeAsync(connection, "fixture_v1");

        // json keeps its last message ("three" and its separator: 8 bytes); src (one 6-byte append) drops all of it, and the fork of src at 3
        // then starts at 3.
        Assert.Equal(RetentionStatus.Trimmed, (await node.ApplyRetentionAsync("json", new RetentionPolicy(null, 8), Ct)).Status);
        var json = await node.ReadAsync("json", new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);
        Assert.Equal((ReadStatus.Ok, At(23), "[\"three\"]"), (json.Status, json.Start, JsonOf(json)));
        Assert.Equal(At(6), (await node.ApplyRetentionAsync("src", new RetentionPolicy(null, 2), Ct)).RetainedStart);
        var fork = await node.ReadAsync("fork", new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);
        Assert.Equal((At(3), "XYZ"), (fork.Start, TextOf(fork)));
        Assert.Equal(ReadStatus.BeforeRetainedStart, (await node.ReadAsync("fork", new ReadRequest(OffsetQuery.At(At(0)), Unlimited), Ct)).Status);
    }
}
