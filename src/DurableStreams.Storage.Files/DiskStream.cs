using DurableStreams.Core;
using DurableStreams.Core.Local;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

/// <summary>
/// One stream of the file store. Its own bytes live in one data file at (position - <see cref="LocalStream{TSelf}.BasePosition"/>); the
/// frame index, writer state and structure are committed through the commit log and checkpointed into LMDB. Two views
/// of the writer state exist: <see cref="Pending"/>
/// (what the rules evaluate: includes appends written but not yet durable) and <see cref="Committed"/> (durable,
/// published, what readers see). A failed sync resets Pending to Committed and cuts the file back.
/// </summary>
internal sealed class DiskStream : LocalStream<DiskStream>
{
    public DiskStream(StreamMeta meta, StreamState committed, DiskStream? source, string path)
        : base(meta.Name, committed, source, meta.BasePosition)
    {
        Meta = meta;
        Committed = committed;
        Pending = committed.Clone();
        FilePath = path;
    }

    public StreamMeta Meta { get; set; }
    public long Id => Meta.Id;
    public override long Incarnation => Meta.Id;
    public string FilePath { get; }

    /// <summary>Durable, published state; guarded by the gate.</summary>
    public StreamState Committed { get; set; }

    /// <summary>State including written-but-unsynced appends; guarded by the gate.</summary>
    public StreamState Pending { get; set; }

    public override StreamState ReaderState => Committed;

    public override StreamState WriterState => Pending;

    /// <summary>Committed frames in position order (loaded lazily), packed; guarded by the gate.</summary>
    public FrameIndex? Frames { get; set; }

    /// <summary>The data file, opened lazily; guarded by the gate for open/close.</summary>
    public SafeFileHandle? Handle { get; set; }

    /// <summary>Bumped when a failed commit resets <see cref="Pending"/>; tickets from an older generation fail.</summary>
    public int Generation { get; set; }

    /// <summary>
    /// The validity check of commit work queued now (under the gate): the work still applies while no failed commit has
    /// reset the stream since (<see cref="Generation"/>) and the stream has not been removed.
    /// </summary>
    public Func<bool> StillCurrent()
    {
        var generation = Generation;
        return () =>
        {
            lock (Gate)
            {
                return Generation == generation && !Removed;
            }
        };
    }

    /// <summary>Completes when the PUT that created the stream is durable (faults if it failed).</summary>
    public Task Created { get; set; } = Task.CompletedTask;

    /// <summary>The last commit ticket queued for this stream; rejections wait for it before answering.</summary>
    public Task LastCommit { get; set; } = Task.CompletedTask;

    /// <summary>Access ticks last made durable (<see cref="LocalStream{TSelf}.LastAccessTicks"/> runs ahead between persists).</summary>
    public long PersistedAccessTicks;

    public override bool SoftDeleted => Meta.SoftDeleted;

    /// <summary>
    /// The retained start the next state record carries: runs ahead of <see cref="LocalStream{TSelf}.RetainedStart"/>
    /// (published) while a retention commit is in flight, as <see cref="Pending"/> runs ahead of <see cref="Committed"/>;
    /// a failed commit resets it. Guarded by the gate.
    /// </summary>
    public long PendingRetainedStart { get; set; }

    /// <summary>
    /// The stream's last published compaction (issue 18): generation and the snapshot file's range; set under the gate
    /// together with <see cref="LocalStream{TSelf}.Space"/> and <see cref="LocalStream{TSelf}.RetainedStart"/>.
    /// </summary>
    public SnapshotSpan Compacted { get; set; }

    /// <summary>
    /// The compaction the next state record carries: runs ahead of <see cref="Compacted"/> while a compaction commit is
    /// in flight (as <see cref="PendingRetainedStart"/> does); a failed commit resets it. Guarded by the gate.
    /// </summary>
    public SnapshotSpan PendingCompacted { get; set; }

    /// <summary>True while a compaction of this stream is being written or committed (one at a time). Guarded by the gate.</summary>
    public bool Compacting { get; set; }

    /// <summary>
    /// The store-wide compaction sequence number of this stream's last published compaction (0: none since start-up):
    /// a read that began before it re-checks its offset against the new offset space. Guarded by the gate.
    /// </summary>
    public long CompactionSequence { get; set; }

    /// <summary>The retention policy resolved for this stream's name, once (the policies never change while open).</summary>
    public Core.Retention.RetentionPolicy? Policy { get; set; }

    /// <summary>Append-time samples, loaded on first use; only for streams whose policy has a maximum age. Guarded by the gate.</summary>
    public Core.Retention.AppendTimes? Times { get; set; }

    /// <summary>
    /// Logical position below which the data file's pages are released; null until a retention pass since start-up
    /// has looked (it finds the file's first data with SEEK_DATA and releases from there, which finishes a pass a crash
    /// interrupted). Guarded by the gate.
    /// </summary>
    public long? FreedBelow { get; set; }

    /// <summary>Index of the committed frame containing <paramref name="position"/>, or -1.</summary>
    public int FindFrame(long position) => Frames!.Find(position);
}
