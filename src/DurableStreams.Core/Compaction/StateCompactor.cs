using DurableStreams.Protocol;

namespace DurableStreams.Core.Compaction;

/// <summary>What one compaction attempt did.</summary>
public enum CompactionStatus
{
    /// <summary>The prefix was replaced by its snapshot.</summary>
    Compacted,
    /// <summary>Not due under the policy (or nothing appended since the last compaction).</summary>
    NotDue,
    /// <summary>The snapshot would not be smaller than what it replaces: nothing changed.</summary>
    NotSmaller,
    /// <summary>The snapshot's kept messages exceeded <see cref="CompactionPolicy.MaxSnapshotBytes"/>: nothing changed.</summary>
    TooLarge,
    /// <summary>The stream is not JSON, or is a fork.</summary>
    NotApplicable,
    /// <summary>The stream does not exist.</summary>
    NotFound,
    /// <summary>Retention, another compaction or a delete changed the stream while the snapshot was built: nothing changed.</summary>
    Conflict,
}

/// <param name="Status">The outcome.</param>
/// <param name="BytesBefore">Stored bytes of the prefix read (replaced when <see cref="CompactionStatus.Compacted"/>).</param>
/// <param name="BytesAfter">Stored bytes of the snapshot (0 when none was built).</param>
/// <param name="MessagesBefore">Messages read.</param>
/// <param name="LiveKeys">(type, key) entries in the snapshot.</param>
/// <param name="UnknownMessages">Messages kept as they are because they are not State-Protocol messages (partial compaction).</param>
/// <param name="Info">The stream after a committed compaction.</param>
/// <param name="BytesFreed">Storage the store released.</param>
public readonly record struct CompactionOutcome(
    CompactionStatus Status,
    long BytesBefore = 0,
    long BytesAfter = 0,
    long MessagesBefore = 0,
    int LiveKeys = 0,
    int UnknownMessages = 0,
    StoredStreamInfo? Info = null,
    long BytesFreed = 0)
{
    /// <summary>True when messages were kept because they were not understood.</summary>
    public bool Partial => UnknownMessages > 0;
}

/// <summary>
/// Runs one State-Protocol compaction of one stream against any store (issue 18): reads the retained prefix up to the
/// tail as of the start through <see cref="IStreamStore.ReadAsync"/> (appends go on meanwhile; the prefix ends where the
/// tail was), builds its snapshot (<see cref="StateSnapshotBuilder"/>), and asks the store to commit it
/// (<see cref="IStreamCompaction.CommitCompactionAsync"/>), which refuses if the stream changed underneath.
/// </summary>
/// <remarks>The reads refresh a sliding TTL like any read (a compaction is due only after appends, which refresh it too).</remarks>
public static class StateCompactor
{
    /// <summary>Bytes asked of the store per read while the prefix is read.</summary>
    public const int ReadChunkBytes = 1 << 20;

