using System.Text;
using DurableStreams.Core;
using DurableStreams.Core.Compaction;
using DurableStreams.Protocol;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// State-Protocol compaction in the PostgreSQL store beyond the shared contract: several nodes on one database, reads
/// racing a compaction committed by another node, a compaction that dies before COMMIT, forks of a compacted source,
/// what is stored, and the schema migration to version 5.
/// </summary>
public sealed class PostgresCompactionTests(PostgresServer server) : SharedSchemaNodesTestBase(server, "cmp")
{
    private const string Name = "state/s";
    private static string Change(string key, int value, string operation = "upsert") =>
        "{\"type\":\"row\",\"key\":\"" + key + "\",\"value\":{\"n\":" + value.ToString(System.Globalization.CultureInfo.InvariantCulture) + "},\"headers\":{\"operation\":\"" + operation + "\"}}";

    /// <summary>
    /// A state stream of keys k0..k4, each upserted twice, then k0 deleted (11 messages); returns the offset of the third
    /// message (into the prefix a compaction replaces) and the tail.
    /// </summary>
    private async Task<(StreamOffset Inside, StreamOffset Tail)> FillStateAsync(string name = Name)
    {
        await CreatedAsync(name, Json);
        var inside = default(StreamOffset);
        var n = 0;
        for (var round = 0; round < 2; round++)
        {
            for (var k = 0; k < 5; k++)
            {
                var appended = await AppendAsync(name, Change($"k{k}", round * 10 + k), Json);
                Assert.Equal(AppendStatus.Appended, appended.Status);
                if (++n == 2)
                {
                    inside = appended.NextOffset;
                }
            }
        }
        var tail = await AppendAsync(name, Change("k0", 0, "delete"), Json);
        Assert.Equal(AppendStatus.Appended, tail.Status);
        return (inside, tail.NextOffset);
    }

    /// <summary>The snapshot of <see cref="FillStateAsync"/>'s history: the markers around the latest k1..k4.</summary>
    private static string Snapshot() =>
        "[" + string.Join(",", [.. new[] { """{"headers":{"control":"snapshot-start"}}""" },
            .. Enumerable.Range(1, 4).Select(k => Change($"k{k}", 10 + k)), """{"headers":{"control":"snapshot-end"}}"""]) + "]";

    private static async Task<CompactionOutcome> CompactAsync(IStreamStore node, string name = Name) =>
        await StateCompactor.CompactAsync(node, name, CompactionPolicy.State, force: true, Ct);

