using DurableStreams.Core;
using DurableStreams.Protocol;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

public sealed partial class PostgresStreamStore
{
    /// <summary>Test hook: runs in every read after the stream's row and retained start were read, before its data rows.</summary>
    internal Func<Task>? ReadResolvedHook { get; set; }

    /// <summary>How often a read that found rows missing below its start (retention freed them meanwhile) starts over.</summary>
    private const int ReadAttempts = 3;

    /// <inheritdoc />
    public async ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default)
    {
        var (result, wake) = await RunAsync(async connection =>
        {
            for (var attempt = 1; ; attempt++)
            {
                var (read, expired) = await ReadOnceAsync(connection, name, request, attempt == 1, cancellationToken).ConfigureAwait(false);
                if (read is not null)
                {
                    return (read, expired);
                }
                if (attempt == ReadAttempts)
                {
                    // Rows missing at or above the retained start, three times over: not a race with retention.
                    return (ReadResult.Failed(ReadStatus.Corrupt), false);
                }
            }
        }, cancellationToken).ConfigureAwait(false);
        if (wake)
        {
            _hub.Committed(name);
            Raise(StreamChangeKind.Expired, name);
        }
        return result;
    }

    /// <summary>
    /// One attempt at a read; a null result means rows the read needed were gone (retention freed them after the read
    /// resolved its start against the row), and the read starts over: it then resolves against the new start, so it
    /// answers 410 or serves what is there, never a body with a hole in it (nor a 400 for an offset whose message was
    /// freed: an unaligned offset is re-checked once).
    /// </summary>
    private async Task<(ReadResult?, bool)> ReadOnceAsync(NpgsqlConnection connection, string name, ReadRequest request, bool first, CancellationToken cancellationToken)
    {
        var (row, status, expired) = await FindAsync(connection, name, touch: true, cancellationToken).ConfigureAwait(false);
        if (row is null)
        {
            return (ReadResult.Failed(status), expired);
        }
        var tail = row.Tail;
        var isJson = row.IsJson;
        var chain = await LoadChainAsync(connection, row, tail, cancellationToken).ConfigureAwait(false);
        var retainedStart = EffectiveStart(chain);
        if (ReadResolvedHook is { } hook)
        {
            await hook().ConfigureAwait(false);
        }
        // -1 starts at the retained start, a message boundary by construction.
        var requested = request.Offset.Kind == OffsetKind.Beginning ? retainedStart : request.Offset.Offset.Position;
        var boundary = request.Offset.Kind != OffsetKind.At || !isJson || requested >= tail || requested < retainedStart
            || await IsBoundaryAsync(connection, chain, requested, cancellationToken).ConfigureAwait(false);
        var startStatus = ReadRules.ResolveStart(request.Offset, row.Space, retainedStart, tail, isJson, KnownBoundaries.At(requested, boundary, tail), out var start);
        if (startStatus == ReadStatus.BeforeRetainedStart)
        {
            return (new ReadResult { Status = startStatus, Info = row.ToInfo(retainedStart) }, false);
        }
        if (startStatus == ReadStatus.OffsetUnaligned && first)
        {
            // The row that starts the message may have been freed since the stream's row was read: ask again.
            return (null, false);
        }
        if (startStatus != ReadStatus.Ok)
        {
            return (ReadResult.Failed(startStatus), false);
        }
        var chunks = new List<ReadOnlyMemory<byte>>();
        var end = start;
        if (request.Offset.Kind != OffsetKind.Now)
        {
            if (await GatherAsync(connection, chain, start, tail, Math.Max(1, request.MaxBytes), isJson, chunks, cancellationToken).ConfigureAwait(false) is not { } gathered)
            {
                return (null, false);
            }
            end = gathered;
        }
        return (ReadResult.Served(row.ToInfo(retainedStart), start, end, tail, row.Closed, chunks), false);
    }

    /// <summary>
    /// Collects data in [<paramref name="position"/>, <paramref name="end"/>) within <paramref name="budget"/> bytes,
    /// level by level through the fork chain. Page boundaries are positions (rows starting before position + budget), so
    /// the same request always returns the same range. JSON reads return whole messages only, at least one. Returns null
    /// when a row the range needs is gone (freed by retention after the read resolved its start).
    /// </summary>
    private async Task<long?> GatherAsync(
        NpgsqlConnection connection, List<ChainLevel> chain, long position, long end, long budget, bool wholeMessages,
        List<ReadOnlyMemory<byte>> chunks, CancellationToken ct)
    {
        while (position < end && budget > 0)
        {
            var level = LevelOf(chain, position);
            var limit = Math.Min(level.Limit, end);
            var rows = await FetchRowsAsync(connection, level, position, Math.Min(limit, position + budget), ct).ConfigureAwait(false);
            // One statement sees one snapshot and retention deletes a prefix, so when the row holding the position is
            // there, so is everything after it; the loops below still check that rows follow on (a hole is never served).
            // A compaction that committed since the row was read shows as no rows at all (the generation moved).
            if (rows.Count == 0 || rows[0].Start > position || rows[0].End <= position)
            {
                return null;
            }
            if (wholeMessages)
            {
                var index = 0;
                while (index < rows.Count && budget > 0)
                {
                    var first = rows[index];
                    var length = first.MessageEnd - first.MessageStart;
                    if (first.Start != position || first.MessageStart != position)
                    {
                        return null;
                    }
                    if (length > budget && chunks.Count > 0)
                    {
                        return position;
                    }
                    var parts = new List<byte[]>();
                    var covered = first.Start;
                    while (index < rows.Count && rows[index].MessageStart == first.MessageStart)
                    {
                        parts.Add(rows[index].Data);
                        covered = rows[index].End;
                        index++;
                    }
                    if (covered < first.MessageEnd)
                    {
                        // A message larger than the budget, read alone: fetch the rest of its rows.
                        var rest = await FetchRowsAsync(connection, level, covered, first.MessageEnd, ct).ConfigureAwait(false);
                        if (rest.Count == 0 || rest[0].Start != covered)
                        {
                            return null;
                        }
                        foreach (var more in rest)
                        {
                            parts.Add(more.Data);
                        }
                    }
                    chunks.Add(parts.Count == 1 ? parts[0] : parts.SelectMany(p => p).ToArray());
                    position = first.MessageEnd;
                    budget -= length;
                }
                if (index < rows.Count)
                {
                    return position;
                }
            }
            else
            {
                foreach (var row in rows)
                {
                    if (row.Start > position)
                    {
                        return null;
                    }
                    var from = (int)(position - row.Start);
                    var to = (int)(Math.Min(row.End, limit) - row.Start);
                    var length = (int)Math.Min(to - from, budget);
                    if (length <= 0)
                    {
                        return position;
                    }
                    chunks.Add(row.Data.AsMemory(from, length));
                    position += length;
                    budget -= length;
                    if (budget <= 0)
                    {
                        break;
                    }
                }
            }
        }
        return position;
    }

    /// <summary>
    /// Rows of one stream from the row containing <paramref name="from"/> to those starting before <paramref name="until"/>,
    /// or none when the stream's generation is no longer the one <paramref name="level"/> was read with: the statement sees
    /// one snapshot, so the rows it returns are those of the generation the read resolved its offset in, never a
    /// snapshot's rows for an offset of the data they replaced (or the reverse).
    /// </summary>
    private async Task<List<DataRow>> FetchRowsAsync(NpgsqlConnection connection, ChainLevel level, long from, long until, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            $"""
            SELECT start_pos, end_pos, msg_start, msg_end, data FROM {_s}.ds_data
            WHERE stream_id = @id AND start_pos < @until
              AND start_pos >= coalesce((SELECT max(start_pos) FROM {_s}.ds_data WHERE stream_id = @id AND start_pos <= @from), @from)
              AND EXISTS (SELECT 1 FROM {_s}.ds_streams WHERE id = @id AND offset_generation = @generation)
            ORDER BY start_pos
            """, connection);
        command.Parameters.AddWithValue("id", level.Id);
        command.Parameters.AddWithValue("generation", level.Generation);
        command.Parameters.AddWithValue("from", from);
        command.Parameters.AddWithValue("until", until);
        var rows = new List<DataRow>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            rows.Add(new DataRow(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetFieldValue<byte[]>(4)));
        }
        return rows;
    }

    private readonly record struct DataRow(long Start, long End, long MessageStart, long MessageEnd, byte[] Data);
}
