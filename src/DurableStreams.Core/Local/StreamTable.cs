using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using DurableStreams.Core.Live;
using DurableStreams.Protocol;

namespace DurableStreams.Core.Local;

/// <summary>
/// The name table of a store that keeps its streams in process (the memory and file stores), and the protocol's
/// lookups on it: found, gone (soft-deleted), not found (absent or expired), and live waits. Expiring is left to the
/// store (it takes the store's structure lock and may have to persist), so lookups hand an expired stream back.
/// <para>
/// A store that keeps its streams on disk gives a <see cref="Loader"/>: the table then holds only the streams looked up
/// (or created) since start-up, and a name it does not hold is loaded on its first lookup. Names removed since start-up
/// are remembered, so a lookup never loads a record the store has deleted but not yet checkpointed.
/// </para>
/// </summary>
internal sealed class StreamTable<TStream> where TStream : LocalStream<TStream>
{
    private readonly ConcurrentDictionary<string, TStream> _streams = new(StringComparer.Ordinal);
    private readonly HashSet<string> _removed = new(StringComparer.Ordinal);
    private readonly Lock _loadGate = new();

    /// <summary>
    /// Loads the stream holding a name the table does not hold (null: there is none). Called under the table's load
    /// lock, one load at a time; it must not wait for anything that waits for a lookup.
    /// </summary>
    public Func<string, TStream?>? Loader { get; init; }

    /// <summary>Every stream that holds a name (live and soft-deleted) and is loaded.</summary>
    public ICollection<TStream> Values => _streams.Values;

    /// <summary>Number of streams loaded (live and soft-deleted).</summary>
    public int Count => _streams.Count;

    /// <summary>Number of live (not soft-deleted) streams loaded.</summary>
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

    /// <summary>The names of the live (not soft-deleted) streams loaded.</summary>
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

    /// <summary>The stream holding <paramref name="name"/>, loading it on first lookup when the table has a <see cref="Loader"/>.</summary>
    public bool TryGetValue(string name, [MaybeNullWhen(false)] out TStream stream)
    {
        if (_streams.TryGetValue(name, out stream) || Loader is not { } loader)
        {
            return stream is not null;
        }
        lock (_loadGate)
        {
            if (_streams.TryGetValue(name, out stream))
            {
                return true;
            }
            if (_removed.Contains(name) || loader(name) is not { } loaded)
            {
                return false;
            }
            _streams[name] = stream = loaded;
            return true;
        }
    }

    /// <summary>The stream holding <paramref name="name"/> if it is loaded; never loads.</summary>
    public bool TryGetLoaded(string name, [MaybeNullWhen(false)] out TStream stream) => _streams.TryGetValue(name, out stream);

    /// <summary>
    /// True when the table decides what <paramref name="name"/> is (it holds it, or removed it since start-up), so a
    /// store's own record of the name is out of date or already counted.
    /// </summary>
    public bool Decides(string name)
    {
        if (_streams.ContainsKey(name))
        {
            return true;
        }
        lock (_loadGate)
        {
            return _streams.ContainsKey(name) || _removed.Contains(name);
        }
    }

    /// <summary>Gives <paramref name="stream"/> its name, replacing whatever held it.</summary>
    public void Set(TStream stream)
    {
        if (Loader is null)
        {
            _streams[stream.Name] = stream;
            return;
        }
        lock (_loadGate)
        {
            _streams[stream.Name] = stream;
            _removed.Remove(stream.Name);
        }
    }

    /// <summary>Frees the stream's name if it still belongs to this stream (it may have been re-created since).</summary>
    public bool TryRemove(TStream stream)
    {
        if (Loader is null)
        {
            return _streams.TryRemove(new KeyValuePair<string, TStream>(stream.Name, stream));
        }
        lock (_loadGate)
        {
            var removed = _streams.TryRemove(new KeyValuePair<string, TStream>(stream.Name, stream));
            // A stream loaded without its name (a fork's soft-deleted source) still holds it in the store's records; one
            // already removed (an expired source kept for its forks) gave it up, perhaps to a stream not loaded yet.
            if (removed || (!stream.Removed && !_streams.ContainsKey(stream.Name)))
            {
                _removed.Add(stream.Name);
            }
            return removed;
        }
    }

