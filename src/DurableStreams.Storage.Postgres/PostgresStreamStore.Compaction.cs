using DurableStreams.Core.Compaction;
using DurableStreams.Protocol;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

/// <summary>
/// State-Protocol compaction (issue 18): one transaction locks the stream's row, checks the commit with
/// <see cref="CompactionRules.CheckCommit"/>, deletes the data rows below the compacted end, inserts the snapshot's rows
/// so that they end there, and moves the retained start, generation and compacted end. PostgreSQL makes it atomic: a
/// crash or a lost connection before COMMIT leaves the old prefix and the old row, after it the whole snapshot.
/// </summary>
public sealed partial class PostgresStreamStore : IStreamCompaction
{
    /// <summary>Test hook: runs inside the compaction transaction after its writes, before COMMIT.</summary>
    internal Func<Task>? CompactionWrittenHook { get; set; }

    /// <inheritdoc/>
    public async ValueTask<CompactionCommitResult> CommitCompactionAsync(string name, CompactionCommit commit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commit);
        return await RunAsync(connection => CommitCompactionInAsync(connection, name, commit, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private async Task<CompactionCommitResult> CommitCompactionInAsync(NpgsqlConnection connection, string name, CompactionCommit commit, CancellationToken ct)
    {
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        var row = await LockByNameAsync(connection, name, null, ct).ConfigureAwait(false);
        if (row is null || row.State != StreamRow.Live || row.IsExpired(NowTicks))
        {
            // Expiry is left to the sweeper and the next access, which raise it.
            return new CompactionCommitResult(CompactionCommitStatus.NotFound);
        }
        var isFork = row.SourceId is not null;
        // A fork or a non-JSON stream is refused before anything is asked of its rows; the end is a row start (rows never
        // span two messages), or the tail.
        var isBoundary = !row.IsJson || isFork || commit.End == row.Tail || (commit.End < row.Tail && commit.End > row.RetainedStart
            && await IsBoundaryAsync(connection, [new ChainLevel(row.Id, row.BasePosition, row.Tail, row.RetainedStart, row.OffsetGeneration, row.CompactedEnd)], commit.End, ct).ConfigureAwait(false));
        var status = CompactionRules.CheckCommit(commit, row.IsJson, isFork, row.RetainedStart, row.OffsetGeneration, row.Tail, isBoundary);
        if (status != CompactionCommitStatus.Committed)
        {
            return new CompactionCommitResult(status);
        }

        var start = commit.SnapshotStart;
        var messages = new List<ReadOnlyMemory<byte>>(commit.MessageLengths.Count);
        var at = 0;
        foreach (var length in commit.MessageLengths)
        {
            messages.Add(commit.Snapshot.Slice(at, length));
            at += length;
        }
        long deleted;
        await using (var batch = new NpgsqlBatch(connection, tx))
        {
            // Every row below the end goes: the replaced prefix and any rows below the retained start that retention has
            // not freed yet. The snapshot's rows then take [start, end), split as an append's are.
            var delete = new NpgsqlBatchCommand(
                $"""
                WITH gone AS (DELETE FROM {_s}.ds_data WHERE stream_id = @id AND start_pos < @end RETURNING end_pos - start_pos AS length)
                SELECT coalesce(sum(length), 0)::bigint FROM gone
                """);
            delete.Parameters.AddWithValue("id", row.Id);
            delete.Parameters.AddWithValue("end", commit.End);
            batch.BatchCommands.Add(delete);
            var end = AddDataInsert(batch, row.Id, start, messages, isJson: true);
            if (end != commit.End)
            {
                throw new InvalidOperationException($"The snapshot of '{name}' ends at {end}, not at {commit.End}.");
            }
            var update = new NpgsqlBatchCommand(
                $"UPDATE {_s}.ds_streams SET retained_start = @start, offset_generation = offset_generation + 1, compacted_end = @end WHERE id = @id");
            update.Parameters.AddWithValue("start", start);
            update.Parameters.AddWithValue("end", commit.End);
            update.Parameters.AddWithValue("id", row.Id);
            batch.BatchCommands.Add(update);
            await using var reader = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            deleted = reader.GetInt64(0);
        }
        if (CompactionWrittenHook is { } hook)
        {
            await hook().ConfigureAwait(false);
        }
        await tx.CommitAsync(ct).ConfigureAwait(false);

        var generation = row.OffsetGeneration + 1;
        var info = row.ToInfo(start) with
        {
            Tail = new StreamOffset(row.Tail) { Generation = generation },
            RetainedStart = new StreamOffset(start) { Generation = generation },
            OffsetGeneration = generation,
            CompactedEnd = new StreamOffset(commit.End) { Generation = generation },
        };
        return new CompactionCommitResult(CompactionCommitStatus.Committed, info, Math.Max(0, deleted - commit.Snapshot.Length));
    }
}
