using DurableStreams.Core.Local;
using DurableStreams.Core.Retention;

namespace DurableStreams.Core.Memory;

/// <summary>
/// One stream in memory: its state, its own bytes (<see cref="MessageLog"/>), and — for a fork — the source entry and
/// the position where the fork's own data begins.
/// </summary>
internal sealed class InMemoryStream(string name, long incarnation, StreamState state, InMemoryStream? source, long forkPosition, AppendTimes? times = null)
    : LocalStream<InMemoryStream>(name, state, source, forkPosition)
{
    private bool _softDeleted;

    public override long Incarnation { get; } = incarnation;

    /// <summary>The writer state, which readers see as it changes (memory has no commit to wait for); guarded by the gate.</summary>
    public StreamState State { get; } = state;

    public override StreamState ReaderState => State;

    public override StreamState WriterState => State;

    /// <summary>The stream's own bytes, from the base position; guarded by the gate.</summary>
    public MessageLog Log { get; } = new(forkPosition);

    /// <summary>
    /// When the stream's data was appended, for an age policy; null when the stream's policy has no age bound (then
    /// nothing is recorded). Guarded by the gate.
    /// </summary>
    public AppendTimes? Times { get; } = times;

    /// <summary>Deleted while forks still need its data (410 to clients); set under the structure lock.</summary>
    public override bool SoftDeleted => _softDeleted;

    public void MarkSoftDeleted() => _softDeleted = true;
}