    [Fact]
    public async Task A_compaction_on_one_node_is_seen_by_a_reader_on_another()
    {
        var nodeB = await OpenNodeAsync();
        var (inside, end) = await FillStateAsync();

        var outcome = await CompactAsync(NodeA);
        Assert.Equal(CompactionStatus.Compacted, outcome.Status);
        var start = end.Position - outcome.BytesAfter;
        var after = await nodeB.AppendAsync(Name, new AppendRequest { ContentType = Json, Body = Bytes(Change("k9", 9)) }, Ct);
        Assert.Equal((AppendStatus.Appended, 1L), (after.Status, after.NextOffset.Generation));

        // Node B: an offset of generation 0 inside the replaced prefix is gone (410, restart from -1) ...
        var gone = await nodeB.ReadAsync(Name, new ReadRequest(OffsetQuery.At(inside), Unlimited), Ct);
        Assert.Equal((ReadStatus.BeforeRetainedStart, start, 1L), (gone.Status, gone.Info!.RetainedStart.Position, gone.Info.RetainedStart.Generation));
        // ... -1 is the snapshot (generation 1 offsets), then the rest ...
        var fromStart = await nodeB.ReadAsync(Name, new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);
        Assert.Equal((ReadStatus.Ok, start, 1L, after.NextOffset.Position, 1L), (fromStart.Status, fromStart.Start.Position, fromStart.Start.Generation, fromStart.Next.Position, fromStart.Next.Generation));
        Assert.Equal(Snapshot()[..^1] + "," + Change("k9", 9) + "]", JsonOf(fromStart));
        // ... a reader that held the old tail (generation 0, at the compacted end) is unaffected ...
        var kept = await nodeB.ReadAsync(Name, new ReadRequest(OffsetQuery.At(end), Unlimited), Ct);
        Assert.Equal((ReadStatus.Ok, "[" + Change("k9", 9) + "]", 1L), (kept.Status, JsonOf(kept), kept.Next.Generation));
        // ... and a generation no node issued is refused.
        var unissued = await nodeB.ReadAsync(Name, new ReadRequest(OffsetQuery.At(new StreamOffset(end.Position) { Generation = 2 }), Unlimited), Ct);
        Assert.Equal(ReadStatus.OffsetNotIssued, unissued.Status);

        var info = (await nodeB.GetMetadataAsync(Name, Ct)).Info!;
        Assert.Equal((1L, end.Position, start, 1L, 1L, 1L), (info.OffsetGeneration, info.CompactedEnd.Position, info.RetainedStart.Position, info.Tail.Generation, info.RetainedStart.Generation, info.CompactedEnd.Generation));
        // Stored: six snapshot rows (one per message, as appends store them) ending at the compacted end, then the append; nothing below.
        Assert.Equal(7L, await ScalarAsync<long>("SELECT count(*) FROM {s}.ds_data d JOIN {s}.ds_streams s ON s.id = d.stream_id WHERE s.name = @n", ("n", Name)));
        Assert.Equal(start, await ScalarAsync<long>("SELECT min(start_pos) FROM {s}.ds_data d JOIN {s}.ds_streams s ON s.id = d.stream_id WHERE s.name = @n", ("n", Name)));
    }

    [Fact]
    public async Task A_read_racing_a_compaction_on_another_node_answers_in_the_new_generation()
    {
        var nodeB = await OpenNodeAsync();
        var (_, end) = await FillStateAsync();
        // The prefix ends with a message the snapshot keeps (not a State-Protocol message) as long as the snapshot-end
        // marker, so its old offset is also a message start in the snapshot: where the snapshot's last message starts.
        var unknown = "\"" + new string('x', StateSnapshotBuilder.SnapshotEndMessage.Length - 3) + "\"";
        Assert.Equal(AppendStatus.Appended, (await AppendAsync(Name, unknown, Json)).Status);
        // Node A commits a compaction after node B read the row (generation 0) and resolved its offset in it, before B
        // reads data rows.
        nodeB.ReadResolvedHook = CompactOnceAsync;

        var gone = await nodeB.ReadAsync(Name, new ReadRequest(OffsetQuery.At(end), Unlimited), Ct);

        // Never the snapshot-end marker that now sits at that position: the offset is of the replaced prefix.
        Assert.Equal((ReadStatus.BeforeRetainedStart, 1L), (gone.Status, gone.Info!.OffsetGeneration));
        var fresh = await nodeB.ReadAsync(Name, new ReadRequest(OffsetQuery.At(new StreamOffset(end.Position) { Generation = 1 }), Unlimited), Ct);
        Assert.Equal("[" + Encoding.UTF8.GetString(StateSnapshotBuilder.SnapshotEndMessage.Span)[..^1] + "]", JsonOf(fresh));

        // The same race for a read from -1: the snapshot, in generation 1 (never the old prefix's rows, nor a mix).
        await FillStateAsync("state/t");
        nodeB.ReadResolvedHook = async () =>
        {
            nodeB.ReadResolvedHook = null;
            Assert.Equal(CompactionStatus.Compacted, (await CompactAsync(NodeA, "state/t")).Status);
        };
        var fromStart = await nodeB.ReadAsync("state/t", new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);
        Assert.Equal((ReadStatus.Ok, Snapshot(), 1L, 1L), (fromStart.Status, JsonOf(fromStart), fromStart.Start.Generation, fromStart.Next.Generation));

        async Task CompactOnceAsync()
        {
            nodeB.ReadResolvedHook = null;
            Assert.Equal(CompactionStatus.Compacted, (await CompactAsync(NodeA)).Status);
        }
    }

