using DurableStreams.Core;
using DurableStreams.Core.Compaction;
using DurableStreams.Core.Retention;
using System.Net.Sockets;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

public sealed partial class PostgresStreamStore
{
    private const int MaxAttempts = 5;

    /// <summary>
    /// Runs <paramref name="work"/> on a pooled connection. Deadlocks, serialization failures and a lost race to create
    /// a name are retried; an unreachable or failing server becomes <see cref="StoreUnavailableException"/> (503), and
    /// with several hosts the next command re-checks which one is the read-write primary (<see cref="HostRecheck"/>).
    /// </summary>
    internal async Task<T> RunAsync<T>(Func<NpgsqlConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                return await work(connection).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (attempt < MaxAttempts && ex.SqlState is PostgresErrorCodes.DeadlockDetected
                or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.UniqueViolation)
            {
                // Retry from the top: the transaction was rolled back as a whole.
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested && IsUnavailable(ex))
            {
                _hosts.AfterFailure();
                throw new StoreUnavailableException("PostgreSQL is unavailable: " + ex.Message, ex);
            }
        }
    }

    /// <summary>
    /// True for failures of the database service rather than of the request: connection problems, PostgreSQL's
    /// "connection" (08) and "operator intervention" (57P) classes, transient errors, and a read-only transaction
    /// (25006: the host is a standby or was demoted, as after a failover, so the request must go to the new primary).
    /// </summary>
    private static bool IsUnavailable(Exception ex) => ex switch
    {
        PostgresException { SqlState: PostgresErrorCodes.ReadOnlySqlTransaction } => true,
        PostgresException pg => pg.IsTransient || pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState.StartsWith("57P", StringComparison.Ordinal),
        NpgsqlException => true,
        TimeoutException or SocketException or IOException => true,
        _ => false,
    };

    /// <summary>
    /// Locks the stream's row, then reads the requesting producer's row in a second statement of the same round trip:
    /// under READ COMMITTED that statement takes a fresh snapshot after the lock is held, so it sees the producer state
    /// the previous lock holder committed (a join in the locking statement would not).
    /// </summary>
    private async Task<StreamRow?> LockByNameAsync(NpgsqlConnection connection, string name, string? producerId, CancellationToken ct)
    {
        await using var batch = new NpgsqlBatch(connection);
        var lockRow = new NpgsqlBatchCommand($"SELECT {StreamRow.Columns} FROM {_s}.ds_streams s WHERE s.name = @name AND s.state < 2 FOR UPDATE");
        lockRow.Parameters.AddWithValue("name", name);
        batch.BatchCommands.Add(lockRow);
        if (producerId is not null)
        {
            var producer = new NpgsqlBatchCommand(
                $"SELECT p.epoch, p.last_seq, p.updated_ticks FROM {_s}.ds_producers p JOIN {_s}.ds_streams s ON s.id = p.stream_id WHERE s.name = @name AND s.state < 2 AND p.producer_id = @producer");
            producer.Parameters.AddWithValue("name", name);
            producer.Parameters.AddWithValue("producer", producerId);
            batch.BatchCommands.Add(producer);
        }
        await using var reader = await batch.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            return null;
        }
        var row = StreamRow.Read(reader);
        if (producerId is not null && await reader.NextResultAsync(ct).ConfigureAwait(false) && await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            row.Producer = new ProducerState(reader.GetInt64(0), reader.GetInt64(1), new DateTimeOffset(reader.GetInt64(2), TimeSpan.Zero));
        }
        return row;
    }

    /// <summary>
    /// Finds a live stream without locking it. Soft-deleted is Gone; an expired stream is expired on the spot (in its
    /// own short transaction) and NotFound. <paramref name="touch"/> refreshes the sliding TTL (at most every TTL/10).
    /// </summary>
    private async Task<(StreamRow? Row, ReadStatus Status, bool Expired)> FindAsync(NpgsqlConnection connection, string name, bool touch, CancellationToken ct)
    {
        StreamRow? row;
        await using (var command = new NpgsqlCommand($"SELECT {StreamRow.Columns} FROM {_s}.ds_streams s WHERE s.name = @name AND s.state < 2", connection))
        {
            command.Parameters.AddWithValue("name", name);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            row = await reader.ReadAsync(ct).ConfigureAwait(false) ? StreamRow.Read(reader) : null;
        }
        if (row is null)
        {
            return (null, ReadStatus.NotFound, false);
        }
        if (row.State == StreamRow.SoftDeleted)
        {
            return (null, ReadStatus.Gone, false);
        }
        var now = NowTicks;
        if (row.IsExpired(now))
        {
            await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            var locked = await LockByNameAsync(connection, name, null, ct).ConfigureAwait(false);
            // Expired here only if nobody (the sweeper, another request or node) did it first: that one raised the change.
            var expiredHere = locked is not null && locked.Id == row.Id && locked.State == StreamRow.Live && locked.IsExpired(now);
            if (expiredHere)
            {
                await ExpireAsync(connection, locked!, ct).ConfigureAwait(false);
            }
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return (null, ReadStatus.NotFound, expiredHere);
        }
        if (touch && row.NeedsTouch(now))
        {
            await TouchAsync(connection, row.Id, now, ct).ConfigureAwait(false);
        }
        return (row, ReadStatus.Ok, false);
    }

    private async Task TouchAsync(NpgsqlConnection connection, long id, long now, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand($"UPDATE {_s}.ds_streams SET accessed_ticks = @now WHERE id = @id AND accessed_ticks < @now", connection);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("id", id);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task SetStateAsync(NpgsqlConnection connection, long id, short state, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand($"UPDATE {_s}.ds_streams SET state = @state WHERE id = @id", connection);
        command.Parameters.AddWithValue("state", state);
        command.Parameters.AddWithValue("id", id);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Expires a locked live row: absent to clients at once (its name can be reused); if forks still read through it,
    /// the row and its data stay until the last one lets go.
    /// </summary>
    private async Task ExpireAsync(NpgsqlConnection connection, StreamRow row, CancellationToken ct)
    {
        if (row.RefCount > 0)
        {
            await SetStateAsync(connection, row.Id, StreamRow.ExpiredRetained, ct).ConfigureAwait(false);
        }
        else
        {
            await RemoveAsync(connection, row, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Deletes a row (its data and producers cascade) and walks up its fork chain, deleting each source that is already
    /// deleted or expired and just lost its last fork. Locks go child before parent, as everywhere else.
    /// </summary>
    private async Task RemoveAsync(NpgsqlConnection connection, StreamRow row, CancellationToken ct)
    {
        var id = row.Id;
        var sourceId = row.SourceId;
        while (true)
        {
            await using (var delete = new NpgsqlCommand($"DELETE FROM {_s}.ds_streams WHERE id = @id", connection))
            {
                delete.Parameters.AddWithValue("id", id);
                await delete.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            if (sourceId is not { } source)
            {
                return;
            }
            await using var release = new NpgsqlCommand(
                $"UPDATE {_s}.ds_streams SET ref_count = ref_count - 1 WHERE id = @id RETURNING ref_count, state, source_id", connection);
            release.Parameters.AddWithValue("id", source);
            await using var reader = await release.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (!await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                return;
            }
            var refCount = reader.GetInt32(0);
            var state = reader.GetInt16(1);
            var next = reader.IsDBNull(2) ? (long?)null : reader.GetInt64(2);
            if (refCount > 0 || state == StreamRow.Live)
            {
                return;
            }
            id = source;
            sourceId = next;
        }
    }

    /// <summary>
    /// Adds one INSERT of <paramref name="messages"/> at <paramref name="start"/> to <paramref name="batch"/>, split into
    /// rows of at most <see cref="PostgresStreamStoreOptions.MaxRowBytes"/>; returns the end position. Each row records
    /// the message (JSON) or append (other types) it belongs to, for boundaries and whole-message reads.
    /// </summary>
    private long AddDataInsert(NpgsqlBatch batch, long id, long start, List<ReadOnlyMemory<byte>> messages, bool isJson)
    {
        _ = isJson;
        var starts = new List<long>();
        var ends = new List<long>();
        var messageStarts = new List<long>();
        var messageEnds = new List<long>();
        var data = new List<byte[]>();
        var position = start;
        foreach (var message in messages)
        {
            var messageStart = position;
            var messageEnd = position + message.Length;
            for (var offset = 0; offset < message.Length; offset += _options.MaxRowBytes)
            {
                var length = Math.Min(_options.MaxRowBytes, message.Length - offset);
                starts.Add(position);
                ends.Add(position + length);
                messageStarts.Add(messageStart);
                messageEnds.Add(messageEnd);
                data.Add(message.Slice(offset, length).ToArray());
                position += length;
            }
        }
        if (data.Count > 0)
        {
            var insert = new NpgsqlBatchCommand(
                $"INSERT INTO {_s}.ds_data (stream_id, start_pos, end_pos, msg_start, msg_end, data) SELECT @id, * FROM unnest(@starts, @ends, @mstarts, @mends, @data)");
            insert.Parameters.AddWithValue("id", id);
            insert.Parameters.AddWithValue("starts", starts.ToArray());
            insert.Parameters.AddWithValue("ends", ends.ToArray());
            insert.Parameters.AddWithValue("mstarts", messageStarts.ToArray());
            insert.Parameters.AddWithValue("mends", messageEnds.ToArray());
            insert.Parameters.AddWithValue("data", data.ToArray());
            batch.BatchCommands.Add(insert);
        }
        return position;
    }

    /// <summary>
    /// The fork chain of <paramref name="row"/>: the stream first, then its sources, each with the positions it owns and
    /// its own retained start (see <see cref="EffectiveStart"/>).
    /// </summary>
    private async Task<List<ChainLevel>> LoadChainAsync(NpgsqlConnection connection, StreamRow row, long tail, CancellationToken ct)
    {
        var chain = new List<ChainLevel> { new(row.Id, row.BasePosition, tail, row.RetainedStart, row.OffsetGeneration, row.CompactedEnd) };
        if (row.SourceId is null)
        {
            return chain;
        }
        await using var command = new NpgsqlCommand(
            $"""
            WITH RECURSIVE c AS (
                SELECT id, source_id, base_position, retained_start, offset_generation, compacted_end, 0 AS depth FROM {_s}.ds_streams WHERE id = @id
                UNION ALL
                SELECT p.id, p.source_id, p.base_position, p.retained_start, p.offset_generation, p.compacted_end, c.depth + 1 FROM {_s}.ds_streams p JOIN c ON p.id = c.source_id)
            SELECT id, base_position, retained_start, offset_generation, compacted_end FROM c WHERE depth > 0 ORDER BY depth
            """, connection);
        command.Parameters.AddWithValue("id", row.Id);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            // A source owns positions up to where its fork (and every fork below) diverged.
            chain.Add(new ChainLevel(reader.GetInt64(0), reader.GetInt64(1), Math.Min(chain[^1].Base, chain[^1].Limit), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        }
        return chain;
    }

    /// <summary>
    /// The retained start readers of <c>chain[0]</c> see: folded from the root down with
    /// <see cref="RetentionRules.EffectiveStart"/> (below its fork position a fork sees what its source still holds), where
    /// a compacted source counts from its compacted end (<see cref="CompactionRules.ForkFloor"/>: a fork never inherits a snapshot).
    /// </summary>
    private static long EffectiveStart(List<ChainLevel> chain)
    {
        long? effective = null;
        for (var i = chain.Count - 1; i >= 0; i--)
        {
            var forSource = effective is { } e && i < chain.Count - 1 ? CompactionRules.ForkFloor(e, chain[i + 1].CompactedEnd) : effective;
            effective = RetentionRules.EffectiveStart(chain[i].RetainedStart, chain[i].Base, forSource);
        }
        return effective ?? 0;
    }

    /// <summary>The effective retained start of <paramref name="row"/>: its own, or for a fork, over its chain (one query).</summary>
    private async Task<long> EffectiveStartAsync(NpgsqlConnection connection, StreamRow row, CancellationToken ct) =>
        row.SourceId is null ? row.RetainedStart : EffectiveStart(await LoadChainAsync(connection, row, row.Tail, ct).ConfigureAwait(false));

    private static ChainLevel LevelOf(List<ChainLevel> chain, long position)
    {
        foreach (var level in chain)
        {
            if (level.Base <= position)
            {
                return level;
            }
        }
        return chain[^1];
    }

    /// <summary>True when <paramref name="position"/> starts a message of the chain (or is a level's start or the tail).</summary>
    private async Task<bool> IsBoundaryAsync(NpgsqlConnection connection, List<ChainLevel> chain, long position, CancellationToken ct)
    {
        var level = LevelOf(chain, position);
        if (position == level.Base || position == chain[0].Limit)
        {
            return true;
        }
        await using var command = new NpgsqlCommand(
            $"SELECT EXISTS (SELECT 1 FROM {_s}.ds_data WHERE stream_id = @id AND start_pos = @p AND msg_start = @p)", connection);
        command.Parameters.AddWithValue("id", level.Id);
        command.Parameters.AddWithValue("p", position);
        return (bool)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    /// <summary>The end of the message (JSON) or append containing <paramref name="position"/>, or its level's end.</summary>
    private async Task<long> NextBoundaryAsync(NpgsqlConnection connection, List<ChainLevel> chain, long position, CancellationToken ct)
    {
        var level = LevelOf(chain, position);
        await using var command = new NpgsqlCommand(
            $"SELECT end_pos, msg_end FROM {_s}.ds_data WHERE stream_id = @id AND start_pos <= @p ORDER BY start_pos DESC LIMIT 1", connection);
        command.Parameters.AddWithValue("id", level.Id);
        command.Parameters.AddWithValue("p", position);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (await reader.ReadAsync(ct).ConfigureAwait(false) && reader.GetInt64(0) > position)
        {
            return Math.Min(reader.GetInt64(1), level.Limit);
        }
        return level.Limit;
    }

    /// <summary>
    /// The boundary facts <see cref="ForkRules.ResolvePosition"/> will ask about, read ahead because the rules are
    /// synchronous: whether the anchor starts a message, and the chain of next boundaries the sub-offset walks. Below
    /// <paramref name="retainedStart"/> the rules answer themselves (the dropped range is one unit ending at the start),
    /// so the walk is read ahead from the start on.
    /// </summary>
    private async Task<KnownBoundaries> PrecomputeForkBoundariesAsync(
        NpgsqlConnection connection, List<ChainLevel> chain, ForkRequest fork, long tail, long retainedStart, bool isJson, CancellationToken ct)
    {
        var starts = new HashSet<long>();
        var next = new Dictionary<long, long>();
        var position = fork.Offset?.Position ?? tail;
        if (position > tail)
        {
            return new KnownBoundaries(starts, next, tail);
        }
        if (position < retainedStart)
        {
            // The first step of a sub-offset lands on the start; only a JSON walk goes on from there.
            if (!isJson || fork.SubOffset <= 1)
            {
                return new KnownBoundaries(starts, next, tail);
            }
            position = retainedStart;
            fork = fork with { SubOffset = fork.SubOffset - 1 };
        }
        if (isJson)
        {
            if (!await IsBoundaryAsync(connection, chain, position, ct).ConfigureAwait(false))
            {
                return new KnownBoundaries(starts, next, tail);
            }
            starts.Add(position);
            for (var i = 0L; i < fork.SubOffset && position < tail; i++)
            {
                var boundary = await NextBoundaryAsync(connection, chain, position, ct).ConfigureAwait(false);
                next[position] = boundary;
                position = boundary;
            }
        }
        else if (fork.SubOffset != 0)
        {
            next[position] = await NextBoundaryAsync(connection, chain, position, ct).ConfigureAwait(false);
        }
        return new KnownBoundaries(starts, next, tail);
    }

    /// <summary>Boundary facts read ahead for the synchronous rules (PostgreSQL is asked asynchronously).</summary>
    /// <param name="starts">Positions known to start a message.</param>
    /// <param name="next">Next boundaries known by position; any other position's is the tail.</param>
    /// <param name="tail">The stream's tail.</param>
    /// <param name="start">One more position known to start a message, or -1.</param>
    private readonly struct KnownBoundaries(HashSet<long>? starts, Dictionary<long, long>? next, long tail, long start = -1) : IStreamBoundaries
    {
        /// <summary>Facts for a read's start: only whether that one position starts a message.</summary>
        public static KnownBoundaries At(long position, bool isBoundary, long tail) => new(null, null, tail, isBoundary ? position : -1);

        public bool IsBoundary(long position) => position == start || starts?.Contains(position) == true;

        public long NextBoundary(long position) => next is not null && next.TryGetValue(position, out var boundary) ? boundary : tail;
    }
}
