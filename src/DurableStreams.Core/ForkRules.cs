using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>
/// Where a fork diverges (§4.2), shared by every store: the anchor offset (default: the source's tail) refined by
/// <c>Stream-Fork-Sub-Offset</c> — whole messages for JSON sources, bytes otherwise, never past the next data boundary.
/// Stores supply their own view of message/append boundaries.
/// </summary>
public static class ForkRules
{
    /// <summary>Default for the stores' <c>MaxForkDepth</c>: how many forks deep a chain may grow (a plain stream is depth 0).</summary>
    public const int DefaultMaxForkDepth = 100;

    /// <summary>
    /// Whether a fork of a source that is itself <paramref name="sourceDepth"/> forks deep may be created: the new fork is
    /// one deeper, and chains deeper than <paramref name="maxForkDepth"/> are refused (400), so reads, boundaries and
    /// deletes never walk an unbounded chain. Stores count the source's depth without recursion.
    /// </summary>
    public static CreateStatus CheckDepth(int sourceDepth, int maxForkDepth) =>
        sourceDepth >= maxForkDepth ? CreateStatus.ForkTooDeep : CreateStatus.Created;

    /// <summary>
    /// Whether a found, unexpired source can be forked (§4.2): not soft-deleted, and of the
    /// requested content type when the request names one. The fork takes the source's content type.
    /// </summary>
    public static CreateStatus CheckSource(bool softDeleted, string sourceContentType, string? requestedContentType) =>
        softDeleted ? CreateStatus.SourceSoftDeleted
        : requestedContentType is not null && !ContentTypes.Matches(requestedContentType, sourceContentType) ? CreateStatus.SourceContentTypeMismatch
        : CreateStatus.Created;

    /// <summary>§4.2: a fork that names neither a TTL nor an absolute expiry inherits the source's.</summary>
    public static void InheritExpiry(ref long? ttlSeconds, ref DateTimeOffset? expiresAt, long? sourceTtlSeconds, DateTimeOffset? sourceExpiresAt)
    {
        if (ttlSeconds is null && expiresAt is null)
        {
            ttlSeconds = sourceTtlSeconds;
            expiresAt = sourceExpiresAt;
        }
    }

    /// <summary>
    /// Resolves the fork position. Below the source's effective retained start the boundaries are gone, so a position
    /// there cannot be checked for alignment: it is accepted (the fork inherits nothing readable there; its reads below
    /// its effective start answer 410 and its own appends start at the fork position), and the dropped range counts as
    /// one message (JSON) or append (binary) ending at the retained start. Stores are never asked about a position
    /// below <paramref name="retainedStart"/>.
    /// </summary>
    /// <param name="fork">The request.</param>
    /// <param name="tail">The source's committed tail.</param>
    /// <param name="retainedStart">The source's effective retained start (<see cref="ForkSource.RetainedStart"/>).</param>
    /// <param name="isJson">Whether the source is a JSON stream.</param>
    /// <param name="boundaries">The source's message (JSON) or append boundaries at or above <paramref name="retainedStart"/>.</param>
    /// <param name="anchor">The anchor as resolved (what an idempotent re-create is compared with).</param>
    /// <param name="position">The fork position.</param>
    public static CreateStatus ResolvePosition<TBoundaries>(
        ForkRequest fork, long tail, long retainedStart, bool isJson, TBoundaries boundaries,
        out StreamOffset anchor, out long position)
        where TBoundaries : IStreamBoundaries
    {
        ArgumentNullException.ThrowIfNull(fork);
        return Resolve(fork, tail, isJson, new RetainedBoundaries<TBoundaries>(boundaries, retainedStart), out anchor, out position);
    }

    private static CreateStatus Resolve<TBoundaries>(
        ForkRequest fork, long tail, bool isJson, RetainedBoundaries<TBoundaries> boundaries,
        out StreamOffset anchor, out long position)
        where TBoundaries : IStreamBoundaries
    {
        position = fork.Offset?.Position ?? tail;
        anchor = new StreamOffset(position);
        if (position > tail)
        {
            return CreateStatus.ForkOffsetBeyondTail;
        }
        if (isJson && !boundaries.IsBoundary(position))
        {
            return CreateStatus.ForkOffsetUnaligned;
        }
        if (fork.SubOffset == 0)
        {
            return CreateStatus.Created;
        }
        if (isJson)
        {
            // JSON sub-offsets count whole messages past the anchor.
            for (var i = 0L; i < fork.SubOffset; i++)
            {
                if (position >= tail)
                {
                    return CreateStatus.SubOffsetOutOfRange;
                }
                position = boundaries.NextBoundary(position);
            }
            return CreateStatus.Created;
        }
        // Binary sub-offsets count bytes, but never past the end of the append the anchor is in.
        if (position + fork.SubOffset > boundaries.NextBoundary(position))
        {
            return CreateStatus.SubOffsetOutOfRange;
        }
        position += fork.SubOffset;
        return CreateStatus.Created;
    }

    /// <summary>
    /// A source's boundaries with the dropped range below its retained start as one unit: every position there counts as
    /// a boundary and its next boundary is the start.
    /// </summary>
    private readonly struct RetainedBoundaries<TBoundaries>(TBoundaries boundaries, long retainedStart) : IStreamBoundaries
        where TBoundaries : IStreamBoundaries
    {
        public bool IsBoundary(long position) => position < retainedStart || boundaries.IsBoundary(position);

        public long NextBoundary(long position) => position < retainedStart ? retainedStart : boundaries.NextBoundary(position);
    }
}
