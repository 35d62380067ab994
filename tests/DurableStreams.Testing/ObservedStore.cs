using System.Collections.Concurrent;
using System.Threading.Channels;
using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;

namespace DurableStreams.Testing;

/// <summary>
/// Wraps a store and reports each live wait the server starts (a parked long-poll or SSE response), so a test appends,
/// closes or advances the fake clock only once the reader is really waiting. No sleeps. It can also make store calls
/// fail (<see cref="FailOn"/>) and watch reads (<see cref="BeforeRead"/>).
/// <para>
/// It passes every optional store interface through (<see cref="IStreamCatalog"/>, <see cref="IDirectReadStore"/>,
/// <see cref="IStreamRetention"/>), so
/// the server behind it takes the read and back-fill paths it takes in production; StoreWrapperTests fails when a
/// wrapper in the tests hides one. A store without an interface behaves as the server's fallback would.
/// </para>
/// </summary>
public sealed class ObservedStore(IStreamStore inner) : IStreamStore, IStreamCatalog, IDirectReadStore, IStreamRetention, DurableStreams.Core.Compaction.IStreamCompaction
{
    private readonly ConcurrentDictionary<string, Channel<StreamOffset>> _waits = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentQueue<WaitOutcome>> _outcomes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Channel<bool>> _cancellations = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _stopTokenWaits = new(StringComparer.Ordinal);

    public IStreamStore Inner => inner;

    public IStreamChangeFeed Changes => inner.Changes;

    /// <summary>When set, every store call on a stream it accepts throws, as a broken disk or database would.</summary>
    public Func<string, bool>? FailOn { get; set; }

    /// <summary>Called before every read reaches the inner store (and before <see cref="FailOn"/> is checked).</summary>
    public Action<string, ReadRequest>? BeforeRead { get; set; }

    /// <summary>Completes when the server has started the next not-yet-observed live wait on <paramref name="name"/>.</summary>
    public async Task<StreamOffset> WaitStartedAsync(string name, CancellationToken cancellationToken) =>
        await Waits(name).Reader.ReadAsync(cancellationToken);

    /// <summary>Live waits started on <paramref name="name"/> and not yet observed.</summary>
    public int UnobservedWaits(string name) => Waits(name).Reader.Count;

    /// <summary>Completes when a live wait on <paramref name="name"/> has ended by cancellation (disconnect or stop).</summary>
    public async Task WaitCancelledAsync(string name, CancellationToken cancellationToken) =>
        await Cancellations(name).Reader.ReadAsync(cancellationToken);

    /// <summary>How the finished live waits on <paramref name="name"/> ended, in order.</summary>
    public WaitOutcome[] WaitOutcomes(string name) => _outcomes.TryGetValue(name, out var queue) ? [.. queue] : [];

    /// <summary>Live waits on <paramref name="name"/> started with a separate stop token (no linked token source).</summary>
    public int WaitsWithStopToken(string name) => _stopTokenWaits.TryGetValue(name, out var count) ? count : 0;

    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ObserveAsync(name, offset, inner.WaitAsync(name, offset, timeout, cancellationToken));

    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken stopToken, CancellationToken cancellationToken)
    {
        if (stopToken.CanBeCanceled)
        {
            _stopTokenWaits.AddOrUpdate(name, 1, static (_, count) => count + 1);
        }
        return ObserveAsync(name, offset, inner.WaitAsync(name, offset, timeout, stopToken, cancellationToken));
    }

    private async ValueTask<WaitOutcome> ObserveAsync(string name, StreamOffset offset, ValueTask<WaitOutcome> pending)
    {
        // The inner store schedules its deadline synchronously, before its first await; report only after that, so
        // advancing the fake clock once the report arrives always reaches the deadline.
        Waits(name).Writer.TryWrite(offset);
        try
        {
            var outcome = await pending;
            _outcomes.GetOrAdd(name, static _ => new()).Enqueue(outcome);
            return outcome;
        }
        catch (OperationCanceledException)
        {
            Cancellations(name).Writer.TryWrite(true);
            throw;
        }
    }

    public ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default)
    {
        ThrowIfFailing(name);
        return inner.CreateAsync(name, request, cancellationToken);
    }

    public ValueTask<AppendStreamResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default)
    {
        ThrowIfFailing(name);
        return inner.AppendAsync(name, request, cancellationToken);
    }

    public ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default)
    {
        BeforeRead?.Invoke(name, request);
        ThrowIfFailing(name);
        return inner.ReadAsync(name, request, cancellationToken);
    }

    /// <summary>The inner store's positioned read where it has one, else the same fallback the server would use.</summary>
    public ValueTask<ReadStatus> ReadIntoAsync(string name, long position, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        BeforeRead?.Invoke(name, new ReadRequest(OffsetQuery.At(new StreamOffset(position)), destination.Length));
        ThrowIfFailing(name);
        return inner.ReadIntoAsync(name, position, destination, cancellationToken);
    }

    /// <summary>The inner store's read-end hint where it has one.</summary>
    public long ReadEnd(string name, long position, int maxBytes) =>
        inner is IDirectReadStore direct ? direct.ReadEnd(name, position, maxBytes) : position + maxBytes;

    public ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default)
    {
        ThrowIfFailing(name);
        return inner.GetMetadataAsync(name, cancellationToken);
    }

    public ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        ThrowIfFailing(name);
        return inner.DeleteAsync(name, cancellationToken);
    }

    /// <summary>The inner store's listing; a store without one lists nothing (no eager back-fill), as the server would.</summary>
    public IReadOnlyList<string> ListStreamNames() => inner is IStreamCatalog catalog ? catalog.ListStreamNames() : [];

    /// <summary>The inner store's retention; a store without it drops nothing.</summary>
    public ValueTask<RetentionResult> ApplyRetentionAsync(string name, RetentionPolicy policy, CancellationToken cancellationToken = default)
    {
        ThrowIfFailing(name);
        return inner is IStreamRetention retention
            ? retention.ApplyRetentionAsync(name, policy, cancellationToken)
            : new(new RetentionResult(RetentionStatus.Unchanged));
    }

    public ValueTask<DurableStreams.Core.Compaction.CompactionCommitResult> CommitCompactionAsync(string name, DurableStreams.Core.Compaction.CompactionCommit commit, CancellationToken cancellationToken = default)
    {
        ThrowIfFailing(name);
        return inner is DurableStreams.Core.Compaction.IStreamCompaction compaction
            ? compaction.CommitCompactionAsync(name, commit, cancellationToken)
            : new(new DurableStreams.Core.Compaction.CompactionCommitResult(DurableStreams.Core.Compaction.CompactionCommitStatus.NotApplicable));
    }

    /// <summary>Runs before the inner store is disposed (a test that checks what is still running at that point).</summary>
    public Func<ValueTask>? Disposing { get; set; }

    public async ValueTask DisposeAsync()
    {
        if (Disposing is { } disposing)
        {
            await disposing();
        }
        await inner.DisposeAsync();
    }

    private void ThrowIfFailing(string name)
    {
        if (FailOn?.Invoke(name) == true)
        {
            throw new InvalidOperationException("Simulated failure: SECRET-DETAIL at /var/lib/streams/segment-0042");
        }
    }

    private Channel<bool> Cancellations(string name) => _cancellations.GetOrAdd(name, static _ => Channel.CreateUnbounded<bool>());

    private Channel<StreamOffset> Waits(string name) => _waits.GetOrAdd(name, static _ => Channel.CreateUnbounded<StreamOffset>());
}
