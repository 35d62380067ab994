using Npgsql;

namespace DurableStreams.Storage.Postgres;

/// <summary>
/// Creates and migrates the store's tables. Migrations are numbered and applied in order inside one transaction that
/// holds an advisory lock, so nodes starting together apply each one exactly once; re-running is a no-op.
/// The layout is documented in docs/postgres.md.
/// </summary>
internal static class PostgresSchema
{
    /// <summary>The schema version this build writes and reads.</summary>
    public const int CurrentVersion = 6;

    private static string[] Migrations(string s) =>
    [
        // Version 1: streams, producers, data.
        $"""
        CREATE SEQUENCE {s}.ds_incarnation;
        CREATE TABLE {s}.ds_streams (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name             text     NOT NULL,
            incarnation      bigint   NOT NULL,
            state            smallint NOT NULL DEFAULT 0,
            content_type     text     NOT NULL,
            ttl_seconds      bigint,
            expires_ticks    bigint,
            created_ticks    bigint   NOT NULL,
            accessed_ticks   bigint   NOT NULL,
            tail             bigint   NOT NULL,
            closed           boolean  NOT NULL,
            last_stream_seq  text,
            source_id        bigint REFERENCES {s}.ds_streams (id),
            base_position    bigint   NOT NULL,
            ref_count        integer  NOT NULL DEFAULT 0,
            req_content_type text     NOT NULL,
            req_ttl_seconds  bigint,
            req_expires_ticks bigint,
            fork_source      text,
            fork_offset      bigint,
            fork_sub_offset  bigint   NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX ds_streams_name ON {s}.ds_streams (name) WHERE state < 2;
        CREATE INDEX ds_streams_expiring ON {s}.ds_streams (id) WHERE state = 0 AND (ttl_seconds IS NOT NULL OR expires_ticks IS NOT NULL);
        CREATE TABLE {s}.ds_producers (
            stream_id   bigint NOT NULL REFERENCES {s}.ds_streams (id) ON DELETE CASCADE,
            producer_id text   NOT NULL,
            epoch       bigint NOT NULL,
            last_seq    bigint NOT NULL,
            updated_ticks bigint NOT NULL,
            PRIMARY KEY (stream_id, producer_id)
        );
        CREATE TABLE {s}.ds_data (
            stream_id bigint NOT NULL REFERENCES {s}.ds_streams (id) ON DELETE CASCADE,
            start_pos bigint NOT NULL,
            end_pos   bigint NOT NULL,
            msg_start bigint NOT NULL,
            msg_end   bigint NOT NULL,
            data      bytea  NOT NULL,
            PRIMARY KEY (stream_id, start_pos)
        );
        """,
        // Version 2: subscription state shared by all nodes. The state is one JSON document per subscription, written
        // only by conditional updates on version; the lease/retry times are copied out so any node finds due work.
        $"""
        CREATE TABLE {s}.ds_subscriptions (
            id                  text   PRIMARY KEY,
            version             bigint NOT NULL,
            state               jsonb  NOT NULL,
            lease_expires_ticks bigint,
            next_attempt_ticks  bigint
        );
        CREATE INDEX ds_subscriptions_due ON {s}.ds_subscriptions ((coalesce(lease_expires_ticks, next_attempt_ticks)));
        CREATE TABLE {s}.ds_subscription_keys (
            id   smallint PRIMARY KEY CHECK (id = 1),
            keys jsonb    NOT NULL
        );
        """,
        // Version 3: idle producers are found (and deleted after the producer retention) without scanning every row.
        $"""
        CREATE INDEX ds_producers_idle ON {s}.ds_producers (updated_ticks);
        """,
        // Version 4: retention (issue 18). Each stream's retained start (rows entirely below it are deleted), and, only
        // for streams whose policy has a maximum age, the last append time and append-time samples (AppendTimes).
        $"""
        ALTER TABLE {s}.ds_streams ADD COLUMN retained_start bigint NOT NULL DEFAULT 0, ADD COLUMN last_append_ticks bigint;
        CREATE TABLE {s}.ds_append_times (
            stream_id bigint NOT NULL REFERENCES {s}.ds_streams (id) ON DELETE CASCADE,
            position  bigint NOT NULL,
            ticks     bigint NOT NULL,
            PRIMARY KEY (stream_id, position)
        );
        """,
        // Version 5: State-Protocol compaction (issue 18). The stream's offset-space generation (one more per compaction;
        // every offset returned for the stream carries it) and where the last compaction's snapshot ends. Defaults 0,
        // so existing rows need no rewrite: a stream never compacted is generation 0 with nothing compacted.
        $"""
        ALTER TABLE {s}.ds_streams ADD COLUMN offset_generation bigint NOT NULL DEFAULT 0, ADD COLUMN compacted_end bigint NOT NULL DEFAULT 0;
        """,
        // Version 6: the one-round-trip append (see AppendFunction).
        AppendFunction(s),
    ];

