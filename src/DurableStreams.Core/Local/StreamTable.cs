using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using DurableStreams.Core.Live;
using DurableStreams.Protocol;

namespace DurableStreams.Core.Local;

/// <summary>
/// The name table of a store that keeps its streams in process (the memory and file stores), and the protocol's
/// lookups on it: found, gone (soft-deleted), not found (absent or expired), and live waits. Expiring is left to the
/// store (it takes the store's structure lock and may have to persist), so lookups hand an expired stream back.
/// </summary>
internal sealed class StreamTable<TStream> where TStream : LocalStream<TStream>
{
    private readonly ConcurrentDictionary<string, TStream> _streams = new(StringComparer.Ordinal);

    /// <summary>Every stream that holds a name (live and soft-deleted).</summary>
    public ICollection<TStream> Values => _streams.Values;

    /// <summary>Number of live (not soft-deleted) streams.</summary>
    public int LiveCount
    {
        get
        {
            var count = 0;
            foreach (var stream in _streams.Values)
            {
                count += stream.SoftDeleted ? 0 : 1;
            }
            return count;
        }
    }

    /// <summary>The names of the live (not soft-deleted) streams.</summary>
    public IReadOnlyList<string> LiveNames()
    {
        var names = new List<string>();
        foreach (var (name, stream) in _streams)
        {
            if (!stream.SoftDeleted)
            {
                names.Add(name);
            }
        }
        return names;
    }

    public bool TryGetValue(string name, [MaybeNullWhen(false)] out TStream stream) => _streams.TryGetValue(name, out stream);

    /// <summary>Gives <paramref name="stream"/> its name, replacing whatever held it.</summary>
    public void Set(TStream stream) => _streams[stream.Name] = stream;

    /// <summary>Frees the stream's name if it still belongs to this stream (it may have been re-created since).</summary>
    public bool TryRemove(TStream stream) => _streams.TryRemove(new KeyValuePair<string, TStream>(stream.Name, stream));

    /// <summary>
    /// Looks a stream up for a request: a soft-deleted one is gone, an expired one not found (and handed back in
    /// <paramref name="expired"/> for the store to expire); a found one is touched (sliding TTL) when asked.
    /// </summary>
    public (TStream? Stream, ReadStatus Status) Find(string name, bool touch, DateTimeOffset now, out TStream? expired)
    {
        expired = null;
        if (!_streams.TryGetValue(name, out var stream))
        {
            return (null, ReadStatus.NotFound);
        }
        if (stream.SoftDeleted)
        {
            return (null, ReadStatus.Gone);
        }
        if (stream.IsExpired(now))
        {
            expired = stream;
            return (null, ReadStatus.NotFound);
        }
        if (touch)
        {
            Volatile.Write(ref stream.LastAccessTicks, now.UtcTicks);
        }
        return (stream, ReadStatus.Ok);
    }

    /// <summary>The live streams past their expiry at <paramref name="now"/>, for a sweep.</summary>
    public List<TStream> Expired(DateTimeOffset now)
    {
        var expired = new List<TStream>();
        foreach (var stream in _streams.Values)
        {
            if (!stream.SoftDeleted && stream.CanExpire && stream.IsExpired(now))
            {
                expired.Add(stream);
            }
        }
        return expired;
    }

    /// <summary>
    /// Waits until the stream's published tail passes <paramref name="offset"/> or it closes (changed), it goes away
    /// (gone), or <paramref name="timeout"/> passes. The signal is taken under the stream's gate with the state it was
    /// checked against, so a publish in between is never missed. Not itself async: a waiting reader holds only the
    /// deadline's wait, not a second state machine (thousands of idle readers, docs/benchmarks.md).
    /// </summary>
    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, DateTimeOffset now, DeadlineScheduler deadlines, CancellationToken cancellationToken)
    {
        if (!_streams.TryGetValue(name, out var stream) || stream.IsExpired(now))
        {
            return new(WaitOutcome.Gone);
        }
        Task signal;
        lock (stream.Gate)
        {
            if (stream.Removed || stream.SoftDeleted)
            {
                return new(WaitOutcome.Gone);
            }
            var state = stream.ReaderState;
            if (state.Tail > offset.Position || state.Closed)
            {
                return new(WaitOutcome.Changed);
            }
            signal = stream.Signal.Current;
        }
        return deadlines.WaitForSignalAsync(signal, timeout, static s => s.Removed || s.SoftDeleted, stream, cancellationToken);
    }
}
