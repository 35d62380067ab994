using System.Diagnostics.Metrics;
using DurableStreams.Core.Compaction;
using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableStreams.Core.Retention;

/// <summary>What one pass of the <see cref="RetentionJob"/> did.</summary>
/// <param name="Streams">Streams the pass applied a policy to (streams whose policy keeps everything are skipped).</param>
/// <param name="Trimmed">Streams whose retained start moved.</param>
/// <param name="BytesDropped">Logical bytes the retained starts moved forward by.</param>
/// <param name="BytesFreed">Storage the stores released.</param>
/// <param name="Failed">Streams whose pass failed (logged; the pass went on with the next stream).</param>
/// <param name="Compacted">Streams whose prefix was replaced by its State-Protocol snapshot.</param>
public readonly record struct RetentionPass(int Streams, int Trimmed, long BytesDropped, long BytesFreed, int Failed, int Compacted = 0);

/// <summary>
/// The background retention job (issue 18): every <c>interval</c> it lists the store's streams, resolves each name's
/// policy through the same <see cref="RetentionPolicies"/> the store was given, skips streams whose policy keeps
/// everything, and calls <see cref="IStreamRetention.ApplyRetentionAsync"/> for the rest, one stream at a time; then,
/// for a stream whose policy has <see cref="RetentionPolicy.Compaction"/> (and a store that implements
/// <see cref="IStreamCompaction"/>), compacts it when due (<see cref="StateCompactor.CompactAsync"/>, not forced).
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>One stream's failure is logged (<see cref="LogEvents.RetentionStreamFailed"/>) and never stops the pass; a failure
/// to list the streams ends that pass (<see cref="LogEvents.RetentionPassFailed"/>) and the next tick tries again.</item>
/// <item>Never two passes at once: a tick that arrives while a pass runs is skipped, and <see cref="RunPassAsync"/> joins
/// the running pass.</item>
/// <item>A pass is not bounded: it visits every listed stream with a policy (each visit is one short store call, so the
/// work is proportional to the number of such streams, not to their size).</item>
/// <item><see cref="DisposeAsync"/> stops the timer, cancels a running pass and waits for it.</item>
/// </list>
/// Instruments, on a meter named <see cref="MeterName"/>: <c>durable_streams.retention.passes</c>,
/// <c>durable_streams.retention.streams_trimmed</c>, <c>durable_streams.retention.dropped</c>,
/// <c>durable_streams.retention.freed</c>, <c>durable_streams.retention.failures</c> (counters), and the gauge
/// <c>durable_streams.retention.lag</c>: seconds since the last pass completed (since the job started, before the first
/// one) — the longest data can have outlived its policy beyond the policy's own granularity; it grows past the
/// interval only when passes stall or run long.
/// <para>
/// Compaction: a stream whose last attempt built a snapshot that was not smaller, or too large, is not read again until
/// its tail has grown by the policy's <see cref="CompactionPolicy.MinBytes"/> since (remembered in memory, per stream
/// incarnation). Instruments: <c>durable_streams.compaction.runs</c> (tag <c>outcome</c>: <c>compacted</c>,
/// <c>not_smaller</c>, <c>too_large</c>, <c>conflict</c>, <c>failed</c>; streams not due are not counted),
/// <c>durable_streams.compaction.bytes_before</c> and <c>.bytes_after</c> (bytes of the replaced prefixes and of their
/// snapshots), <c>durable_streams.compaction.partial</c> (compactions that kept messages they did not understand). Logs:
/// <see cref="LogEvents.CompactionCompleted"/> (Information) per compaction, <see cref="LogEvents.CompactionPartial"/>
/// (Warning, once per stream), <see cref="LogEvents.CompactionTooLarge"/> (Warning), <see cref="LogEvents.CompactionFailed"/> (Error).
/// </para>
/// </remarks>
public sealed partial class RetentionJob : IAsyncDisposable
{
    /// <summary>The name of the job's meter.</summary>
    public const string MeterName = "DurableStreams.Retention";

