using System.Collections.Immutable;
using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>
/// An idempotent producer's last accepted (epoch, seq) on one stream, and when it was accepted. Immutable, so a
/// pending and a committed view of a stream can share one producer map.
/// </summary>
public sealed record ProducerState(long Epoch, long LastSeq, DateTimeOffset UpdatedAt)
{
    /// <summary>True when the producer has been idle for <paramref name="retention"/> or longer (its state expired).</summary>
    public bool IsExpired(DateTimeOffset now, TimeSpan retention) => retention != Timeout.InfiniteTimeSpan && now - UpdatedAt >= retention;
}

/// <summary>
/// The writer-visible state of one stream that the protocol rules read and change: tail, closure, Stream-Seq and
/// producers, plus the configuration a PUT is compared against. Stores keep it under their per-stream critical section
/// and persist it atomically with the data it describes.
/// </summary>
public sealed class StreamState
{
    public required string ContentType { get; init; }
    public long? TtlSeconds { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>The request configuration, kept so a repeated PUT can be compared with what created the stream.</summary>
    public required StreamConfiguration Requested { get; init; }

    public long Tail { get; set; }
    public bool Closed { get; set; }
    public string? LastStreamSeq { get; set; }

    /// <summary>
    /// Producer states by id. Immutable: an append replaces one entry (O(log n)), and <see cref="Clone"/> shares the
    /// map instead of copying it, so the cost of an append does not grow with the number of producers.
    /// </summary>
    public ImmutableDictionary<string, ProducerState> Producers { get; set; } = ImmutableDictionary.Create<string, ProducerState>(StringComparer.Ordinal);

    /// <summary>When <see cref="ProducerRules.SweepIfDue"/> next walks the producers for expired ones.</summary>
    public DateTimeOffset NextProducerSweep { get; set; } = DateTimeOffset.MinValue;

    /// <summary>A copy for stores that keep a pending and a committed view; the immutable producer map is shared.</summary>
    public StreamState Clone()
    {
        var copy = new StreamState
        {
            ContentType = ContentType,
            TtlSeconds = TtlSeconds,
            ExpiresAt = ExpiresAt,
            CreatedAt = CreatedAt,
            Requested = Requested,
            Tail = Tail,
            Closed = Closed,
            LastStreamSeq = LastStreamSeq,
            Producers = Producers,
            NextProducerSweep = NextProducerSweep,
        };
        return copy;
    }

    /// <summary>True when the stream has passed its absolute expiry or sat idle longer than its TTL.</summary>
    public bool IsExpired(DateTimeOffset now, DateTimeOffset lastAccess) => IsExpired(TtlSeconds, ExpiresAt, now, lastAccess);

    /// <summary>True when a stream with this TTL and absolute expiry has passed the expiry or sat idle longer than the TTL.</summary>
    public static bool IsExpired(long? ttlSeconds, DateTimeOffset? expiresAt, DateTimeOffset now, DateTimeOffset lastAccess) =>
        (expiresAt is { } at && at <= now) || (ttlSeconds is { } ttl && lastAccess.AddSeconds(ttl) <= now);
}

/// <summary>
/// What a PUT asked for; two PUTs are idempotent when these match (§5.1, §4.2). <see cref="ForkOffset"/> is the anchor
/// as resolved at creation (the source's tail when the PUT omitted it).
/// </summary>
public sealed record StreamConfiguration(
    string ContentType,
    long? TtlSeconds,
    DateTimeOffset? ExpiresAt,
    string? ForkSource,
    StreamOffset? ForkOffset,
    long ForkSubOffset)
{
    /// <summary>
    /// True when <paramref name="request"/> re-states this configuration and its Stream-Closed flag equals the stream's
    /// current closure (§5.1 compares with the current state, not the creating request). A fork PUT that omits
    /// Content-Type or Stream-Fork-Offset means "inherit" / "the tail", so those omissions match.
    /// </summary>
    public bool IsMatchedBy(CreateStreamRequest request, bool currentlyClosed)
    {
        var requestedType = request.ContentType ?? (ForkSource is not null ? ContentType : ContentTypes.Default);
        if (!ContentTypes.Matches(requestedType, ContentType)
            || TtlSeconds != request.TtlSeconds
            || ExpiresAt != request.ExpiresAt
            || currentlyClosed != request.Closed)
        {
            return false;
        }
        if (request.Fork is null)
        {
            return ForkSource is null;
        }
        return string.Equals(ForkSource, request.Fork.SourceName, StringComparison.Ordinal)
            && (request.Fork.Offset is null || request.Fork.Offset == ForkOffset)
            && request.Fork.SubOffset == ForkSubOffset;
    }
}
