using System.Runtime.CompilerServices;
using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

/// <summary>
/// Retention (issue 18): the retained start is a column of the stream's row, moved under the row lock; rows entirely
/// below it are deleted afterwards, in short statements that lock no stream row, so appends wait only for the start to
/// be published. Every node may run it for every stream at once: the row lock orders the moves, and the deletes skip
/// rows another node is deleting.
/// </summary>
public sealed partial class PostgresStreamStore : IStreamRetention
{
    /// <summary>Rows one delete statement removes (rows are at most <see cref="PostgresStreamStoreOptions.MaxRowBytes"/>).</summary>
    private const int FreeBatchRows = 1000;

    /// <inheritdoc/>
    public async ValueTask<RetentionResult> ApplyRetentionAsync(string name, RetentionPolicy policy, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var (result, id) = await RunAsync(connection => MoveRetainedStartAsync(connection, name, policy, cancellationToken), cancellationToken).ConfigureAwait(false);
        if (id is not { } streamId || result.RetainedStart.Position == 0)
        {
            return result;
        }
        // Published: readers resolve against the new start from here on. Freeing may fail or race another node's; whatever
        // is left below the start is freed by a later pass.
        var freed = await FreeBelowAsync(streamId, result.RetainedStart.Position, cancellationToken).ConfigureAwait(false);
        return result with { BytesFreed = freed };
    }

