using System.Globalization;
using System.Net;
using DurableStreams.Client.Internal;
using DurableStreams.Protocol;

namespace DurableStreams.Client;

// Over 500 lines on purpose: one state machine (queue, linger, pipelined batches, sequence-gap re-sends, epoch fencing,
// close) whose members share its lock and fields; split apart, they would pass that state around.
/// <summary>
/// Exactly-once appends (§5.2.1): messages are queued, batched (by <see cref="IdempotentProducerOptions.Linger"/> and
/// <see cref="IdempotentProducerOptions.MaxBatchBytes"/>) and sent with <c>Producer-Id</c>, <c>Producer-Epoch</c> and an
/// ordered <c>Producer-Seq</c>, up to <see cref="IdempotentProducerOptions.MaxInFlight"/> batches at a time; the stream
/// receives them in enqueue order. A network failure, timeout, 429 or 5xx re-sends the same (id, epoch, seq), which the
/// server deduplicates; a 403 (stale epoch) with auto-claim moves to the server's epoch + 1 and restarts at seq 0
/// (batches still in flight are re-numbered in order, and no new batch starts until they are settled). The first
/// failure that cannot be retried stops the producer and is thrown by later <see cref="AppendAsync"/>,
/// <see cref="FlushAsync"/> and <see cref="CloseAsync"/> calls. For JSON streams each message must be one JSON value;
/// batches are sent as an array.
/// </summary>
public sealed class IdempotentProducer : IAsyncDisposable
{
    private const int MaxClaims = 3;

    private readonly DurableStreamClient _client;
    private readonly Uri _url;
    private readonly string _contentType;
    private readonly bool _json;
    private readonly bool _autoClaim;
    private readonly IdempotentProducerOptions _options;
    private readonly Lock _gate = new();
    private readonly List<ReadOnlyMemory<byte>> _queue = [];
    private readonly List<TaskCompletionSource> _idleWaiters = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _worker;
    private long _queuedBytes;
    private long _firstQueuedAt;
    private int _inFlight;
    private bool _claiming;
    private Task? _lastSent;
    private bool _flushRequested;
    private bool _closed;
    private Exception? _failure;
    private string? _nextOffset;
    private int _replayedBatches;
    private Task<AppendResult>? _streamClose;
    private TaskCompletionSource _wake = NewSignal();

    internal IdempotentProducer(DurableStreamClient client, string name, string producerId, long epoch, string contentType, bool autoClaim, IdempotentProducerOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(producerId);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        ArgumentException.ThrowIfNullOrWhiteSpace(contentType);
        // Named after the option (camel-cased, as other clients name it), not "options", so the caller sees which setting
        // is wrong; CA2208 wants a parameter of this constructor, which would say less.
#pragma warning disable CA2208
        if (options.MaxBatchBytes < 1)
        {
            throw new ArgumentOutOfRangeException("maxBatchBytes", options.MaxBatchBytes, "IdempotentProducerOptions.MaxBatchBytes must be at least 1.");
        }
        if (options.MaxBatchItems < 1)
        {
            throw new ArgumentOutOfRangeException("maxBatchItems", options.MaxBatchItems, "IdempotentProducerOptions.MaxBatchItems must be at least 1.");
        }
        if (options.MaxInFlight < 1)
        {
            throw new ArgumentOutOfRangeException("maxInFlight", options.MaxInFlight, "IdempotentProducerOptions.MaxInFlight must be at least 1.");
        }
#pragma warning restore CA2208
        _client = client;
        _url = client.StreamUrl(name);
        Name = name;
        ProducerId = producerId;
        Epoch = epoch;
        _contentType = contentType;
        _json = ContentTypes.IsJson(contentType);
        _autoClaim = autoClaim;
        _options = options;
        _worker = Task.Run(RunAsync);
    }

    /// <summary>The stream name (or URL) the producer appends to.</summary>
    public string Name { get; }

    /// <summary>The producer id sent with every append (<c>Producer-Id</c>).</summary>
    public string ProducerId { get; }

    /// <summary>The epoch in use; grows when auto-claim takes over from a newer one.</summary>
    public long Epoch { get; private set; }

    /// <summary>The <c>Producer-Seq</c> the next batch will carry (batches take consecutive values when they are sent).</summary>
    public long NextSeq { get; private set; }

    /// <summary>
    /// Batches the server answered as duplicates (204) although no earlier attempt of this producer could have stored
    /// them: an earlier run with the same producer id and epoch already appended those sequence numbers, so their data
    /// was not appended again. A duplicate after a retry (the first attempt did land) is not counted.
    /// </summary>
    public int ReplayedBatches => Volatile.Read(ref _replayedBatches);

