using DurableStreams.Core;
using DurableStreams.Core.Compaction;
using DurableStreams.Core.Live;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using DurableStreams.Core.Subscriptions;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace DurableStreams.Storage.Postgres;

/// <summary>
/// The PostgreSQL store: any number of stateless server nodes share one database. Every write is one transaction that
/// locks the stream's row (<c>SELECT … FOR UPDATE</c>), evaluates the shared protocol rules against the row's state,
/// inserts the data and updates tail, producer state and closure before it commits, so offsets are byte positions that
/// every node agrees on. Live waits are node-local; <see cref="PostgresWakeHub"/> carries wake-ups between nodes.
/// </summary>
public sealed partial class PostgresStreamStore : IStreamStore, IStreamCatalog
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly HostRecheck _hosts;
    private readonly PostgresStreamStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly DeadlineScheduler _deadlines;
    private readonly PostgresWakeHub _hub;
    private readonly StreamChangeFeed _changes = new();
    private readonly ILogger _logger;
    private readonly ITimer _sweeper;
    private readonly object _sweepGate = new();
    private readonly string _s;
    private Task _sweep = Task.CompletedTask;
    private bool _disposed;

    private PostgresStreamStore(NpgsqlDataSource dataSource, PostgresStreamStoreOptions options)
    {
        _dataSource = dataSource;
        _hosts = new HostRecheck(dataSource);
        _options = options;
        ProducerRules.ValidateRetention(options.ProducerRetention);
        _time = options.TimeProvider;
        _s = PostgresSchema.Quote(options.Schema);
        _deadlines = new DeadlineScheduler(_time);
        _logger = options.LoggerFactory.CreateLogger<PostgresStreamStore>();
        _hub = new PostgresWakeHub(options.CrossNodeNotifications ? dataSource : null, dataSource.ConnectionString, options.Schema, _changes, _time, _logger);
        _sweeper = _time.CreateTimer(static s => ((PostgresStreamStore)s!).StartSweep(), this, options.SweepInterval, options.SweepInterval);
    }

    /// <summary>
    /// The user's connection string with the store's defaults for what it leaves unset: short connect and command
    /// timeouts (an unreachable database becomes a 503, never a hang), and automatic preparation of the few statement
    /// texts the store sends, so PostgreSQL parses and plans them once per connection instead of on every call
    /// (measured with scripts/pgbench: 350-370 -> 435-505 sequential appends/s on one node, wake p50 4.4 -> 3.0-3.4 ms).
    /// With more than one host (<c>Host=a,b</c>) the store needs the read-write primary, so <c>Target Session
    /// Attributes</c> defaults to <c>read-write</c>: after a failover the promoted standby is found without a restart.
    /// <c>No Reset On Close</c> defaults to true: the store changes no session state on pooled connections (no SET, no
    /// LISTEN, no session advisory locks, no temporary tables; the wake hub listens on its own unpooled connection), and
    /// otherwise Npgsql has PostgreSQL run seven reset statements (<c>RESET ALL; CLOSE ALL; UNLISTEN *; ...</c>) with
    /// every next command after a connection goes back to the pool, i.e. with every append (measured with pgbench on
    /// the append statement: 6.4-8.2k tx/s without them, 1.6-1.8k with them, at 64 clients; docs/postgres.md).
    /// </summary>
    internal static string ConnectionStringFor(string connectionString)
    {
        // NpgsqlConnectionStringBuilder.ContainsKey is true for every keyword it knows, set or not; what the user set
        // is read from the raw string, with spaces ignored ("Command Timeout" = "CommandTimeout").
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString }.Keys
            .Cast<string>().Select(key => key.Replace(" ", "", StringComparison.Ordinal)).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!given.Contains("Timeout"))
        {
            builder.Timeout = 5;
        }
        if (!given.Contains("CommandTimeout"))
        {
            builder.CommandTimeout = 15;
        }
        if (!given.Contains("MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = 64;
        }
        if (!given.Contains("AutoPrepareMinUsages"))
        {
            builder.AutoPrepareMinUsages = 2;
        }
        if (!given.Contains("NoResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }
        if (!given.Contains("TargetSessionAttributes") && builder.Host?.Contains(',', StringComparison.Ordinal) == true)
        {
            builder.TargetSessionAttributes = "read-write";
        }
        return builder.ConnectionString;
    }

    /// <summary>
    /// Connects, creates or migrates the schema, and starts the sweeper and (unless turned off) the cross-node listener.
    /// Throws <see cref="StoreUnavailableException"/> when the database cannot be reached.
    /// </summary>
    public static async Task<PostgresStreamStore> OpenAsync(PostgresStreamStoreOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var dataSource = NpgsqlDataSource.Create(ConnectionStringFor(options.ConnectionString));
        try
        {
            await PostgresSchema.MigrateAsync(dataSource, options.Schema, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw new StoreUnavailableException("PostgreSQL is unreachable: " + ex.Message, ex);
        }
        catch
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return new PostgresStreamStore(dataSource, options);
    }

    /// <summary>
    /// Subscription state in this database, shared by every node on it (pass it as the server's
    /// <c>SubscriptionOptions.Repository</c>). It uses this store's connections and listener, so it lives as long as the store.
    /// </summary>
    public ISubscriptionRepository CreateSubscriptionRepository() => new PostgresSubscriptionRepository(this, _hub, _s);

    /// <inheritdoc/>
    public IStreamChangeFeed Changes => _changes;

    /// <summary>Raises a change this node committed (other nodes' commits are raised by <see cref="PostgresWakeHub"/>).</summary>
    private void Raise(StreamChangeKind kind, string name, StreamOffset tail = default, DateTimeOffset? at = null, string? contentType = null, string? forkedFrom = null)
    {
        if (_changes.HasListeners)
        {
            _changes.Publish(new StreamChanged(kind, name, tail, at ?? _time.GetUtcNow()) { ContentType = contentType, ForkedFrom = forkedFrom });
        }
    }

    /// <summary>Completes once this node listens for other nodes' wake-ups.</summary>
    public Task CrossNodeListening => _hub.Listening;

    private long NowTicks => _time.GetUtcNow().UtcTicks;

    /// <summary>Number of live (not soft-deleted, not expired-and-reclaimed) streams, after any running sweep.</summary>
    public async ValueTask<int> CountLiveStreamsAsync(CancellationToken cancellationToken = default)
    {
        Task sweep;
        lock (_sweepGate)
        {
            sweep = _sweep;
        }
        await sweep.ConfigureAwait(false);
        return await RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"SELECT count(*) FROM {_s}.ds_streams WHERE state = 0", connection);
            return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Test hook: the number of producer rows (all streams), after any running sweep.</summary>
    internal async ValueTask<int> CountProducerRowsAsync(CancellationToken cancellationToken)
    {
        Task sweep;
        lock (_sweepGate)
        {
            sweep = _sweep;
        }
        await sweep.ConfigureAwait(false);
        return await RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"SELECT count(*) FROM {_s}.ds_producers", connection);
            return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public IReadOnlyList<string> ListStreamNames()
    {
        try
        {
            using var connection = _dataSource.OpenConnection();
            using var command = new NpgsqlCommand($"SELECT name FROM {_s}.ds_streams WHERE state = 0 ORDER BY name", connection);
            using var reader = command.ExecuteReader();
            var names = new List<string>();
            while (reader.Read())
            {
                names.Add(reader.GetString(0));
            }
            return names;
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            _hosts.AfterFailure();
            throw new StoreUnavailableException("PostgreSQL is unreachable: " + ex.Message, ex);
        }
    }

    /// <inheritdoc />
    public async ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (result, wake) = await RunAsync(connection => CreateInAsync(connection, name, request, cancellationToken), cancellationToken).ConfigureAwait(false);
        Wake(wake);
        if (result.Status == CreateStatus.Created)
        {
            Raise(StreamChangeKind.Created, name, result.Info!.Tail, result.Info.CreatedAt, result.Info.ContentType, request.Fork?.SourceName);
        }
        return result;
    }

    private async Task<(CreateStreamResult, List<string>?)> CreateInAsync(NpgsqlConnection connection, string name, CreateStreamRequest request, CancellationToken ct)
    {
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        var now = NowTicks;
        List<string>? wake = null;
        var existing = await LockByNameAsync(connection, name, null, ct).ConfigureAwait(false);
        if (existing is not null)
        {
            var view = new ExistingStream(existing.State == StreamRow.SoftDeleted, existing.IsExpired(now), existing.Requested, existing.Closed,
                existing.ToInfo(await EffectiveStartAsync(connection, existing, ct).ConfigureAwait(false)));
            if (CreateRules.CheckExisting(request, view, out var expire) is { } answer)
            {
                return (answer, null);
            }
            if (expire)
            {
                await ExpireAsync(connection, existing, ct).ConfigureAwait(false);
                (wake ??= []).Add(existing.Name);
            }
        }

        StreamRow? source = null;
        long? sourceStart = null;
        CreateDecision decision;
        var limits = new CreateLimits(_options.MaxJsonDepth, _options.MaxMessagesPerAppend, _options.MaxForkDepth);
        var createdAt = new DateTimeOffset(now, TimeSpan.Zero);
        if (request.Fork is { } fork && (source = await LockByNameAsync(connection, fork.SourceName, null, ct).ConfigureAwait(false)) is not null)
        {
            var chain = await LoadChainAsync(connection, source, source.Tail, ct).ConfigureAwait(false);
            // The chain lists the source and each of its sources: the source is chain.Count - 1 forks deep.
            // A fork never inherits a compacted source's snapshot: it counts the source from its compacted end.
            sourceStart = CompactionRules.ForkFloor(EffectiveStart(chain), source.CompactedEnd);
            var view = new ForkSource(
                source.State == StreamRow.SoftDeleted, source.State == StreamRow.Live && source.IsExpired(now), source.ContentType,
                chain.Count - 1, source.Tail, source.TtlSeconds, source.ExpiresTicks is { } e ? new DateTimeOffset(e, TimeSpan.Zero) : null)
            {
                RetainedStart = sourceStart.Value,
                OffsetGeneration = source.OffsetGeneration,
            };
            var boundaries = await PrecomputeForkBoundariesAsync(connection, chain, fork, source.Tail, sourceStart.Value, source.IsJson, ct).ConfigureAwait(false);
            decision = CreateRules.Evaluate(request, view, boundaries, limits, createdAt);
        }
        else
        {
            decision = CreateRules.Evaluate(request, null, default(KnownBoundaries), limits, createdAt);
        }
        if (decision.ExpireSource)
        {
            await ExpireAsync(connection, source!, ct).ConfigureAwait(false);
            (wake ??= []).Add(source!.Name);
        }
        if (!decision.ShouldCreate)
        {
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return (decision.Result, wake);
        }
        var state = decision.State;
        var forkPosition = decision.ForkPosition;

        long id;
        long incarnation;
        await using (var insert = new NpgsqlCommand(
            $"""
            INSERT INTO {_s}.ds_streams (name, incarnation, state, content_type, ttl_seconds, expires_ticks, created_ticks, accessed_ticks,
                tail, closed, source_id, base_position, req_content_type, req_ttl_seconds, req_expires_ticks, fork_source, fork_offset, fork_sub_offset)
            VALUES (@name, (@ms << 16) + nextval('{_s}.ds_incarnation') % 65536, 0, @ct, @ttl, @exp, @now, @now,
                @base, @closed, @source, @base, @ct, @reqTtl, @reqExp, @forkSource, @forkOffset, @forkSub)
            RETURNING id, incarnation
            """, connection, tx))
        {
            var p = insert.Parameters;
            p.AddWithValue("name", name);
            p.AddWithValue("ms", _time.GetUtcNow().ToUnixTimeMilliseconds());
            p.AddWithValue("ct", state.ContentType);
            p.Add(new NpgsqlParameter<long?>("ttl", NpgsqlDbType.Bigint) { TypedValue = state.TtlSeconds });
            p.Add(new NpgsqlParameter<long?>("exp", NpgsqlDbType.Bigint) { TypedValue = state.ExpiresAt?.UtcTicks });
            p.AddWithValue("now", now);
            p.AddWithValue("base", forkPosition);
            p.AddWithValue("closed", state.Closed);
            p.Add(new NpgsqlParameter<long?>("source", NpgsqlDbType.Bigint) { TypedValue = source?.Id });
            p.Add(new NpgsqlParameter<long?>("reqTtl", NpgsqlDbType.Bigint) { TypedValue = request.TtlSeconds });
            p.Add(new NpgsqlParameter<long?>("reqExp", NpgsqlDbType.Bigint) { TypedValue = request.ExpiresAt?.UtcTicks });
            p.Add(new NpgsqlParameter<string?>("forkSource", NpgsqlDbType.Text) { TypedValue = request.Fork?.SourceName });
            p.Add(new NpgsqlParameter<long?>("forkOffset", NpgsqlDbType.Bigint) { TypedValue = state.Requested.ForkOffset?.Position });
            p.AddWithValue("forkSub", request.Fork?.SubOffset ?? 0L);
            await using var reader = await insert.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await reader.ReadAsync(ct).ConfigureAwait(false);
            id = reader.GetInt64(0);
            incarnation = reader.GetInt64(1);
        }

        await using (var batch = new NpgsqlBatch(connection, tx))
        {
            var tail = AddDataInsert(batch, id, forkPosition, decision.Messages, ContentTypes.IsJson(state.ContentType));
            var update = new NpgsqlBatchCommand($"UPDATE {_s}.ds_streams SET tail = @tail WHERE id = @id");
            update.Parameters.AddWithValue("tail", tail);
            update.Parameters.AddWithValue("id", id);
            batch.BatchCommands.Add(update);
            // Everything the stream starts with (inherited, or its body) was appended by now: it ages from the create.
            if (AppendTimesInterval(name) is { } interval)
            {
                var at = new NpgsqlBatchCommand($"UPDATE {_s}.ds_streams SET last_append_ticks = @at WHERE id = @id");
                at.Parameters.AddWithValue("at", now);
                at.Parameters.AddWithValue("id", id);
                batch.BatchCommands.Add(at);
                AddAppendTimeSample(batch, id, forkPosition, now, interval);
            }
            if (source is not null)
            {
                var reference = new NpgsqlBatchCommand($"UPDATE {_s}.ds_streams SET ref_count = ref_count + 1 WHERE id = @id");
                reference.Parameters.AddWithValue("id", source.Id);
                batch.BatchCommands.Add(reference);
            }
            await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            var info = new StoredStreamInfo(name, incarnation, state.ContentType, new StreamOffset(tail), state.Closed, state.TtlSeconds, state.ExpiresAt, createdAt)
            {
                RetainedStart = new StreamOffset(RetentionRules.EffectiveStart(0, forkPosition, sourceStart)),
            };
            return (new CreateStreamResult(CreateStatus.Created, info), wake);
        }
    }

    /// <inheritdoc />
    public async ValueTask<AppendStreamResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (result, wake) = _options.BatchAppends && _options.OneRoundTripAppends
            ? await AppendBatchedAsync(name, request, cancellationToken).ConfigureAwait(false)
            : await RunAsync(connection => AppendInAsync(connection, name, request, cancellationToken), cancellationToken).ConfigureAwait(false);
        AfterAppend(name, result, wake);
        return result;
    }

    /// <summary>Test hook: the one-round-trip append alone; null when it leaves the append to the locking transaction.</summary>
    internal async Task<AppendStreamResult?> AppendInOneRoundTripAsync(string name, AppendRequest request, CancellationToken cancellationToken)
    {
        var outcome = await RunAsync(connection => AppendInOneAsync(connection, name, request, cancellationToken), cancellationToken).ConfigureAwait(false);
        if (outcome is not var (result, wake))
        {
            return null;
        }
        AfterAppend(name, result, wake);
        return result;
    }

    private void AfterAppend(string name, AppendStreamResult result, bool wake)
    {
        if (wake)
        {
            _hub.Committed(name);
            Raise(result.Status != AppendStatus.Appended ? StreamChangeKind.Expired : result.Closed ? StreamChangeKind.Closed : StreamChangeKind.Appended, name, result.NextOffset);
        }
    }

    private async Task<(AppendStreamResult, bool)> AppendInAsync(NpgsqlConnection connection, string name, AppendRequest request, CancellationToken ct) =>
        (_options.OneRoundTripAppends ? await AppendInOneAsync(connection, name, request, ct).ConfigureAwait(false) : null)
            ?? await AppendLockedAsync(connection, name, request, ct).ConfigureAwait(false);

    /// <summary>The append as a locking transaction: lock, the rules, write, commit (three round trips).</summary>
    private async Task<(AppendStreamResult, bool)> AppendLockedAsync(NpgsqlConnection connection, string name, AppendRequest request, CancellationToken ct)
    {
        await using var tx = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
        var now = NowTicks;
        var producerId = request.Producer?.Id;
        var row = await LockByNameAsync(connection, name, producerId, ct).ConfigureAwait(false);
        if (row is null)
        {
            return (new AppendStreamResult(AppendStatus.NotFound), false);
        }
        if (row.State == StreamRow.SoftDeleted)
        {
            return (new AppendStreamResult(AppendStatus.Gone), false);
        }
        if (row.IsExpired(now))
        {
            await ExpireAsync(connection, row, ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            return (new AppendStreamResult(AppendStatus.NotFound), true);
        }
        var state = row.ToState(producerId);
        var decision = AppendRules.Evaluate(state, request, _options.MaxJsonDepth, _options.MaxMessagesPerAppend, new DateTimeOffset(now, TimeSpan.Zero), _options.ProducerRetention);
        if (!decision.ShouldCommit)
        {
            if (row.NeedsTouch(now))
            {
                await TouchAsync(connection, row.Id, now, ct).ConfigureAwait(false);
                await tx.CommitAsync(ct).ConfigureAwait(false);
            }
            return (InGeneration(decision.Result, row.OffsetGeneration), false);
        }
        await using var batch = new NpgsqlBatch(connection, tx);
        var end = AddDataInsert(batch, row.Id, row.Tail, decision.Messages, row.IsJson);
        var result = AppendRules.Apply(state, request, end - row.Tail, new DateTimeOffset(now, TimeSpan.Zero));
        // Streams whose policy has a maximum age also record the append's time (one more statement in the same round
        // trip); others send exactly what they sent before retention existed.
        var sampleEvery = end > row.Tail ? AppendTimesInterval(name) : null;
        var update = new NpgsqlBatchCommand(sampleEvery is null
            ? $"UPDATE {_s}.ds_streams SET tail = @tail, closed = @closed, last_stream_seq = @seq, accessed_ticks = @now WHERE id = @id"
            : $"UPDATE {_s}.ds_streams SET tail = @tail, closed = @closed, last_stream_seq = @seq, accessed_ticks = @now, last_append_ticks = @at WHERE id = @id");
        if (sampleEvery is { } interval)
        {
            update.Parameters.AddWithValue("at", now);
            AddAppendTimeSample(batch, row.Id, row.Tail, now, interval);
        }
        update.Parameters.AddWithValue("tail", state.Tail);
        update.Parameters.AddWithValue("closed", state.Closed);
        update.Parameters.Add(new NpgsqlParameter<string?>("seq", NpgsqlDbType.Text) { TypedValue = state.LastStreamSeq });
        update.Parameters.AddWithValue("now", row.NeedsTouch(now) ? now : row.AccessedTicks);
        update.Parameters.AddWithValue("id", row.Id);
        batch.BatchCommands.Add(update);
        if (request.Producer is { } producer)
        {
            var upsert = new NpgsqlBatchCommand(
                $"""
                INSERT INTO {_s}.ds_producers (stream_id, producer_id, epoch, last_seq, updated_ticks) VALUES (@id, @producer, @epoch, @seq, @now)
                ON CONFLICT (stream_id, producer_id) DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq, updated_ticks = excluded.updated_ticks
                """);
            upsert.Parameters.AddWithValue("id", row.Id);
            upsert.Parameters.AddWithValue("producer", producer.Id);
            upsert.Parameters.AddWithValue("epoch", producer.Epoch);
            upsert.Parameters.AddWithValue("seq", producer.Seq);
            upsert.Parameters.AddWithValue("now", now);
            batch.BatchCommands.Add(upsert);
        }
        await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        // The row is locked, so no compaction moved the generation since it was read.
        return (InGeneration(result, row.OffsetGeneration), true);
    }

    /// <summary>An append's answer with its offset in the stream's current generation (issue 18).</summary>
    private static AppendStreamResult InGeneration(AppendStreamResult result, long generation) =>
        result with { NextOffset = result.NextOffset.InGeneration(generation) };

    /// <inheritdoc />
    public async ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default)
    {
        var (result, wake) = await RunAsync(async connection =>
        {
            var (row, status, expired) = await FindAsync(connection, name, touch: false, cancellationToken).ConfigureAwait(false);
            return (row is null ? new MetadataResult(status)
                : new MetadataResult(ReadStatus.Ok, row.ToInfo(await EffectiveStartAsync(connection, row, cancellationToken).ConfigureAwait(false))), expired);
        }, cancellationToken).ConfigureAwait(false);
        if (wake)
        {
            _hub.Committed(name);
            Raise(StreamChangeKind.Expired, name);
        }
        return result;
    }

    /// <inheritdoc />
    public async ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var (result, wake) = await RunAsync(async connection =>
        {
            await using var tx = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            var row = await LockByNameAsync(connection, name, null, cancellationToken).ConfigureAwait(false);
            if (row is null)
            {
                return (new DeleteResult(DeleteStatus.NotFound), false);
            }
            if (row.State == StreamRow.SoftDeleted)
            {
                return (new DeleteResult(DeleteStatus.Gone), false);
            }
            if (row.IsExpired(NowTicks))
            {
                await ExpireAsync(connection, row, cancellationToken).ConfigureAwait(false);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                return (new DeleteResult(DeleteStatus.NotFound), true);
            }
            if (row.RefCount > 0)
            {
                await SetStateAsync(connection, row.Id, StreamRow.SoftDeleted, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await RemoveAsync(connection, row, cancellationToken).ConfigureAwait(false);
            }
            await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            return (new DeleteResult(DeleteStatus.Deleted), true);
        }, cancellationToken).ConfigureAwait(false);
        if (wake)
        {
            _hub.Committed(name);
            Raise(result.Status == DeleteStatus.Deleted ? StreamChangeKind.Deleted : StreamChangeKind.Expired, name);
        }
        return result;
    }

    /// <inheritdoc />
    public async ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        // Take the signal before reading the state: a commit after the read publishes the signal already taken.
        // The deadline is scheduled before the first await, so a clock that moves while the state is read still counts.
        using var registration = _hub.Register(name);
        var signal = registration.Current;
        using var deadline = _deadlines.Schedule(timeout, cancellationToken);
        var outcome = await CheckWaitAsync(name, offset, cancellationToken).ConfigureAwait(false);
        if (outcome is { } early)
        {
            return early;
        }
        while (true)
        {
            var first = await Task.WhenAny(signal, deadline.Task).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            if (first != signal)
            {
                return WaitOutcome.TimedOut;
            }
            // Wake-ups are per name and coalesced across nodes, so re-check: another node's append to a fork's source,
            // or a reconnect's blanket wake, leaves this stream unchanged.
            signal = registration.Current;
            outcome = await CheckWaitAsync(name, offset, cancellationToken).ConfigureAwait(false);
            if (outcome is { } changed)
            {
                return changed;
            }
        }
    }

    private async Task<WaitOutcome?> CheckWaitAsync(string name, StreamOffset offset, CancellationToken ct) =>
        await RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"SELECT {StreamRow.Columns} FROM {_s}.ds_streams s WHERE s.name = @name AND s.state < 2", connection);
            command.Parameters.AddWithValue("name", name);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (!await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                return WaitOutcome.Gone;
            }
            var row = StreamRow.Read(reader);
            if (row.State != StreamRow.Live || row.IsExpired(NowTicks))
            {
                return WaitOutcome.Gone;
            }
            return row.Tail > offset.Position || row.Closed ? WaitOutcome.Changed : (WaitOutcome?)null;
        }, ct).ConfigureAwait(false);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        lock (_sweepGate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
        }
        _sweeper.Dispose();
        Task sweep;
        lock (_sweepGate)
        {
            sweep = _sweep;
        }
        await sweep.ConfigureAwait(false);
        await _hub.DisposeAsync().ConfigureAwait(false);
        await _changes.DisposeAsync().ConfigureAwait(false);
        _deadlines.Dispose();
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }

    private void Wake(List<string>? names)
    {
        if (names is null)
        {
            return;
        }
        foreach (var name in names)
        {
            _hub.Committed(name);
            Raise(StreamChangeKind.Expired, name);
        }
    }
}