    /// <summary>
    /// One transaction: lock the stream's row, plan the start with <see cref="RetentionRules.PlanStart"/> from the row's
    /// tail, the stored append times and the stored message boundaries, and write it. Returns the stream's id unless
    /// it was not found.
    /// </summary>
    private async Task<(RetentionResult, long?)> MoveRetainedStartAsync(NpgsqlConnection connection, string name, RetentionPolicy policy, CancellationToken ct)
    {
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        var row = await LockByNameAsync(connection, name, null, ct).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        if (row is null || row.State != StreamRow.Live || row.IsExpired(now.UtcTicks))
        {
            // Expiry is left to the sweeper and the next access, which raise it.
            return (new RetentionResult(RetentionStatus.NotFound), null);
        }
        var current = row.RetainedStart;
        var unchanged = (new RetentionResult(RetentionStatus.Unchanged, new StreamOffset(current) { Generation = row.OffsetGeneration }), (long?)row.Id);
        if (!policy.DropsData || current >= row.Tail)
        {
            return unchanged;
        }
        var times = policy.MaxAge is { } maxAge ? await LoadAppendTimesAsync(connection, row, maxAge, ct).ConfigureAwait(false) : null;

        // The rules are synchronous and ask about one position at most (the cut, when it is inside the stream): ask them
        // once with a probe, read that position's facts from the rows, and ask again with the facts.
        var asked = new StrongBox<long>(-1);
        var planned = RetentionRules.PlanStart(policy, now, current, row.Tail, times, new ProbeBoundaries(asked));
        if (asked.Value >= 0)
        {
            var cut = asked.Value;
            var chain = await LoadChainAsync(connection, row, row.Tail, ct).ConfigureAwait(false);
            // Below the chain's effective start the rows may be gone and nothing is readable: any position there will do.
            var isBoundary = cut < EffectiveStart(chain) || await IsBoundaryAsync(connection, chain, cut, ct).ConfigureAwait(false);
            var next = isBoundary ? cut : await NextBoundaryAsync(connection, chain, cut, ct).ConfigureAwait(false);
            var facts = isBoundary
                ? new KnownBoundaries(null, null, row.Tail, cut)
                : new KnownBoundaries(null, new Dictionary<long, long> { [cut] = next }, row.Tail);
            planned = RetentionRules.PlanStart(policy, now, current, row.Tail, times, facts);
        }
        if (planned <= current)
        {
            return unchanged;
        }
        await using (var update = new NpgsqlCommand($"UPDATE {_s}.ds_streams SET retained_start = @start WHERE id = @id", connection, tx))
        {
            update.Parameters.AddWithValue("start", planned);
            update.Parameters.AddWithValue("id", row.Id);
            await update.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return (new RetentionResult(RetentionStatus.Trimmed, new StreamOffset(planned) { Generation = row.OffsetGeneration }, planned - current), row.Id);
    }

    /// <summary>
    /// Deletes the stream's data rows that lie entirely below <paramref name="start"/>, <see cref="FreeBatchRows"/> per
    /// statement (<c>SKIP LOCKED</c>: rows another node is deleting are its to delete), and the append-time samples
    /// below it. Returns the bytes the deleted rows held.
    /// </summary>
    private async Task<long> FreeBelowAsync(long id, long start, CancellationToken ct)
    {
        var freed = 0L;
        while (true)
        {
            var (rows, bytes) = await RunAsync(async connection =>
            {
                await using var command = new NpgsqlCommand(
                    $"""
                    WITH gone AS (
                        DELETE FROM {_s}.ds_data WHERE stream_id = @id AND start_pos IN (
                            SELECT start_pos FROM {_s}.ds_data WHERE stream_id = @id AND start_pos < @start AND end_pos <= @start
                            ORDER BY start_pos LIMIT {FreeBatchRows} FOR UPDATE SKIP LOCKED)
                        RETURNING end_pos - start_pos AS length)
                    SELECT count(*), coalesce(sum(length), 0)::bigint FROM gone
                    """, connection);
                command.Parameters.AddWithValue("id", id);
                command.Parameters.AddWithValue("start", start);
                await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await reader.ReadAsync(ct).ConfigureAwait(false);
                return (reader.GetInt64(0), reader.GetInt64(1));
            }, ct).ConfigureAwait(false);
            freed += bytes;
            if (rows == 0)
            {
                break;
            }
        }
        await RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"DELETE FROM {_s}.ds_append_times WHERE stream_id = @id AND position < @start", connection);
            command.Parameters.AddWithValue("id", id);
            command.Parameters.AddWithValue("start", start);
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, ct).ConfigureAwait(false);
        return freed;
    }

    /// <summary>The stream's append times as stored: its samples and its last append.</summary>
    private async Task<AppendTimes> LoadAppendTimesAsync(NpgsqlConnection connection, StreamRow row, TimeSpan maxAge, CancellationToken ct)
    {
        var times = new AppendTimes(RetentionRules.SampleInterval(maxAge));
        await using (var command = new NpgsqlCommand($"SELECT position, ticks FROM {_s}.ds_append_times WHERE stream_id = @id ORDER BY position", connection))
        {
            command.Parameters.AddWithValue("id", row.Id);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                times.Restore(new AppendTimes.Sample(reader.GetInt64(0), new DateTimeOffset(reader.GetInt64(1), TimeSpan.Zero)));
            }
        }
        if (row.LastAppendTicks is { } last)
        {
            times.RestoreLastAppend(new DateTimeOffset(last, TimeSpan.Zero));
        }
        return times;
    }

    /// <summary>
    /// How far apart the append-time samples of <paramref name="name"/> are, or null when its policy has no maximum age
    /// (then appends record no time at all). One flag test when no policy is configured.
    /// </summary>
    private TimeSpan? AppendTimesInterval(string name) =>
        _options.Retention.Any && _options.Retention.Resolve(name).MaxAge is { } maxAge ? RetentionRules.SampleInterval(maxAge) : null;

    /// <summary>
    /// Adds to <paramref name="batch"/> the sample (append start, time) of an append, unless the stream's newest sample
    /// is less than <paramref name="interval"/> old (as <see cref="AppendTimes.Record"/> decides, but against the
    /// stored samples, so every node samples one stream alike).
    /// </summary>
    private void AddAppendTimeSample(NpgsqlBatch batch, long id, long position, long nowTicks, TimeSpan interval)
    {
        var sample = new NpgsqlBatchCommand(
            $"""
            INSERT INTO {_s}.ds_append_times (stream_id, position, ticks)
            SELECT @id, @position, @now WHERE NOT EXISTS (
                SELECT 1 FROM (SELECT position, ticks FROM {_s}.ds_append_times WHERE stream_id = @id ORDER BY position DESC LIMIT 1) newest
                WHERE newest.ticks > @now - @interval OR newest.position >= @position)
            """);
        sample.Parameters.AddWithValue("id", id);
        sample.Parameters.AddWithValue("position", position);
        sample.Parameters.AddWithValue("now", nowTicks);
        sample.Parameters.AddWithValue("interval", interval.Ticks);
        batch.BatchCommands.Add(sample);
    }

    /// <summary>Answers every position as a boundary and remembers the one asked (see <see cref="MoveRetainedStartAsync"/>).</summary>
    private readonly struct ProbeBoundaries(StrongBox<long> asked) : IStreamBoundaries
    {
        public bool IsBoundary(long position)
        {
            asked.Value = position;
            return true;
        }

        public long NextBoundary(long position) => position;
    }
}