    /// <summary>The tail after the acknowledged batches (the furthest offset acknowledged so far), or null before the first.</summary>
    public string? NextOffset
    {
        get
        {
            lock (_gate)
            {
                return _nextOffset;
            }
        }
        private set
        {
            lock (_gate)
            {
                // Offsets are fixed-width and ordinal-sortable; pipelined acknowledgements may arrive out of order.
                if (value is not null && (_nextOffset is null || string.CompareOrdinal(value, _nextOffset) > 0))
                {
                    _nextOffset = value;
                }
            }
        }
    }

    /// <summary>Queues one message (for JSON streams, one JSON value). Completes once queued, not once sent; see <see cref="FlushAsync"/>.</summary>
    public ValueTask AppendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (message.IsEmpty)
        {
            throw new ArgumentException("A message must not be empty.", nameof(message));
        }
        lock (_gate)
        {
            ThrowIfUnusable();
            if (_queue.Count == 0)
            {
                _firstQueuedAt = _client.Options.TimeProvider.GetTimestamp();
            }
            // Copy: the caller may reuse its buffer as soon as this returns.
            _queue.Add(message.ToArray());
            _queuedBytes += message.Length;
            Wake();
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>Sends everything queued so far without waiting for the linger, and completes when all of it is acknowledged.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        TaskCompletionSource idle;
        lock (_gate)
        {
            if (_failure is not null)
            {
                throw Failure();
            }
            if (_queue.Count == 0 && _inFlight == 0)
            {
                return;
            }
            idle = NewSignal();
            _idleWaiters.Add(idle);
            _flushRequested = true;
            Wake();
        }
        await idle.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            if (_failure is not null)
            {
                throw Failure();
            }
        }
    }

    /// <summary>
    /// Flushes, stops the producer and, when <paramref name="closeStream"/> is true, closes the stream (see
    /// <see cref="CloseStreamAsync"/>).
    /// </summary>
    public async Task CloseAsync(bool closeStream = false, CancellationToken cancellationToken = default)
    {
        if (closeStream)
        {
            await CloseStreamAsync(default, cancellationToken).ConfigureAwait(false);
            return;
        }
        lock (_gate)
        {
            if (_closed && _failure is null && !closeStream)
            {
                return;
            }
        }
        try
        {
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                _closed = true;
                Wake();
            }
        }
        await _worker.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Flushes, stops the producer and closes the stream with one more request under the producer's headers (the next
    /// <c>Producer-Seq</c>, with <c>Stream-Closed: true</c>), carrying <paramref name="finalMessage"/> (one message, as
    /// for <see cref="AppendAsync"/>; none when empty) atomically with the close. A retry of that request is
    /// deduplicated by the server; a stream already closed by another writer fails with
    /// <see cref="DurableStreamErrorCode.StreamClosed"/>. Calling it again returns the first call's result.
    /// </summary>
    public async Task<AppendResult> CloseStreamAsync(ReadOnlyMemory<byte> finalMessage = default, CancellationToken cancellationToken = default)
    {
        Task<AppendResult>? closing;
        lock (_gate)
        {
            closing = _streamClose;
        }
        if (closing is null)
        {
            await CloseAsync(closeStream: false, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                _streamClose ??= SendStreamCloseAsync(finalMessage.ToArray());
                closing = _streamClose;
            }
        }
        return await closing.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<AppendResult> SendStreamCloseAsync(byte[] finalMessage)
    {
        Batch batch;
        lock (_gate)
        {
            batch = new Batch(finalMessage.Length == 0 ? [] : Encode([finalMessage]), Epoch, NextSeq++, _lastSent) { CloseStream = true };
        }
        await SendBatchAsync(batch, CancellationToken.None).ConfigureAwait(false);
        return new AppendResult(NextOffset ?? string.Empty, Closed: true);
    }

    /// <summary>Flushes and stops the producer (the stream stays open). Throws if queued messages could not be sent.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await CloseAsync(closeStream: false).ConfigureAwait(false);
        }
        finally
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await _worker.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _stopping.Dispose();
        }
    }

    private async Task RunAsync()
    {
        var time = _client.Options.TimeProvider;
        Task? linger = null;
        long lingerFor = -1;
        while (true)
        {
            Task wait;
            bool stopping;
            lock (_gate)
            {
                stopping = _failure is not null;
                if (_inFlight == 0 && (_failure is not null || (_closed && _queue.Count == 0)))
                {
                    CompleteIdleWaiters();
                    return;
                }
                if (_failure is not null || _queue.Count == 0 || _inFlight >= _options.MaxInFlight || _claiming)
                {
                    // Nothing to send, or no room: a queued message or a settled batch wakes the worker.
                    CompleteIdleWaiters();
                    wait = _wake.Task;
                }
                else
                {
                    var lingerLeft = _options.Linger - time.GetElapsedTime(_firstQueuedAt);
                    if (_flushRequested || _closed || _queuedBytes >= _options.MaxBatchBytes || _queue.Count >= _options.MaxBatchItems || lingerLeft <= TimeSpan.Zero)
                    {
                        var batch = new Batch(Encode(TakeBatch()), Epoch, NextSeq++, _lastSent);
                        _lastSent = batch.Settled.Task;
                        _inFlight++;
                        _ = SendAndSettleAsync(batch);
                        continue;
                    }
                    // One timer per batch, not per wake-up: appends wake the worker but do not restart the linger.
                    if (linger is null || lingerFor != _firstQueuedAt)
                    {
                        linger = Task.Delay(lingerLeft, time, _stopping.Token);
                        lingerFor = _firstQueuedAt;
                    }
                    wait = Task.WhenAny(_wake.Task, linger);
                }
            }
            if (stopping)
            {
                // Failed: only wait for the batches still in flight to settle.
                await wait.ConfigureAwait(false);
                continue;
            }
            try
            {
                await wait.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Fail(new ObjectDisposedException(nameof(IdempotentProducer)));
            }
        }
    }

    private async Task SendAndSettleAsync(Batch batch)
    {
        try
        {
            await SendBatchAsync(batch, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
        finally
        {
            lock (_gate)
            {
                _inFlight--;
                if (_inFlight == 0)
                {
                    _claiming = false;
                }
                batch.Settled.TrySetResult();
                CompleteIdleWaiters();
                Wake();
            }
        }
    }

    private List<ReadOnlyMemory<byte>> TakeBatch()
    {
        var count = 0;
        long bytes = 0;
        while (count < _queue.Count && (count == 0 || (count < _options.MaxBatchItems && bytes + _queue[count].Length <= _options.MaxBatchBytes)))
        {
            bytes += _queue[count].Length;
            count++;
        }
        var batch = _queue.GetRange(0, count);
        _queue.RemoveRange(0, count);
        _queuedBytes -= bytes;
        _firstQueuedAt = _client.Options.TimeProvider.GetTimestamp();
        return batch;
    }

    private async Task SendBatchAsync(Batch batch, CancellationToken cancellationToken)
    {
        var retry = _client.Options.Retry;
        var attempt = 0;
        var claims = 0;
        // Whether an attempt of this batch (at its current epoch and seq) may have been stored: one with no answer or a
        // retryable error. A 204 after such an attempt is our own retry; without one it is a replay of an earlier run.
        var mayHaveLanded = false;
        while (true)
        {
            attempt++;
            DurableStreamException failure;
            TimeSpan? retryAfter = null;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(_client.Options.RequestTimeout);
                // A gap reported while the predecessor was still unsettled may only mean this batch overtook it.
                var previousPending = batch.Previous is { IsCompleted: false };
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new ReadOnlyMemoryContent(batch.Body) };
                    request.Content.Headers.TryAddWithoutValidation("Content-Type", _contentType);
                    request.Headers.TryAddWithoutValidation(ProtocolHeaders.ProducerId, ProducerId);
                    request.Headers.TryAddWithoutValidation(ProtocolHeaders.ProducerEpoch, batch.Epoch.ToString(CultureInfo.InvariantCulture));
                    request.Headers.TryAddWithoutValidation(ProtocolHeaders.ProducerSeq, batch.Seq.ToString(CultureInfo.InvariantCulture));
                    if (batch.CloseStream)
                    {
                        request.Headers.TryAddWithoutValidation(ProtocolHeaders.StreamClosed, "true");
                    }
                    using var response = await _client.SendAsync(request, timeout.Token).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                    {
                        // 200 appended, 204 duplicate of an earlier attempt: both mean the batch is in the stream.
                        NextOffset = ResponseHeaders.Get(response, ProtocolHeaders.StreamNextOffset);
                        // (An empty batch that only closes the stream is answered 204 too.)
                        if (response.StatusCode == HttpStatusCode.NoContent && !mayHaveLanded && batch.Body.Length > 0)
                        {
                            Interlocked.Increment(ref _replayedBatches);
                        }
                        return;
                    }
                    failure = await ResponseHeaders.ErrorAsync(response, timeout.Token).ConfigureAwait(false);
                    if (failure.ErrorCode == DurableStreamErrorCode.StaleEpoch && _autoClaim && claims < MaxClaims && failure.ProducerEpoch is { } serverEpoch)
                    {
                        claims++;
                        await ClaimAsync(batch, serverEpoch, cancellationToken).ConfigureAwait(false);
                        attempt = 0;
                        mayHaveLanded = false;
                        continue;
                    }
                    if (failure.ErrorCode == DurableStreamErrorCode.SequenceGap
                        && failure.ProducerExpectedSeq < batch.Seq
                        && previousPending
                        && batch.Previous is { } previous)
                    {
                        // This batch overtook its predecessor; send it again once the predecessor has settled.
                        await previous.WaitAsync(cancellationToken).ConfigureAwait(false);
                        ThrowIfFailed();
                        attempt--;
                        continue;
                    }
                    if (!ResponseHeaders.IsRetryable(response.StatusCode))
                    {
                        throw failure;
                    }
                    retryAfter = ResponseHeaders.RetryAfter(response, _client.Options.TimeProvider);
                    mayHaveLanded = true;
                }
                catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    mayHaveLanded = true;
                    failure = new DurableStreamException(DurableStreamErrorCode.Unavailable, null, $"No answer within {_client.Options.RequestTimeout}.", ex);
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException)
                {
                    mayHaveLanded = true;
                    failure = new DurableStreamException(DurableStreamErrorCode.Unavailable, null, ex.Message, ex);
                }
            }
            if (attempt >= Math.Max(1, retry.MaxAttempts))
            {
                DurableStreamException.Throw(failure);
            }
            var delay = retry.DelayFor(attempt, retryAfter);
            ClientLog.Retrying(_client.Logger, (long)delay.TotalMilliseconds, attempt, failure.Message);
            await Task.Delay(delay, _client.Options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Moves <paramref name="batch"/> to a newer epoch after a 403. Earlier batches settle first, so re-numbering keeps
    /// enqueue order: the first batch to see the 403 moves the producer to the server's epoch + 1 at seq 0, and later
    /// batches of the old epoch take the following seqs. No new batch starts until every batch in flight has settled.
    /// </summary>
    private async Task ClaimAsync(Batch batch, long serverEpoch, CancellationToken cancellationToken)
    {
        if (batch.Previous is { } previous)
        {
            await previous.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        lock (_gate)
        {
            ThrowIfFailed();
            if (batch.Epoch == Epoch)
            {
                Epoch = Math.Max(Epoch, serverEpoch) + 1;
                NextSeq = 0;
                _claiming = true;
            }
            batch.Epoch = Epoch;
            batch.Seq = NextSeq++;
        }
    }

    private void ThrowIfFailed()
    {
        lock (_gate)
        {
            if (_failure is not null)
            {
                throw Failure();
            }
        }
    }

    private byte[] Encode(List<ReadOnlyMemory<byte>> batch)
    {
        var length = 0;
        foreach (var message in batch)
        {
            length += message.Length;
        }
        if (_json)
        {
            length += batch.Count + 1; // '[' + separators + ']'
        }
        var body = new byte[length];
        var at = 0;
        if (_json)
        {
            body[at++] = (byte)'[';
        }
        for (var i = 0; i < batch.Count; i++)
        {
            if (_json && i > 0)
            {
                body[at++] = (byte)',';
            }
            batch[i].Span.CopyTo(body.AsSpan(at));
            at += batch[i].Length;
        }
        if (_json)
        {
            body[at] = (byte)']';
        }
        return body;
    }

    private void Fail(Exception exception)
    {
        lock (_gate)
        {
            _failure ??= exception;
            _queue.Clear();
            _queuedBytes = 0;
            CompleteIdleWaiters();
        }
    }

    private void ThrowIfUnusable()
    {
        if (_failure is not null)
        {
            throw Failure();
        }
        ObjectDisposedException.ThrowIf(_closed, this);
    }

    private DurableStreamException Failure() => _failure is DurableStreamException ds
        ? new DurableStreamException(ds.ErrorCode, ds.StatusCode, ds.Message, ds) { NextOffset = ds.NextOffset, ProducerEpoch = ds.ProducerEpoch, ProducerExpectedSeq = ds.ProducerExpectedSeq }
        : new DurableStreamException(DurableStreamErrorCode.Unknown, null, "The producer stopped: " + _failure!.Message, _failure);

    private void CompleteIdleWaiters()
    {
        if (_failure is null && (_queue.Count > 0 || _inFlight > 0))
        {
            return;
        }
        _flushRequested = false;
        foreach (var waiter in _idleWaiters)
        {
            waiter.TrySetResult();
        }
        _idleWaiters.Clear();
    }

    private void Wake()
    {
        var wake = _wake;
        _wake = NewSignal();
        wake.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>One batch on its way: its encoded body, its (epoch, seq), and when its predecessor has settled.</summary>
    private sealed class Batch(byte[] body, long epoch, long seq, Task? previous)
    {
        public byte[] Body { get; } = body;

        public long Epoch { get; set; } = epoch;

        public long Seq { get; set; } = seq;

        /// <summary>The stream-closing request (<c>Stream-Closed: true</c>), sent after every batch.</summary>
        public bool CloseStream { get; init; }

        /// <summary>Completes when the batch sent before this one has been acknowledged or has failed; null for the first.</summary>
        public Task? Previous { get; } = previous;

        /// <summary>Completed when this batch is acknowledged or has failed.</summary>
        public TaskCompletionSource Settled { get; } = NewSignal();
    }
}
