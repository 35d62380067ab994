using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>What a committed change did to a stream.</summary>
public enum StreamChangeKind
{
    /// <summary>The stream was created (with its initial body, if any); <see cref="StreamChanged.Tail"/> is its tail.</summary>
    Created,

    /// <summary>Data was appended; <see cref="StreamChanged.Tail"/> is the new tail.</summary>
    Appended,

    /// <summary>The stream was closed, possibly by an append that also added data; <see cref="StreamChanged.Tail"/> is its final tail.</summary>
    Closed,

    /// <summary>The stream was deleted (or soft-deleted while forks still read through it); <see cref="StreamChanged.Tail"/> is zero.</summary>
    Deleted,

    /// <summary>The stream's TTL or expiry time passed and the store removed it; <see cref="StreamChanged.Tail"/> is zero.</summary>
    Expired,

    /// <summary>
    /// Another node sharing the store committed a change to the stream (PostgreSQL). Node-to-node notices are coalesced,
    /// so this says only that something changed; <see cref="StreamChanged.Tail"/> is zero. An empty
    /// <see cref="StreamChanged.Name"/> means any stream may have changed (notices were lost while a node reconnected).
    /// </summary>
    ChangedElsewhere,
}

/// <summary>
/// One change a store committed, raised after the commit, in commit order per stream (<see cref="IStreamChangeFeed"/>).
/// </summary>
/// <param name="Kind">What happened.</param>
/// <param name="Name">The stream's name.</param>
/// <param name="Tail">The stream's tail after the change (see <see cref="StreamChangeKind"/>).</param>
/// <param name="At">When the store committed it (a creation's <c>CreatedAt</c>).</param>
public sealed record StreamChanged(StreamChangeKind Kind, string Name, StreamOffset Tail, DateTimeOffset At)
{
    /// <summary>The stream's content type (<see cref="StreamChangeKind.Created"/> only).</summary>
    public string? ContentType { get; init; }

    /// <summary>For a created fork, the name of its source (<see cref="StreamChangeKind.Created"/> only).</summary>
    public string? ForkedFrom { get; init; }

    /// <summary>Whether the created stream is a fork (it starts at its fork position, not at zero).</summary>
    public bool Forked => ForkedFrom is not null;

    /// <summary>Whether the change was committed through this process (not <see cref="StreamChangeKind.ChangedElsewhere"/>).</summary>
    public bool IsLocal => Kind != StreamChangeKind.ChangedElsewhere;
}

/// <summary>
/// The one "stream changed" event of a store (<see cref="IStreamStore.Changes"/>): every store raises it after each
/// committed create, append, close, delete and expiry, so live readers, subscriptions and lifecycle hooks all learn of
/// changes the same way and no caller has to remember to notify anyone. Raising never blocks the store: each listener
/// has its own queue and is called one change at a time, in the order the store raised them, on a worker of its own.
/// (Live long-poll and SSE readers are woken by the store's per-stream signal on the same commit, which costs nothing
/// while nobody waits; this feed is for everyone else.)
/// </summary>
public interface IStreamChangeFeed
{
    /// <summary>
    /// Calls <paramref name="listener"/> with every change raised from now on (that <paramref name="interest"/>, when
    /// given, accepts), one at a time and in order, until the returned subscription is disposed (disposing waits for a
    /// call in progress). A listener that throws loses only that change; listeners handle their own failures.
    /// <paramref name="interest"/> runs on the store's commit path, so it must be quick, thread-safe and never block;
    /// it spares the listener's queue the changes it would ignore (most appends, for most listeners).
    /// </summary>
    IAsyncDisposable Subscribe(Func<StreamChanged, CancellationToken, ValueTask> listener, Func<StreamChanged, bool>? interest = null);

    /// <summary>
    /// Completes when every listener has handled every change raised before this call (read-your-writes for what the
    /// listeners keep: a request that created a stream can answer once hooks and subscriptions have seen it).
    /// </summary>
    Task WhenDeliveredAsync(CancellationToken cancellationToken = default);
}