    private readonly IStreamRetention _store;
    private readonly IStreamCatalog _catalog;
    private readonly RetentionPolicies _policies;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private readonly Meter _meter;
    private readonly Counter<long> _passes;
    private readonly Counter<long> _trimmed;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _freed;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _compactionRuns;
    private readonly Counter<long> _compactionBytesBefore;
    private readonly Counter<long> _compactionBytesAfter;
    private readonly Counter<long> _compactionPartial;
    private readonly IStreamStore? _compactable;
    private readonly Dictionary<string, (long Incarnation, long RetryAt)> _compactionSkips = [];
    private readonly HashSet<string> _partialWarned = [];
    private readonly ITimer _timer;
    private Task<RetentionPass>? _current;
    private long _lastCompletedTicks;
    private bool _disposed;

    /// <param name="store">The store to trim (and to compact, when it is an <see cref="IStreamStore"/> implementing <see cref="IStreamCompaction"/>).</param>
    /// <param name="catalog">Where the stream names come from (the store itself: every store implements <see cref="IStreamCatalog"/>).</param>
    /// <param name="policies">The policy table (the one the store was opened with, so append times were recorded for age policies).</param>
    /// <param name="interval">Time between passes; the first pass runs one interval after the start.</param>
    /// <param name="timeProvider">The clock of the timer and the lag gauge; default the system clock.</param>
    /// <param name="loggerFactory">Where failures are logged; default none.</param>
    public RetentionJob(IStreamRetention store, IStreamCatalog catalog, RetentionPolicies policies, TimeSpan interval, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(policies);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        _store = store;
        _catalog = catalog;
        _policies = policies;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<RetentionJob>();
        _lastCompletedTicks = _time.GetUtcNow().UtcTicks;
        _meter = new Meter(MeterName);
        _passes = _meter.CreateCounter<long>("durable_streams.retention.passes", "{pass}", "Retention passes completed.");
        _trimmed = _meter.CreateCounter<long>("durable_streams.retention.streams_trimmed", "{stream}", "Times a stream's retained start moved forward.");
        _dropped = _meter.CreateCounter<long>("durable_streams.retention.dropped", "By", "Logical bytes retention dropped from the front of streams (how far retained starts moved).");
        _freed = _meter.CreateCounter<long>("durable_streams.retention.freed", "By", "Storage released by retention (whole blocks, pages or rows below retained starts).");
        _failures = _meter.CreateCounter<long>("durable_streams.retention.failures", "{stream}", "Streams whose retention pass failed (logged).");
        _compactionRuns = _meter.CreateCounter<long>("durable_streams.compaction.runs", "{run}", "State-Protocol compactions attempted on due streams, by outcome (compacted, not_smaller, too_large, conflict, failed).");
        _compactionBytesBefore = _meter.CreateCounter<long>("durable_streams.compaction.bytes_before", "By", "Bytes of the prefixes compactions replaced.");
        _compactionBytesAfter = _meter.CreateCounter<long>("durable_streams.compaction.bytes_after", "By", "Bytes of the snapshots that replaced them.");
        _compactionPartial = _meter.CreateCounter<long>("durable_streams.compaction.partial", "{compaction}", "Compactions that kept messages they did not understand as they were.");
        _compactable = store is IStreamStore streams and IStreamCompaction ? streams : null;
        _meter.CreateObservableGauge("durable_streams.retention.lag", () => Lag.TotalSeconds, "s", "Seconds since the last retention pass completed (since the job started, before the first).");
        _timer = _time.CreateTimer(static state => ((RetentionJob)state!).Tick(), this, interval, interval);
    }

    /// <summary>
    /// Starts a job for <paramref name="store"/> when it can be trimmed and listed and some policy drops data, or some
    /// policy compacts and the store can compact; null otherwise (nothing to do).
    /// </summary>
    public static RetentionJob? StartFor(IStreamStore store, RetentionPolicies policies, TimeSpan interval, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(policies);
        return (policies.Any || (policies.AnyCompaction && store is IStreamCompaction)) && store is IStreamRetention retention && store is IStreamCatalog catalog
            ? new RetentionJob(retention, catalog, policies, interval, timeProvider, loggerFactory)
            : null;
    }

