using DurableStreams.Core;
using DurableStreams.Protocol;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

public sealed partial class PostgresStreamStore
{
    /// <inheritdoc />
    public async ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default)
    {
        var (result, wake) = await RunAsync(async connection =>
        {
            var (row, status, expired) = await FindAsync(connection, name, touch: true, cancellationToken).ConfigureAwait(false);
            if (row is null)
            {
                return (ReadResult.Failed(status), expired);
            }
            var tail = row.Tail;
            var isJson = row.IsJson;
            var chain = await LoadChainAsync(connection, row, tail, cancellationToken).ConfigureAwait(false);
            var requested = request.Offset.Kind == OffsetKind.Beginning ? 0L : request.Offset.Offset.Position;
            var boundary = request.Offset.Kind != OffsetKind.At || !isJson || requested >= tail || requested < 0
                || await IsBoundaryAsync(connection, chain, requested, cancellationToken).ConfigureAwait(false);
            var startStatus = ReadRules.ResolveStart(request.Offset, 0, tail, isJson, KnownBoundaries.At(requested, boundary, tail), out var start);
            if (startStatus != ReadStatus.Ok)
            {
                return (ReadResult.Failed(startStatus), false);
            }
            var chunks = new List<ReadOnlyMemory<byte>>();
            var end = start;
            if (request.Offset.Kind != OffsetKind.Now)
            {
                end = await GatherAsync(connection, chain, start, tail, Math.Max(1, request.MaxBytes), isJson, chunks, cancellationToken).ConfigureAwait(false);
            }
            return (ReadResult.Served(row.ToInfo(), start, end, tail, row.Closed, chunks), false);
        }, cancellationToken).ConfigureAwait(false);
        if (wake)
        {
            _hub.Committed(name);
            Raise(StreamChangeKind.Expired, name);
        }
        return result;
    }

    /// <summary>
    /// Collects data in [<paramref name="position"/>, <paramref name="end"/>) within <paramref name="budget"/> bytes,
    /// level by level through the fork chain. Page boundaries are positions (rows starting before position + budget), so
    /// the same request always returns the same range. JSON reads return whole messages only, at least one.
    /// </summary>
    private async Task<long> GatherAsync(
        NpgsqlConnection connection, List<ChainLevel> chain, long position, long end, long budget, bool wholeMessages,
        List<ReadOnlyMemory<byte>> chunks, CancellationToken ct)
    {
        while (position < end && budget > 0)
        {
            var level = LevelOf(chain, position);
            var limit = Math.Min(level.Limit, end);
            var rows = await FetchRowsAsync(connection, level.Id, position, Math.Min(limit, position + budget), ct).ConfigureAwait(false);
            if (rows.Count == 0)
            {
                return position;
            }
            if (wholeMessages)
            {
                var index = 0;
                while (index < rows.Count && budget > 0)
                {
                    var first = rows[index];
                    var length = first.MessageEnd - first.MessageStart;
                    if (first.MessageStart != position || (length > budget && chunks.Count > 0))
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
                        foreach (var more in await FetchRowsAsync(connection, level.Id, covered, first.MessageEnd, ct).ConfigureAwait(false))
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

    /// <summary>Rows of one stream from the row containing <paramref name="from"/> to those starting before <paramref name="until"/>.</summary>
    private async Task<List<DataRow>> FetchRowsAsync(NpgsqlConnection connection, long id, long from, long until, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            $"""
            SELECT start_pos, end_pos, msg_start, msg_end, data FROM {_s}.ds_data
            WHERE stream_id = @id AND start_pos < @until
              AND start_pos >= coalesce((SELECT max(start_pos) FROM {_s}.ds_data WHERE stream_id = @id AND start_pos <= @from), @from)
            ORDER BY start_pos
            """, connection);
        command.Parameters.AddWithValue("id", id);
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
