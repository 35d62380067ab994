using DurableStreams.Core;
using DurableStreams.Protocol;
using Npgsql;
using NpgsqlTypes;

namespace DurableStreams.Storage.Postgres;

public sealed partial class PostgresStreamStore
{
    private static readonly StreamConfiguration s_guessRequested = new(ContentTypes.Default, null, null, null, null, 0);

    /// <summary>
    /// The append in one round trip: one call of <c>ds_append</c> (see <see cref="PostgresSchema"/>) in its own implicit
    /// transaction. The function writes only appends the shared rules certainly commit and returns the stream's and the
    /// producer's state from before the append; the rules then decide here, on that state: a commit is applied
    /// (<see cref="AppendRules.Apply"/>), a rejection is answered as is. Returns null when the locking transaction must
    /// decide instead: the request is malformed or its JSON invalid (the answer carries the stream's state), the stream
    /// records append times for retention, its Stream-Seq is not ASCII (the function compares bytes, the rules UTF-16
    /// code units), the stream is expired or needs its TTL refreshed on a rejection, or the function left an append the
    /// rules would commit. Offsets answered carry the generation of the locked row (no compaction moves it meanwhile).
    /// </summary>
    private async Task<(AppendStreamResult, bool)?> AppendInOneAsync(NpgsqlConnection connection, string name, AppendRequest request, CancellationToken ct)
    {
        if (PrepareInOne(name, request) is not { } append)
        {
            return null;
        }
        await using var command = new NpgsqlCommand(AppendSql, connection);
        AddAppendParameters(command.Parameters, append);
        StreamRow? row;
        bool written;
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            await reader.ReadAsync(ct).ConfigureAwait(false);
            (row, written) = ReadAppendRow(reader);
        }
        return Decide(append, row, written);
    }

    /// <summary>An append the one-round-trip path can send: the request, its time and its data rows.</summary>
    private sealed class PreparedAppend(string name, AppendRequest request, long now, DataRows rows)
    {
        public string Name { get; } = name;
        public AppendRequest Request { get; } = request;
        public long Now { get; } = now;
        public DateTimeOffset At => new(Now, TimeSpan.Zero);
        public DataRows Rows { get; } = rows;
    }

    /// <summary>The request's own checks before <c>ds_append</c> is called; null when the locking transaction must decide.</summary>
    private PreparedAppend? PrepareInOne(string name, AppendRequest request)
    {
        if (request.StreamSeq is { } streamSeq && !System.Text.Ascii.IsValid(streamSeq) || AppendTimesInterval(name) is not null)
        {
            return null;
        }
        var now = NowTicks;
        var at = new DateTimeOffset(now, TimeSpan.Zero);

        // The request's own checks (shape, JSON) on a state that passes every stream check: if they pass, the messages
        // are what the rules commit on the real stream, whose content type the function requires to be the request's.
        var guess = new StreamState { ContentType = request.ContentType ?? ContentTypes.Default, Requested = s_guessRequested };
        if (request.Producer is { Seq: > 0 } claim)
        {
            guess.Producers = guess.Producers.SetItem(claim.Id, new ProducerState(claim.Epoch, claim.Seq - 1, at));
        }
        var guessed = AppendRules.Evaluate(guess, request, _options.MaxJsonDepth, _options.MaxMessagesPerAppend, at, _options.ProducerRetention);
        return guessed.ShouldCommit ? new PreparedAppend(name, request, now, DataRows.Of(guessed.Messages, _options.MaxRowBytes)) : null;
    }

    /// <summary>The statement calling <c>ds_append</c> (one text, so it is prepared once per connection).</summary>
    private string AppendSql => _appendSql ??=
        $"""
        SELECT {StreamRow.Columns}, r.producer_epoch, r.producer_seq, r.producer_ticks, r.written
        FROM {_s}.ds_append(@name, @ct, @producer, @epoch, @seq, @streamSeq, @close, @now, @retention, @length,
            @starts, @ends, @mstarts, @mends, @data) r, LATERAL (SELECT (r.stream).*) s
        """;

    private string? _appendSql;

    private void AddAppendParameters(NpgsqlParameterCollection p, PreparedAppend append)
    {
        var request = append.Request;
        var rows = append.Rows;
        p.AddWithValue("name", append.Name);
        p.Add(new NpgsqlParameter<string?>("ct", NpgsqlDbType.Text) { TypedValue = request.ContentType });
        p.Add(new NpgsqlParameter<string?>("producer", NpgsqlDbType.Text) { TypedValue = request.Producer?.Id });
        p.Add(new NpgsqlParameter<long?>("epoch", NpgsqlDbType.Bigint) { TypedValue = request.Producer?.Epoch });
        p.Add(new NpgsqlParameter<long?>("seq", NpgsqlDbType.Bigint) { TypedValue = request.Producer?.Seq });
        p.Add(new NpgsqlParameter<string?>("streamSeq", NpgsqlDbType.Text) { TypedValue = request.StreamSeq });
        p.AddWithValue("close", request.Close);
        p.AddWithValue("now", append.Now);
        p.AddWithValue("retention", _options.ProducerRetention == Timeout.InfiniteTimeSpan ? -1L : _options.ProducerRetention.Ticks);
        p.AddWithValue("length", rows.Length);
        p.AddWithValue("starts", rows.Starts);
        p.AddWithValue("ends", rows.Ends);
        p.AddWithValue("mstarts", rows.MessageStarts);
        p.AddWithValue("mends", rows.MessageEnds);
        p.AddWithValue("data", rows.Data);
    }

    /// <summary>The row <c>ds_append</c> returned (the reader is on it): the stream and producer before the append, or null.</summary>
    private static (StreamRow? Row, bool Written) ReadAppendRow(NpgsqlDataReader reader)
    {
        if (reader.IsDBNull(0))
        {
            return (null, false);
        }
        var row = StreamRow.Read(reader);
        var extra = reader.FieldCount - 4;
        if (!reader.IsDBNull(extra))
        {
            row.Producer = new ProducerState(reader.GetInt64(extra), reader.GetInt64(extra + 1), new DateTimeOffset(reader.GetInt64(extra + 2), TimeSpan.Zero));
        }
        return (row, reader.GetBoolean(extra + 3));
    }

    /// <summary>The shared rules on the state <c>ds_append</c> returned; null when the locking transaction must decide.</summary>
    private (AppendStreamResult, bool)? Decide(PreparedAppend append, StreamRow? row, bool written)
    {
        if (row is null)
        {
            return (new AppendStreamResult(AppendStatus.NotFound), false);
        }
        var request = append.Request;
        var state = row.ToState(request.Producer?.Id);
        if (written)
        {
            return (InGeneration(AppendRules.Apply(state, request, append.Rows.Length, append.At), row.OffsetGeneration), true);
        }
        if (row.State == StreamRow.SoftDeleted)
        {
            return (new AppendStreamResult(AppendStatus.Gone), false);
        }
        if (row.IsExpired(append.Now) || row.NeedsTouch(append.Now))
        {
            return null;
        }
        var decision = AppendRules.Evaluate(state, request, _options.MaxJsonDepth, _options.MaxMessagesPerAppend, append.At, _options.ProducerRetention);
        return decision.ShouldCommit ? null : (InGeneration(decision.Result, row.OffsetGeneration), false);
    }

    /// <summary>
    /// Data rows of an append, positions relative to its start: messages split into rows of at most
    /// <c>maxRowBytes</c>, each row naming the message it belongs to.
    /// </summary>
    private sealed class DataRows
    {
        public long Length { get; private set; }
        public required long[] Starts { get; init; }
        public required long[] Ends { get; init; }
        public required long[] MessageStarts { get; init; }
        public required long[] MessageEnds { get; init; }
        public required byte[][] Data { get; init; }

        public static DataRows Of(List<ReadOnlyMemory<byte>> messages, int maxRowBytes)
        {
            var count = 0;
            foreach (var message in messages)
            {
                count += (message.Length + maxRowBytes - 1) / maxRowBytes;
            }
            var rows = new DataRows
            {
                Starts = new long[count], Ends = new long[count], MessageStarts = new long[count], MessageEnds = new long[count], Data = new byte[count][],
            };
            var position = 0L;
            var i = 0;
            foreach (var message in messages)
            {
                var messageStart = position;
                for (var offset = 0; offset < message.Length; offset += maxRowBytes, i++)
                {
                    var length = Math.Min(maxRowBytes, message.Length - offset);
                    rows.Starts[i] = position;
                    rows.Ends[i] = position + length;
                    rows.MessageStarts[i] = messageStart;
                    rows.MessageEnds[i] = messageStart + message.Length;
                    rows.Data[i] = message.Slice(offset, length).ToArray();
                    position += length;
                }
            }
            rows.Length = position;
            return rows;
        }
    }
}
