namespace DurableStreams.Core.Compaction;

/// <summary>
/// State-Protocol compaction for a stream (issue 18; <c>"compaction": "state"</c> in a retention rule): when the
/// compaction is due, the stream's readable prefix is replaced by its snapshot (see <see cref="StateSnapshotBuilder"/>).
/// </summary>
/// <remarks>
/// Due (<see cref="CompactionRules.IsDue"/>) when the retained bytes (tail minus retained start) are at least
/// <see cref="MinBytes"/> and at least <see cref="MinRatio"/> times the last snapshot's size, and something was appended
/// since the last compaction. A snapshot is built in memory: one whose kept messages exceed
/// <see cref="MaxSnapshotBytes"/> is not built (the compaction is skipped and reported).
/// </remarks>
public sealed record CompactionPolicy
{
    /// <summary>Default <see cref="MinBytes"/>: 1 MiB.</summary>
    public const long DefaultMinBytes = 1L << 20;

    /// <summary>Default <see cref="MinRatio"/>: the stream has grown to twice its last snapshot.</summary>
    public const double DefaultMinRatio = 2.0;

    /// <summary>Default <see cref="MaxSnapshotBytes"/>: 64 MiB.</summary>
    public const long DefaultMaxSnapshotBytes = 64L << 20;

    /// <summary>State-Protocol compaction with the default thresholds.</summary>
    public static CompactionPolicy State { get; } = new();

    /// <summary>Fewest retained bytes worth compacting (default <see cref="DefaultMinBytes"/>).</summary>
    public long MinBytes { get; init; } = DefaultMinBytes;

    /// <summary>How many times its last snapshot's size the stream must have grown to (default <see cref="DefaultMinRatio"/>; at least 1).</summary>
    public double MinRatio { get; init; } = DefaultMinRatio;

    /// <summary>Most bytes a snapshot may hold while it is built (default <see cref="DefaultMaxSnapshotBytes"/>).</summary>
    public long MaxSnapshotBytes { get; init; } = DefaultMaxSnapshotBytes;
}
