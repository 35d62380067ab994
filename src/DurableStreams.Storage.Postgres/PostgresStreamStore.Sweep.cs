using DurableStreams.Core;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

/// <summary>The background sweep: expired streams and idle producers, shared by every node through <c>SKIP LOCKED</c>.</summary>
public sealed partial class PostgresStreamStore
{
    private void StartSweep()
    {
        lock (_sweepGate)
        {
            if (_disposed)
            {
                return;
            }
            var previous = _sweep;
            _sweep = Task.Run(async () =>
            {
                await previous.ConfigureAwait(false);
                try
                {
                    await SweepAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is StoreUnavailableException or NpgsqlException or ObjectDisposedException)
                {
                    // The next sweep tries again; every access also checks expiry itself.
                    if (!Volatile.Read(ref _disposed))
                    {
                        PostgresStoreLog.SweepFailed(_logger, ex);
                    }
                }
            });
        }
    }

    /// <summary>
    /// Expires streams past their TTL or expiry, 100 at a time. <c>SKIP LOCKED</c> lets every node sweep at once without
    /// waiting on each other or on writers.
    /// </summary>
    private async Task SweepAsync()
    {
        while (true)
        {
            var expired = await RunAsync(async connection =>
            {
                await using var tx = await connection.BeginTransactionAsync().ConfigureAwait(false);
                var rows = new List<StreamRow>();
                await using (var command = new NpgsqlCommand(
                    $"""
                    SELECT {StreamRow.Columns} FROM {_s}.ds_streams s
                    WHERE s.state = 0 AND (s.ttl_seconds IS NOT NULL OR s.expires_ticks IS NOT NULL)
                      AND (s.expires_ticks <= @now OR s.accessed_ticks + s.ttl_seconds * {TimeSpan.TicksPerSecond} <= @now)
                    ORDER BY s.id LIMIT 100 FOR UPDATE SKIP LOCKED
                    """, connection, tx))
                {
                    command.Parameters.AddWithValue("now", NowTicks);
                    await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
                    while (await reader.ReadAsync().ConfigureAwait(false))
                    {
                        rows.Add(StreamRow.Read(reader));
                    }
                }
                foreach (var row in rows)
                {
                    await ExpireAsync(connection, row, CancellationToken.None).ConfigureAwait(false);
                }
                await tx.CommitAsync().ConfigureAwait(false);
                return rows;
            }, CancellationToken.None).ConfigureAwait(false);
            foreach (var row in expired)
            {
                _hub.Committed(row.Name);
                Raise(StreamChangeKind.Expired, row.Name);
            }
            if (expired.Count < 100)
            {
                break;
            }
        }
        await SweepProducersAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes producer rows idle longer than the retention, 1,000 at a time (an index range scan on updated_ticks). An
    /// append that renews a producer meanwhile keeps its row: the delete re-checks updated_ticks on the row it locks.
    /// </summary>
    private async Task SweepProducersAsync()
    {
        if (_options.ProducerRetention == Timeout.InfiniteTimeSpan)
        {
            return;
        }
        while (true)
        {
            var deleted = await RunAsync(async connection =>
            {
                await using var command = new NpgsqlCommand(
                    $"""
                    DELETE FROM {_s}.ds_producers WHERE updated_ticks <= @cutoff AND (stream_id, producer_id) IN (
                        SELECT stream_id, producer_id FROM {_s}.ds_producers WHERE updated_ticks <= @cutoff LIMIT 1000)
                    """, connection);
                command.Parameters.AddWithValue("cutoff", NowTicks - _options.ProducerRetention.Ticks);
                return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
            }, CancellationToken.None).ConfigureAwait(false);
            if (deleted < 1000)
            {
                return;
            }
        }
    }
}