    /// <summary>Time since the last pass completed (since the job started, before the first).</summary>
    public TimeSpan Lag => _time.GetUtcNow() - new DateTimeOffset(Interlocked.Read(ref _lastCompletedTicks), TimeSpan.Zero);

    /// <summary>The running pass, or the last one (null before the first); for tests that await a tick's pass.</summary>
    internal Task<RetentionPass>? CurrentPass
    {
        get
        {
            lock (_lock)
            {
                return _current;
            }
        }
    }

    /// <summary>Runs a pass now, or joins the one that is running.</summary>
    public Task<RetentionPass> RunPassAsync()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_current is { IsCompleted: false } running)
            {
                return running;
            }
            _current = PassAsync(_stopping.Token);
            return _current;
        }
    }

    private void Tick()
    {
        lock (_lock)
        {
            if (_disposed || _current is { IsCompleted: false })
            {
                // Never two passes at once: this tick is skipped.
                return;
            }
            _current = PassAsync(_stopping.Token);
        }
    }

    private async Task<RetentionPass> PassAsync(CancellationToken cancellationToken)
    {
        // Off the caller's (timer's) thread, and out of the lock: store calls may block (PostgreSQL lists synchronously).
        await Task.Yield();
        IReadOnlyList<string> names;
        try
        {
            names = _catalog.ListStreamNames();
        }
        catch (Exception ex)
        {
            LogPassFailed(_logger, ex);
            return default;
        }
        int streams = 0, trimmed = 0, failed = 0, compacted = 0;
        long dropped = 0, freed = 0;
        foreach (var name in names)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            var policy = _policies.Resolve(name);
            var compaction = _compactable is null ? null : policy.Compaction;
            if (!policy.DropsData && compaction is null)
            {
                continue;
            }
            streams++;
            try
            {
                if (policy.DropsData)
                {
                    var result = await _store.ApplyRetentionAsync(name, policy, cancellationToken).ConfigureAwait(false);
                    if (result.Status == RetentionStatus.Trimmed)
                    {
                        trimmed++;
                        dropped += result.BytesDropped;
                        _trimmed.Add(1);
                        _dropped.Add(result.BytesDropped);
                    }
                    // A store may free leftovers of an earlier pass (rows or pages a failure left behind) without moving the start.
                    if (result.Status == RetentionStatus.Trimmed || result.BytesFreed > 0)
                    {
                        freed += result.BytesFreed;
                        _freed.Add(result.BytesFreed);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                failed++;
                _failures.Add(1);
                LogStreamFailed(_logger, name, ex);
                continue;
            }
            if (compaction is null)
            {
                continue;
            }
            try
            {
                if (await CompactAsync(_compactable!, name, compaction, cancellationToken).ConfigureAwait(false) is { Status: CompactionStatus.Compacted } outcome)
                {
                    compacted++;
                    freed += outcome.BytesFreed;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                failed++;
                _compactionRuns.Add(1, new KeyValuePair<string, object?>("outcome", "failed"));
                LogCompactionFailed(_logger, name, ex);
            }
        }
        if (!cancellationToken.IsCancellationRequested)
        {
            Interlocked.Exchange(ref _lastCompletedTicks, _time.GetUtcNow().UtcTicks);
            _passes.Add(1);
        }
        return new RetentionPass(streams, trimmed, dropped, freed, failed, compacted);
    }

    /// <summary>
    /// Compacts one stream if due (skipping one whose last snapshot was not smaller or too large until it has grown by
    /// <see cref="CompactionPolicy.MinBytes"/>), and counts and logs what happened.
    /// </summary>
    private async Task<CompactionOutcome> CompactAsync(IStreamStore store, string name, CompactionPolicy policy, CancellationToken cancellationToken)
    {
        var metadata = await store.GetMetadataAsync(name, cancellationToken).ConfigureAwait(false);
        if (metadata.Info is not { } info)
        {
            _compactionSkips.Remove(name);
            _partialWarned.Remove(name);
            return new CompactionOutcome(CompactionStatus.NotFound);
        }
        if (_compactionSkips.TryGetValue(name, out var skip))
        {
            if (skip.Incarnation == info.Incarnation && info.Tail.Position < skip.RetryAt)
            {
                return new CompactionOutcome(CompactionStatus.NotDue);
            }
            _compactionSkips.Remove(name);
        }
        var outcome = await StateCompactor.CompactAsync(store, name, policy, force: false, cancellationToken).ConfigureAwait(false);
        var label = outcome.Status switch
        {
            CompactionStatus.Compacted => "compacted",
            CompactionStatus.NotSmaller => "not_smaller",
            CompactionStatus.TooLarge => "too_large",
            CompactionStatus.Conflict => "conflict",
            _ => null,
        };
        if (label is not null)
        {
            _compactionRuns.Add(1, new KeyValuePair<string, object?>("outcome", label));
        }
        switch (outcome.Status)
        {
            case CompactionStatus.Compacted:
                _compactionBytesBefore.Add(outcome.BytesBefore);
                _compactionBytesAfter.Add(outcome.BytesAfter);
                LogCompacted(_logger, name, outcome.BytesBefore, outcome.BytesAfter, outcome.LiveKeys, outcome.UnknownMessages);
                if (outcome.Partial)
                {
                    _compactionPartial.Add(1);
                    if (_partialWarned.Add(name))
                    {
                        LogPartial(_logger, name, outcome.UnknownMessages);
                    }
                }
                break;
            case CompactionStatus.NotSmaller or CompactionStatus.TooLarge:
                _compactionSkips[name] = (info.Incarnation, info.Tail.Position + policy.MinBytes);
                if (outcome.Status == CompactionStatus.TooLarge)
                {
                    LogTooLarge(_logger, name, policy.MaxSnapshotBytes);
                }
                break;
            case CompactionStatus.NotFound:
                _compactionSkips.Remove(name);
                _partialWarned.Remove(name);
                break;
        }
        return outcome;
    }

    /// <summary>Stops the timer, cancels a running pass and waits for it to end.</summary>
    public async ValueTask DisposeAsync()
    {
        Task? running;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            running = _current;
        }
        await _timer.DisposeAsync().ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (running is not null)
        {
            // A pass ends on cancellation without throwing; a store call that ignores the token is waited for.
            await running.ConfigureAwait(false);
        }
        _stopping.Dispose();
        _meter.Dispose();
    }

    [LoggerMessage(EventId = LogEvents.RetentionStreamFailed, Level = LogLevel.Error, Message = "Retention failed for stream '{Stream}'; the pass goes on and the next one retries it.")]
    private static partial void LogStreamFailed(ILogger logger, string stream, Exception exception);

    [LoggerMessage(EventId = LogEvents.CompactionCompleted, Level = LogLevel.Information, Message = "Compacted stream '{Stream}': {BytesBefore} bytes replaced by a snapshot of {BytesAfter} bytes ({LiveKeys} live keys, {UnknownMessages} messages kept as they were).")]
    private static partial void LogCompacted(ILogger logger, string stream, long bytesBefore, long bytesAfter, int liveKeys, int unknownMessages);

    [LoggerMessage(EventId = LogEvents.CompactionPartial, Level = LogLevel.Warning, Message = "Stream '{Stream}' holds messages that are not State-Protocol changes or control messages ({UnknownMessages} in this compaction): they are kept as they are and its compaction is partial. Logged once per stream.")]
    private static partial void LogPartial(ILogger logger, string stream, int unknownMessages);

    [LoggerMessage(EventId = LogEvents.CompactionTooLarge, Level = LogLevel.Warning, Message = "Stream '{Stream}' was not compacted: its snapshot would exceed {MaxSnapshotBytes} bytes. It is tried again once it has grown by the policy's minimum.")]
    private static partial void LogTooLarge(ILogger logger, string stream, long maxSnapshotBytes);

    [LoggerMessage(EventId = LogEvents.CompactionFailed, Level = LogLevel.Error, Message = "Compaction failed for stream '{Stream}'; nothing changed, the pass goes on and the next one retries it.")]
    private static partial void LogCompactionFailed(ILogger logger, string stream, Exception exception);

    [LoggerMessage(EventId = LogEvents.RetentionPassFailed, Level = LogLevel.Error, Message = "A retention pass could not list the streams; the next pass retries.")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);
}