    /// <summary>
    /// <c>ds_append</c>: an append in one statement. It locks the stream's row, reads the producer's row (a fresh
    /// snapshot after the lock, as <c>LockByNameAsync</c> does), and writes only when the append is one the shared rules
    /// certainly commit: a live, unexpired, open stream whose content type is exactly the request's, a producer that is
    /// new (or expired) at seq 0, bumps its epoch at seq 0, or sends last seq + 1 in its epoch, and a Stream-Seq above the
    /// last. Then it inserts the data rows at the tail, updates tail / closure / Stream-Seq / the sliding TTL's access
    /// time, and upserts the producer. Whether or not it wrote, it returns the locked row and the producer's row as they
    /// were before the append, so the node evaluates <c>AppendRules</c> on them: a rejection is answered from that state
    /// without another round trip, and an append the function left alone that the rules would commit (another spelling
    /// of the content type, a producer case it does not cover) takes the locking transaction. Data positions are passed
    /// relative to the tail. It sends no NOTIFY: the wake hub sends those coalesced, outside the transaction.
    /// </summary>
    private static string AppendFunction(string s) =>
        $"""
        CREATE OR REPLACE FUNCTION {s}.ds_append(
            p_name text, p_content_type text, p_producer text, p_epoch bigint, p_seq bigint, p_stream_seq text,
            p_close boolean, p_now bigint, p_retention bigint, p_length bigint,
            p_starts bigint[], p_ends bigint[], p_mstarts bigint[], p_mends bigint[], p_data bytea[],
            OUT stream {s}.ds_streams, OUT producer_epoch bigint, OUT producer_seq bigint, OUT producer_ticks bigint,
            OUT written boolean)
        LANGUAGE plpgsql AS $fn$
        BEGIN
            written := false;
            SELECT * INTO stream FROM {s}.ds_streams WHERE name = p_name AND state < 2 FOR UPDATE;
            IF NOT FOUND THEN
                stream := NULL;
                RETURN;
            END IF;
            IF p_producer IS NOT NULL THEN
                SELECT p.epoch, p.last_seq, p.updated_ticks INTO producer_epoch, producer_seq, producer_ticks
                FROM {s}.ds_producers p WHERE p.stream_id = stream.id AND p.producer_id = p_producer;
            END IF;
            IF stream.state <> 0 OR stream.closed
                OR stream.ttl_seconds > 922337203685
                OR (stream.expires_ticks IS NOT NULL AND stream.expires_ticks <= p_now)
                OR (stream.ttl_seconds IS NOT NULL AND stream.accessed_ticks + stream.ttl_seconds * 10000000 <= p_now)
                OR (p_length > 0 AND stream.content_type <> p_content_type)
                OR (p_stream_seq IS NOT NULL AND stream.last_stream_seq IS NOT NULL
                    AND p_stream_seq COLLATE "C" <= stream.last_stream_seq COLLATE "C")
                OR (p_producer IS NOT NULL AND NOT CASE
                    WHEN producer_epoch IS NULL OR (p_retention >= 0 AND p_now - producer_ticks >= p_retention) THEN p_seq = 0
                    WHEN p_epoch > producer_epoch THEN p_seq = 0
                    WHEN p_epoch = producer_epoch THEN producer_seq < 9223372036854775807 AND p_seq = producer_seq + 1
                    ELSE false END)
            THEN
                RETURN;
            END IF;
            IF p_length > 0 THEN
                INSERT INTO {s}.ds_data (stream_id, start_pos, end_pos, msg_start, msg_end, data)
                SELECT stream.id, stream.tail + u.s0, stream.tail + u.e0, stream.tail + u.ms, stream.tail + u.me, u.d
                FROM unnest(p_starts, p_ends, p_mstarts, p_mends, p_data) AS u(s0, e0, ms, me, d);
            END IF;
            UPDATE {s}.ds_streams SET tail = stream.tail + p_length, closed = p_close,
                last_stream_seq = coalesce(p_stream_seq, stream.last_stream_seq),
                accessed_ticks = CASE WHEN stream.ttl_seconds IS NOT NULL
                    AND p_now - stream.accessed_ticks >= stream.ttl_seconds * 10000000 / 10 THEN p_now ELSE stream.accessed_ticks END
            WHERE id = stream.id;
            IF p_producer IS NOT NULL THEN
                INSERT INTO {s}.ds_producers (stream_id, producer_id, epoch, last_seq, updated_ticks)
                VALUES (stream.id, p_producer, p_epoch, p_seq, p_now)
                ON CONFLICT (stream_id, producer_id) DO UPDATE
                SET epoch = excluded.epoch, last_seq = excluded.last_seq, updated_ticks = excluded.updated_ticks;
            END IF;
            written := true;
        END
        $fn$;
        """;

    public static async Task MigrateAsync(NpgsqlDataSource dataSource, string schema, CancellationToken cancellationToken)
    {
        var s = Quote(schema);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var command = new NpgsqlCommand(
            $"""
            SELECT pg_advisory_xact_lock(hashtext('durable_streams_migrate:' || @schema));
            CREATE SCHEMA IF NOT EXISTS {s};
            CREATE TABLE IF NOT EXISTS {s}.ds_schema_version (version integer NOT NULL);
            """, connection, transaction))
        {
            command.Parameters.AddWithValue("schema", schema);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        int version;
        await using (var command = new NpgsqlCommand($"SELECT coalesce(max(version), 0) FROM {s}.ds_schema_version", connection, transaction))
        {
            version = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }
        if (version > CurrentVersion)
        {
            throw new InvalidOperationException(
                $"The database schema {schema} is at version {version}; this build knows up to {CurrentVersion}. A newer build migrated it: run that build (or newer) on every node.");
        }
        var migrations = Migrations(s);
        for (var next = version + 1; next <= CurrentVersion; next++)
        {
            await using var command = new NpgsqlCommand(migrations[next - 1], connection, transaction);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await using var record = new NpgsqlCommand($"DELETE FROM {s}.ds_schema_version; INSERT INTO {s}.ds_schema_version VALUES (@v)", connection, transaction);
            record.Parameters.AddWithValue("v", next);
            await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A quoted SQL identifier.</summary>
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