    /// <summary>
    /// Drops an idle stream from the table (it stays in the store's records and loads again on its next lookup).
    /// Call under the stream's gate after setting <see cref="LocalStream{TSelf}.Unloaded"/>: a lookup that still got
    /// this entry sees the flag and looks again. The name is not remembered as removed.
    /// </summary>
    public bool TryUnload(TStream stream)
    {
        lock (_loadGate)
        {
            return _streams.TryRemove(new KeyValuePair<string, TStream>(stream.Name, stream));
        }
    }

    /// <summary>
    /// The stream holding <paramref name="name"/>, loaded; an entry unloaded meanwhile is replaced by a fresh lookup.
    /// </summary>
    private bool TryGetCurrent(string name, [MaybeNullWhen(false)] out TStream stream)
    {
        while (TryGetValue(name, out stream))
        {
            if (!stream.Unloaded)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Looks a stream up for a request: a soft-deleted one is gone, an expired one not found (and handed back in
    /// <paramref name="expired"/> for the store to expire); a found one is touched (sliding TTL) when asked.
    /// </summary>
    public (TStream? Stream, ReadStatus Status) Find(string name, bool touch, DateTimeOffset now, out TStream? expired)
    {
        expired = null;
        while (true)
        {
            if (!TryGetCurrent(name, out var stream))
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
            if (!touch)
            {
                return (stream, ReadStatus.Ok);
            }
            Volatile.Write(ref stream.LastAccessTicks, now.UtcTicks);
            if (!stream.Unloaded)
            {
                return (stream, ReadStatus.Ok);
            }
            // Unloaded between the lookup and the touch: the sliding-TTL refresh belongs to the name's current entry.
        }
    }

    /// <summary>The loaded live streams past their expiry at <paramref name="now"/>, for a sweep.</summary>
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
    /// checked against, so a publish in between is never missed. Not itself async: a waiting reader holds one
    /// <see cref="SignalWait"/> (signal, deadline and cancellation in one reusable object), no task or state machine of
    /// its own (thousands of idle readers, docs/benchmarks.md). <paramref name="stopToken"/> cancels it like
    /// <paramref name="cancellationToken"/> (see <see cref="IStreamStore.WaitAsync(string, StreamOffset, TimeSpan, CancellationToken, CancellationToken)"/>).
    /// </summary>
    public ValueTask<WaitOutcome> WaitAsync(
        string name, StreamOffset offset, TimeSpan timeout, DateTimeOffset now, DeadlineScheduler deadlines, CancellationToken stopToken, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<WaitOutcome>(cancellationToken);
        }
        if (stopToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<WaitOutcome>(stopToken);
        }
        TStream? stream;
        SignalWait wait;
        while (true)
        {
            if (!TryGetCurrent(name, out stream) || stream.IsExpired(now))
            {
                return new(WaitOutcome.Gone);
            }
            // A linked wait keeps the stream loaded (the store unloads only streams nobody waits on); one unloaded
            // between the lookup and the gate is looked up again.
            Monitor.Enter(stream.Gate);
            if (!stream.Unloaded)
            {
                break;
            }
            Monitor.Exit(stream.Gate);
        }
        try
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
            wait = deadlines.RentWait(IsGone, stream);
            stream.Signal.Add(wait);
        }
        finally
        {
            Monitor.Exit(stream.Gate);
        }
        return wait.Arm(timeout, stopToken, cancellationToken);
    }

    private static readonly Func<object, bool> IsGone = static s => ((TStream)s).Removed || ((TStream)s).SoftDeleted;
}
