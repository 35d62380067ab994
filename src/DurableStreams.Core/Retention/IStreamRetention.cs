using DurableStreams.Protocol;

namespace DurableStreams.Core.Retention;

/// <summary>What one retention pass over one stream did.</summary>
public enum RetentionStatus
{
    /// <summary>Nothing was old or large enough to drop (or the policy keeps everything).</summary>
    Unchanged,
    /// <summary>The retained start moved forward.</summary>
    Trimmed,
    /// <summary>The stream does not exist (or is soft-deleted / expired).</summary>
    NotFound,
}

/// <param name="Status">The outcome.</param>
/// <param name="RetainedStart">The stream's retained start after the pass (its own, not the fork chain's).</param>
/// <param name="BytesDropped">Logical bytes the start moved forward by in this pass.</param>
/// <param name="BytesFreed">Storage actually released in this pass (whole units: blocks, pages, rows); may lag
/// <paramref name="BytesDropped"/> when a unit straddles the start, and catch up in a later pass.</param>
public readonly record struct RetentionResult(RetentionStatus Status, StreamOffset RetainedStart = default, long BytesDropped = 0, long BytesFreed = 0);

/// <summary>
/// Retention, as every store implements it beside <see cref="IStreamStore"/> (issue 18). The rules — where the retained
/// start may move to — are <see cref="RetentionRules"/>; a store supplies what it knows (tail, boundaries, append times)
/// and frees what lies below the start in whole units it can release cheaply.
/// </summary>
/// <remarks>
/// The contract, for every store:
/// <list type="bullet">
/// <item>The retained start only moves forward, always to a boundary (a message start for JSON streams, an append start
/// for others), never past the tail. It is persisted atomically with the decision (a restart never moves it back) and
/// is reported by <see cref="StoredStreamInfo.RetainedStart"/> (HEAD, reads).</item>
/// <item>A read from an offset below the stream's effective retained start answers
/// <see cref="ReadStatus.BeforeRetainedStart"/> (410) with <see cref="ReadResult.Info"/> set, so the server can say
/// where the data starts; <c>offset=-1</c> starts at the retained start; offsets at or above it are unchanged.</item>
/// <item>Forks: a fork's effective retained start is <c>max(own, min(fork position, source's effective start))</c>
/// (<see cref="RetentionRules.EffectiveStart"/>): a source's retention is never held back by its forks (a policy is a
/// bound on storage), and a fork answers 410 for an inherited range its source has dropped.</item>
/// <item>Appends and live readers are never blocked for longer than publishing the new start; freeing happens after
/// the start is published, and a read that raced a free answers 410 (or the bytes it verified), never corrupt data.</item>
/// <item>Age needs append times: stores record (position, time) samples for streams whose policy has a
/// <see cref="RetentionPolicy.MaxAge"/> (see <see cref="AppendTimes"/>), and nothing for other streams.</item>
/// </list>
/// </remarks>
public interface IStreamRetention
{
    /// <summary>
    /// Applies <paramref name="policy"/> to the stream <paramref name="name"/> at the store's current time: moves the
    /// retained start as <see cref="RetentionRules.PlanStart"/> allows, persists it, then frees what lies below it.
    /// </summary>
    ValueTask<RetentionResult> ApplyRetentionAsync(string name, RetentionPolicy policy, CancellationToken cancellationToken = default);
}
