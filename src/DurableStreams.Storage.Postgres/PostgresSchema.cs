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
    public const int CurrentVersion = 5;

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
    ];

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
