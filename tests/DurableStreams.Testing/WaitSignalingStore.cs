using System.Collections.Concurrent;
using System.Threading.Channels;
using DurableStreams.Protocol;
using DurableStreams.Core;
using StoreAppendResult = DurableStreams.Core.AppendStreamResult;

namespace DurableStreams.Testing;

/// <summary>
/// Wraps a store and reports every live wait the server starts (a parked long-poll or SSE response), so a test appends
/// or advances the clock only once the reader is really waiting. No sleeps.
/// </summary>
public sealed class WaitSignalingStore(IStreamStore inner) : IStreamStore
{
    private readonly ConcurrentDictionary<string, Channel<StreamOffset>> _waits = new(StringComparer.Ordinal);

    public IStreamChangeFeed Changes => inner.Changes;

    /// <summary>Completes when the server has started the next not-yet-observed live wait on <paramref name="name"/>.</summary>
    public async Task<StreamOffset> WaitStartedAsync(string name, CancellationToken cancellationToken) =>
        await Waits(name).Reader.ReadAsync(cancellationToken);

    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        // The inner store schedules its deadline before returning, so advancing a fake clock after the report reaches it.
        var pending = inner.WaitAsync(name, offset, timeout, cancellationToken);
        Waits(name).Writer.TryWrite(offset);
        return pending;
    }

    public ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default) =>
        inner.CreateAsync(name, request, cancellationToken);

    public ValueTask<StoreAppendResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default) =>
        inner.AppendAsync(name, request, cancellationToken);

    public ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(name, request, cancellationToken);

    public ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default) =>
        inner.GetMetadataAsync(name, cancellationToken);

    public ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default) =>
        inner.DeleteAsync(name, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private Channel<StreamOffset> Waits(string name) => _waits.GetOrAdd(name, static _ => Channel.CreateUnbounded<StreamOffset>());
}