    [Fact]
    public async Task A_compaction_that_fails_before_commit_leaves_the_old_prefix_offsets_and_generation()
    {
        var (inside, end) = await FillStateAsync();
        var before = await ReadFromStartAsync(Name);
        NodeA.CompactionWrittenHook = () => throw new InvalidOperationException("simulated crash between the writes and COMMIT");

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await CompactAsync(NodeA));

        NodeA.CompactionWrittenHook = null;
        var info = await InfoAsync(Name);
        Assert.Equal((0L, 0L, 0L, end.Position), (info.OffsetGeneration, info.CompactedEnd.Position, info.RetainedStart.Position, info.Tail.Position));
        var again = await ReadFromStartAsync(Name);
        Assert.Equal(JsonOf(before), JsonOf(again));
        Assert.Equal(ReadStatus.Ok, (await ReadAsync(Name, OffsetQuery.At(inside))).Status);
        Assert.Equal(11L, await ScalarAsync<long>("SELECT count(*) FROM {s}.ds_data d JOIN {s}.ds_streams s ON s.id = d.stream_id WHERE s.name = @n", ("n", Name)));
        // The next attempt commits.
        Assert.Equal(CompactionStatus.Compacted, (await CompactAsync(NodeA)).Status);
        Assert.Equal(Snapshot(), JsonOf(await ReadFromStartAsync(Name)));
    }

    [Fact]
    public async Task A_fork_never_reads_its_compacted_source_below_the_compacted_end()
    {
        var nodeB = await OpenNodeAsync();
        var (inside, end) = await FillStateAsync();
        // An older fork inheriting the whole prefix, created before the compaction.
        await CreatedAsync("state/fork", Json, fork: ForkOf(Name));
        Assert.Equal(CompactionStatus.Compacted, (await CompactAsync(NodeA)).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("state/fork", Change("own", 1), Json)).Status);

        // Its inherited range lies below the source's compacted end: 410 there, -1 starts at the compacted end.
        var gone = await nodeB.ReadAsync("state/fork", new ReadRequest(OffsetQuery.At(inside), Unlimited), Ct);
        Assert.Equal((ReadStatus.BeforeRetainedStart, end.Position), (gone.Status, gone.Info!.RetainedStart.Position));
        var fromStart = await nodeB.ReadAsync("state/fork", new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);
        Assert.Equal((end.Position, "[" + Change("own", 1) + "]"), (fromStart.Start.Position, JsonOf(fromStart)));

        // A fork created now at an old offset inside the compacted range is accepted and inherits nothing there.
        var late = await nodeB.CreateAsync("state/late", new CreateStreamRequest { ContentType = Json, Fork = ForkOf(Name, inside.Position) }, Ct);
        Assert.Equal(CreateStatus.Created, late.Status);
        var lateRead = await nodeB.ReadAsync("state/late", new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);
        Assert.Equal((ReadStatus.Ok, "[]"), (lateRead.Status, JsonOf(lateRead)));
        // A fork offset of a generation the source never issued is refused; the fork itself is not compactable.
        var unissued = await nodeB.CreateAsync("state/bad", new CreateStreamRequest { ContentType = Json, Fork = new ForkRequest(Name, new StreamOffset(end.Position) { Generation = 5 }, 0) }, Ct);
        Assert.Equal(CreateStatus.ForkOffsetNotIssued, unissued.Status);
        var snapshot = StateSnapshotBuilder.SnapshotStartMessage.ToArray().Concat(StateSnapshotBuilder.SnapshotEndMessage.ToArray()).ToArray();
        var commit = new CompactionCommit(end.Position, 0, end.Position + 40, snapshot, [StateSnapshotBuilder.SnapshotStartMessage.Length, StateSnapshotBuilder.SnapshotEndMessage.Length]);
        Assert.Equal(CompactionCommitStatus.NotApplicable, (await NodeA.CommitCompactionAsync("state/fork", commit, Ct)).Status);
    }

    [Fact]
    public async Task A_commit_built_against_a_moved_start_or_generation_changes_nothing()
    {
        var (_, end) = await FillStateAsync();
        var snapshot = StateSnapshotBuilder.SnapshotStartMessage.ToArray().Concat(StateSnapshotBuilder.SnapshotEndMessage.ToArray()).ToArray();
        int[] lengths = [StateSnapshotBuilder.SnapshotStartMessage.Length, StateSnapshotBuilder.SnapshotEndMessage.Length];

        Assert.Equal(CompactionCommitStatus.Conflict, (await NodeA.CommitCompactionAsync(Name, new CompactionCommit(0, 1, end.Position, snapshot, lengths), Ct)).Status);
        Assert.Equal(CompactionCommitStatus.Conflict, (await NodeA.CommitCompactionAsync(Name, new CompactionCommit(5, 0, end.Position, snapshot, lengths), Ct)).Status);
        // An end that splits a message.
        Assert.Equal(CompactionCommitStatus.Invalid, (await NodeA.CommitCompactionAsync(Name, new CompactionCommit(0, 0, end.Position - 3, snapshot, lengths), Ct)).Status);
        Assert.Equal(CompactionCommitStatus.NotFound, (await NodeA.CommitCompactionAsync("state/none", new CompactionCommit(0, 0, end.Position, snapshot, lengths), Ct)).Status);

        var info = await InfoAsync(Name);
        Assert.Equal((0L, 0L, 0L), (info.OffsetGeneration, info.CompactedEnd.Position, info.RetainedStart.Position));
        // Two nodes committing the same snapshot at once: one wins, the other conflicts.
        var nodeB = await OpenNodeAsync();
        var both = await Task.WhenAll(new[] { NodeA, nodeB }.Select(node => Task.Run(async () =>
            (await node.CommitCompactionAsync(Name, new CompactionCommit(0, 0, end.Position, snapshot, lengths), Ct)).Status, Ct)));
        Assert.Equal([CompactionCommitStatus.Committed, CompactionCommitStatus.Conflict], both.Order());
        Assert.Equal(1L, (await InfoAsync(Name)).OffsetGeneration);
    }

    [Fact]
    public async Task A_version_4_database_upgrades_to_generation_0_and_then_compacts()
    {
        var database = $"cmp_v2_{Environment.ProcessId}_{Guid.NewGuid():N}";
        var connection = await Server.RestoreFixtureAsync("postgres-v2.sql", database);
        Time.SetUtcNow(StoreFormatFixture.OpenAt);
        var node = await OpenNodeAsync(connection, "fixture_v2");

        // Every stream written before version 5 is generation 0 with nothing compacted (the trimmed one keeps its start).
        var retained = (await node.GetMetadataAsync("retained", Ct)).Info!;
        Assert.Equal((0L, 0L, 8L), (retained.OffsetGeneration, retained.CompactedEnd.Position, retained.RetainedStart.Position));
        var json = (await node.GetMetadataAsync("json", Ct)).Info!;
        Assert.Equal((0L, 0L), (json.OffsetGeneration, json.CompactedEnd.Position));

        // A state stream in the migrated schema compacts.
        Assert.Equal(CreateStatus.Created, (await node.CreateAsync(Name, new CreateStreamRequest { ContentType = Json }, Ct)).Status);
        for (var i = 0; i < 6; i++)
        {
            Assert.Equal(AppendStatus.Appended, (await node.AppendAsync(Name, new AppendRequest { ContentType = Json, Body = Bytes(Change("k", i)) }, Ct)).Status);
        }
        Assert.Equal(CompactionStatus.Compacted, (await CompactAsync(node)).Status);
        var read = await node.ReadAsync(Name, new ReadRequest(OffsetQuery.Beginning, Unlimited), Ct);
        Assert.Equal((1L, """[{"headers":{"control":"snapshot-start"}},""" + Change("k", 5) + """,{"headers":{"control":"snapshot-end"}}]"""), (read.Start.Generation, JsonOf(read)));
    }
}
