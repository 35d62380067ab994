using DurableStreams.Core;
using DurableStreams.Core.Live;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

/// <summary>
/// One stream of the file store. Its own bytes live in one data file at (position - <see cref="BasePosition"/>); the
/// frame index, writer state and structure live in LMDB. Two views of the writer state exist: <see cref="Pending"/>
/// (what the rules evaluate: includes appends written but not yet durable) and <see cref="Committed"/> (durable,
/// published, what readers see). A failed sync resets Pending to Committed and cuts the file back.
/// </summary>
internal sealed class DiskStream
{
    public DiskStream(StreamMeta meta, StreamState committed, DiskStream? source, string path)
    {
        Meta = meta;
        Committed = committed;
        Pending = committed.Clone();
        Source = source;
        Depth = source is null ? 0 : source.Depth + 1;
        FilePath = path;
        IsJson = Protocol.ContentTypes.IsJson(meta.ContentType);
    }

    public readonly object Gate = new();

    public StreamMeta Meta { get; set; }
    public long Id => Meta.Id;
    public string Name => Meta.Name;
    public long BasePosition => Meta.BasePosition;
    public bool IsJson { get; }
    public DiskStream? Source { get; }

    /// <summary>Forks between this stream and the root of its chain: 0 for a stream that is not a fork.</summary>
    public int Depth { get; }
    public string FilePath { get; }

    /// <summary>Durable, published state; guarded by <see cref="Gate"/>.</summary>
    public StreamState Committed { get; set; }

    /// <summary>State including written-but-unsynced appends; guarded by <see cref="Gate"/>.</summary>
    public StreamState Pending { get; set; }

    /// <summary>Committed frames in position order (loaded lazily), packed; guarded by <see cref="Gate"/>.</summary>
    public FrameIndex? Frames { get; set; }

    /// <summary>The data file, opened lazily; guarded by <see cref="Gate"/> for open/close.</summary>
    public SafeFileHandle? Handle { get; set; }

    public StreamSignal Signal { get; } = new();

    /// <summary>Bumped when a failed commit resets <see cref="Pending"/>; tickets from an older generation fail.</summary>
    public int Generation { get; set; }

    /// <summary>Completes when the PUT that created the stream is durable (faults if it failed).</summary>
    public Task Created { get; set; } = Task.CompletedTask;

    /// <summary>The last commit ticket queued for this stream; rejections wait for it before answering.</summary>
    public Task LastCommit { get; set; } = Task.CompletedTask;

    /// <summary>Set when stored data failed its checksum; the stream then fails closed.</summary>
    public bool Corrupt { get; set; }

    public long LastAccessTicks;
    public long PersistedAccessTicks;

    /// <summary>Forks reading through this stream; guarded by the store's structure lock.</summary>
    public int RefCount;

    /// <summary>Gone from the name table (deleted or expired); guarded by the structure lock.</summary>
    public bool Removed;

    public bool SoftDeleted => Meta.SoftDeleted;

    /// <summary>Index of the committed frame containing <paramref name="position"/>, or -1.</summary>
    public int FindFrame(long position) => Frames!.Find(position);
}