    /// <summary>
    /// Compacts <paramref name="name"/> if due under <paramref name="policy"/> (or, when <paramref name="force"/>, whenever
    /// anything was appended since the last compaction).
    /// </summary>
    public static async ValueTask<CompactionOutcome> CompactAsync(IStreamStore store, string name, CompactionPolicy policy, bool force, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(policy);
        if (store is not IStreamCompaction target)
        {
            return new CompactionOutcome(CompactionStatus.NotApplicable);
        }
        var metadata = await store.GetMetadataAsync(name, cancellationToken).ConfigureAwait(false);
        if (metadata.Status != ReadStatus.Ok || metadata.Info is not { } info)
        {
            return new CompactionOutcome(CompactionStatus.NotFound);
        }
        if (!ContentTypes.IsJson(info.ContentType))
        {
            return new CompactionOutcome(CompactionStatus.NotApplicable);
        }
        var start = info.RetainedStart.Position;
        var end = info.Tail.Position;
        var compactedEnd = info.CompactedEnd.Position;
        var due = force ? end > Math.Max(start, compactedEnd) : CompactionRules.IsDue(policy, start, end, compactedEnd);
        if (!due)
        {
            return new CompactionOutcome(CompactionStatus.NotDue);
        }
        var builder = new StateSnapshotBuilder(policy.MaxSnapshotBytes);
        var generation = info.OffsetGeneration;
        var position = start;
        var joined = Array.Empty<byte>();
        while (position < end && !builder.TooLarge)
        {
            var offset = OffsetQuery.At(new StreamOffset(position) { Generation = generation });
            using var read = await store.ReadAsync(name, new ReadRequest(offset, ReadChunkBytes), cancellationToken).ConfigureAwait(false);
            switch (read.Status)
            {
                case ReadStatus.Ok:
                    break;
                case ReadStatus.NotFound or ReadStatus.Gone:
                    return new CompactionOutcome(CompactionStatus.NotFound);
                case ReadStatus.BeforeRetainedStart or ReadStatus.OffsetNotIssued:
                    return new CompactionOutcome(CompactionStatus.Conflict);
                default:
                    throw new InvalidOperationException($"Reading stream '{name}' at {position} for compaction failed: {read.Status}.");
            }
            if (read.Length == 0)
            {
                throw new InvalidOperationException($"Reading stream '{name}' at {position} for compaction returned nothing before its tail {end}.");
            }
            // A read holds whole messages, but a message may span chunks (a store's blocks): feed one contiguous run.
            ReadOnlySpan<byte> data;
            if (read.Chunks.Count == 1)
            {
                data = read.Chunks[0].Span;
            }
            else
            {
                if (joined.Length < read.Length)
                {
                    joined = new byte[Math.Max(read.Length, ReadChunkBytes)];
                }
                var filled = 0;
                foreach (var chunk in read.Chunks)
                {
                    chunk.Span.CopyTo(joined.AsSpan(filled));
                    filled += chunk.Length;
                }
                data = joined.AsSpan(0, filled);
            }
            position = Feed(builder, data, position, end);
        }
        var before = end - start;
        if (builder.TooLarge)
        {
            return new CompactionOutcome(CompactionStatus.TooLarge, before, MessagesBefore: builder.Messages);
        }
        if (builder.SnapshotLength >= before)
        {
            return new CompactionOutcome(CompactionStatus.NotSmaller, before, builder.SnapshotLength, builder.Messages, builder.LiveKeys, builder.UnknownMessages);
        }
        var (snapshot, lengths) = builder.Build();
        var commit = new CompactionCommit(start, generation, end, snapshot, lengths);
        var result = await target.CommitCompactionAsync(name, commit, cancellationToken).ConfigureAwait(false);
        var status = result.Status switch
        {
            CompactionCommitStatus.Committed => CompactionStatus.Compacted,
            CompactionCommitStatus.NotFound => CompactionStatus.NotFound,
            CompactionCommitStatus.NotApplicable => CompactionStatus.NotApplicable,
            CompactionCommitStatus.Conflict => CompactionStatus.Conflict,
            _ => throw new InvalidOperationException($"The store refused the compaction of '{name}' as invalid ({result.Status}); this is a bug."),
        };
        return new CompactionOutcome(status, before, snapshot.Length, builder.Messages, builder.LiveKeys, builder.UnknownMessages, result.Info, result.BytesFreed);
    }

    /// <summary>
    /// Feeds the stored messages of <paramref name="chunk"/> (whole messages, each ending with a comma) that lie below
    /// <paramref name="end"/>; returns the position after the last one fed.
    /// </summary>
    private static long Feed(StateSnapshotBuilder builder, ReadOnlySpan<byte> chunk, long position, long end)
    {
        while (!chunk.IsEmpty && position < end)
        {
            var length = StoredMessageLength(chunk);
            builder.Add(chunk[..length]);
            chunk = chunk[length..];
            position += length;
        }
        return position;
    }

    /// <summary>The length of the first stored message of <paramref name="chunk"/>, its comma included.</summary>
    internal static int StoredMessageLength(ReadOnlySpan<byte> chunk)
    {
        // A stored message is one valid JSON value followed by ','; the reader skips it whole, strings and nesting included.
        var reader = new System.Text.Json.Utf8JsonReader(chunk, isFinalBlock: false, state: default);
        if (!reader.Read())
        {
            throw new InvalidOperationException("A stored JSON message is incomplete.");
        }
        if (!reader.TrySkip())
        {
            throw new InvalidOperationException("A stored JSON message is incomplete.");
        }
        var length = (int)reader.BytesConsumed;
        while (length < chunk.Length && chunk[length] != (byte)',')
        {
            length++;
        }
        if (length >= chunk.Length)
        {
            throw new InvalidOperationException("A stored JSON message does not end with a comma.");
        }
        return length + 1;
    }
}
