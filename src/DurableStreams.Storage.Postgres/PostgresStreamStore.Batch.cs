using DurableStreams.Core;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

public sealed partial class PostgresStreamStore
{
    /// <summary>Most appends one batch carries.</summary>
    private const int MaxAppendBatch = 64;

    private readonly object _batchGate = new();
    private readonly List<QueuedAppend?> _queuedAppends = [];
    private readonly HashSet<string> _batchedStreams = new(StringComparer.Ordinal);
    private int _runningBatches;
    private long _appendsInSharedCommits;
    private long _batchesRunByCaller;
    private TaskCompletionSource? _queuedSignal;

    /// <summary>Test hook: appends committed in a batch with at least one other append (one shared commit).</summary>
    internal long AppendsInSharedCommits => Interlocked.Read(ref _appendsInSharedCommits);

    /// <summary>Test hook: batches run by the append that started them (on its caller's flow, not a pool thread).</summary>
    internal long BatchesRunByCaller => Interlocked.Read(ref _batchesRunByCaller);

    /// <summary>Test hook: completes once at least <paramref name="count"/> appends wait for a batch.</summary>
    internal async Task WaitForQueuedAppendsAsync(int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task signal;
            lock (_batchGate)
            {
                if (_queuedAppends.Count >= count)
                {
                    return;
                }
                signal = (_queuedSignal ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
            await signal.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private sealed class QueuedAppend(PreparedAppend append)
    {
        public PreparedAppend Append { get; } = append;
        public TaskCompletionSource<(AppendStreamResult, bool)> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// <see cref="PostgresStreamStoreOptions.BatchAppends"/>: the append waits for a batch (none waits when fewer than
    /// <see cref="PostgresStreamStoreOptions.AppendBatches"/> batches are running, so a lone append goes at once). A batch
    /// is one round trip of <c>ds_append</c> calls in one implicit transaction, so one commit, at most one append per
    /// stream (a stream's next append waits for the batch, and any locking transaction, of the one before: order within
    /// a stream is arrival order), its rows locked in name order (two batches, on any nodes, never deadlock). Appends
    /// the function leaves to the locking transaction take it after the batch; a batch that fails is retried append by
    /// append, so a failure stays with the append that causes it.
    /// </summary>
    private async Task<(AppendStreamResult, bool)> AppendBatchedAsync(string name, AppendRequest request, CancellationToken ct)
    {
        if (PrepareInOne(name, request) is not { } prepared)
        {
            return await RunAsync(connection => AppendLockedAsync(connection, name, request, ct), ct).ConfigureAwait(false);
        }
        var queued = new QueuedAppend(prepared);
        TaskCompletionSource? signal;
        List<QueuedAppend>? own;
        lock (_batchGate)
        {
            _queuedAppends.Add(queued);
            own = DispatchLocked(queued);
            signal = _queuedSignal;
            _queuedSignal = null;
        }
        signal?.TrySetResult();
        if (own is not null)
        {
            // The batch carrying this append runs on the caller's flow: a lone append goes to the database without a
            // hop to a pool thread, and its answer comes back without another (RunBatchAsync never throws).
            Interlocked.Increment(ref _batchesRunByCaller);
            await RunBatchAsync(own).ConfigureAwait(false);
        }
        return await queued.Done.Task.ConfigureAwait(false);
    }

    /// <summary>
    /// Starts batches while fewer than <see cref="PostgresStreamStoreOptions.AppendBatches"/> run; returns the one that
    /// carries <paramref name="mine"/> (if any) for the caller to run, the others run on the thread pool.
    /// </summary>
    private List<QueuedAppend>? DispatchLocked(QueuedAppend? mine = null)
    {
        List<QueuedAppend>? own = null;
        while (_runningBatches < _options.AppendBatches && _queuedAppends.Count > 0)
        {
            List<QueuedAppend>? batch = null;
            for (var i = 0; i < _queuedAppends.Count && (batch?.Count ?? 0) < MaxAppendBatch; i++)
            {
                if (_queuedAppends[i] is { } queued && _batchedStreams.Add(queued.Append.Name))
                {
                    (batch ??= []).Add(queued);
                    _queuedAppends[i] = null;
                }
            }
            _queuedAppends.RemoveAll(static q => q is null);
            if (batch is null)
            {
                return own;
            }
            _runningBatches++;
            if (mine is not null && own is null && batch.Contains(mine))
            {
                own = batch;
            }
            else
            {
                _ = Task.Run(() => RunBatchAsync(batch));
            }
        }
        return own;
    }

    private async Task RunBatchAsync(List<QueuedAppend> batch)
    {
        try
        {
            (StreamRow? Row, bool Written)[] rows;
            try
            {
                rows = await RunAsync(connection => ExecuteBatchAsync(connection, batch), CancellationToken.None).ConfigureAwait(false);
            }
            catch (StoreUnavailableException ex)
            {
                // The database is gone (or the commit's fate unknown), for every append alike: each answers 503.
                foreach (var queued in batch)
                {
                    queued.Done.TrySetException(ex);
                }
                return;
            }
            catch (Exception) when (batch.Count > 1)
            {
                // The batch rolled back as a whole: each append again on its own, so only the failing one fails.
                foreach (var queued in batch)
                {
                    await CompleteAloneAsync(queued, locked: false).ConfigureAwait(false);
                }
                return;
            }
            // Committed: from here on nothing may send an append again (a failure below fails the batch's appends, the
            // outer catch, never the retry above).
            var outcomes = new (AppendStreamResult, bool)?[batch.Count];
            for (var i = 0; i < batch.Count; i++)
            {
                outcomes[i] = Decide(batch[i].Append, rows[i].Row, rows[i].Written);
            }
            if (batch.Count > 1)
            {
                Interlocked.Add(ref _appendsInSharedCommits, outcomes.Count(o => o is (_, true)));
            }
            for (var i = 0; i < batch.Count; i++)
            {
                if (outcomes[i] is { } outcome)
                {
                    batch[i].Done.TrySetResult(outcome);
                }
                else
                {
                    await CompleteAloneAsync(batch[i], locked: true).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex)
        {
            foreach (var queued in batch)
            {
                queued.Done.TrySetException(ex);
            }
        }
        finally
        {
            lock (_batchGate)
            {
                foreach (var queued in batch)
                {
                    _batchedStreams.Remove(queued.Append.Name);
                }
                _runningBatches--;
                DispatchLocked();
            }
        }
    }

    /// <summary>One append of a batch on its own: the locking transaction, or (after a failed batch) the unbatched path.</summary>
    private async Task CompleteAloneAsync(QueuedAppend queued, bool locked)
    {
        var (name, request) = (queued.Append.Name, queued.Append.Request);
        try
        {
            queued.Done.TrySetResult(await RunAsync(connection => locked
                ? AppendLockedAsync(connection, name, request, CancellationToken.None)
                : AppendInAsync(connection, name, request, CancellationToken.None), CancellationToken.None).ConfigureAwait(false));
        }
        catch (Exception ex)
        {
            queued.Done.TrySetException(ex);
        }
    }

    /// <summary>
    /// The batch's <c>ds_append</c> calls in one round trip. Without an explicit transaction the statements up to the one
    /// Sync run in one implicit transaction: they commit together, or roll back together when one fails.
    /// </summary>
    private async Task<(StreamRow? Row, bool Written)[]> ExecuteBatchAsync(NpgsqlConnection connection, List<QueuedAppend> batch)
    {
        var order = Enumerable.Range(0, batch.Count).ToArray();
        Array.Sort(order, (a, b) => string.CompareOrdinal(batch[a].Append.Name, batch[b].Append.Name));
        await using var command = new NpgsqlBatch(connection);
        foreach (var i in order)
        {
            var statement = new NpgsqlBatchCommand(AppendSql);
            AddAppendParameters(statement.Parameters, batch[i].Append);
            command.BatchCommands.Add(statement);
        }
        var rows = new (StreamRow? Row, bool Written)[batch.Count];
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            foreach (var i in order)
            {
                await reader.ReadAsync().ConfigureAwait(false);
                rows[i] = ReadAppendRow(reader);
                await reader.NextResultAsync().ConfigureAwait(false);
            }
        }
        return rows;
    }
}
