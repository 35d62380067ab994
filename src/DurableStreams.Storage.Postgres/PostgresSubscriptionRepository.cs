using System.Text;
using DurableStreams.Core.Subscriptions;
using Npgsql;
using NpgsqlTypes;

namespace DurableStreams.Storage.Postgres;

/// <summary>
/// Subscription state in PostgreSQL (<c>ds_subscriptions</c>, <c>ds_subscription_keys</c>), shared by every node.
/// Each subscription is one row: its state as JSON plus a version; every change is
/// <c>UPDATE … WHERE id = @id AND version = @read</c>, so of two nodes racing to claim, wake or ack, exactly one
/// update matches and the other re-reads. Lease and retry times are copied into columns so any node can find work
/// whose node died (<see cref="ListDueAsync"/>). Link changes travel to the other nodes by NOTIFY on the store's
/// listening connection. Unreachable PostgreSQL surfaces as <see cref="Core.StoreUnavailableException"/> (503).
/// </summary>
internal sealed class PostgresSubscriptionRepository(PostgresStreamStore store, PostgresWakeHub hub, string schema) : ISubscriptionRepository
{
    private const int KeysRow = 1;

    public bool IsShared => true;

    public event Action<string?>? LinksChanged
    {
        add => hub.SubscriptionsChanged += value;
        remove => hub.SubscriptionsChanged -= value;
    }

    /// <summary>The tables are created by the store's migrations when it opens.</summary>
    public ValueTask InitializeAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public async ValueTask<VersionedSubscription?> GetAsync(string id, CancellationToken cancellationToken = default)
    {
        return await store.RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"SELECT version, state::text FROM {schema}.ds_subscriptions WHERE id = @id", connection);
            command.Parameters.AddWithValue("id", id);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            return await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? Read(reader) : null;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<IReadOnlyList<VersionedSubscription>> ListAsync(CancellationToken cancellationToken = default)
    {
        return await store.RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"SELECT version, state::text FROM {schema}.ds_subscriptions ORDER BY id", connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var list = new List<VersionedSubscription>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(Read(reader));
            }
            return (IReadOnlyList<VersionedSubscription>)list;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<IReadOnlyList<LinkCandidate>> ListLinkCandidatesAsync(string path, CancellationToken cancellationToken = default)
    {
        return await store.RunAsync(async connection =>
        {
            // Only ids and patterns cross the wire, not every subscription's state.
            await using var command = new NpgsqlCommand(
                $"""
                SELECT id, state->>'pattern', jsonb_exists(state->'links', @path) FROM {schema}.ds_subscriptions
                WHERE state->>'pattern' IS NOT NULL OR jsonb_exists(state->'links', @path)
                """, connection);
            command.Parameters.AddWithValue("path", path);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var candidates = new List<LinkCandidate>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                candidates.Add(new LinkCandidate(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetBoolean(2)));
            }
            return (IReadOnlyList<LinkCandidate>)candidates;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<bool> TryInsertAsync(SubscriptionState subscription, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        return await ExecuteAsync(
            $"""
            INSERT INTO {schema}.ds_subscriptions (id, version, state, lease_expires_ticks, next_attempt_ticks)
            VALUES (@id, 1, @state, @lease, @next) ON CONFLICT (id) DO NOTHING
            """, subscription, expectedVersion: null, cancellationToken).ConfigureAwait(false) == 1;
    }

    public async ValueTask<bool> TryUpdateAsync(SubscriptionState subscription, long expectedVersion, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        return await ExecuteAsync(
            $"""
            UPDATE {schema}.ds_subscriptions
            SET version = version + 1, state = @state, lease_expires_ticks = @lease, next_attempt_ticks = @next
            WHERE id = @id AND version = @version
            """, subscription, expectedVersion, cancellationToken).ConfigureAwait(false) == 1;
    }

    private async Task<int> ExecuteAsync(string sql, SubscriptionState subscription, long? expectedVersion, CancellationToken cancellationToken)
    {
        var json = Encoding.UTF8.GetString(SubscriptionStateJson.Serialize(subscription));
        return await store.RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.AddWithValue("id", subscription.Id);
            command.Parameters.AddWithValue("state", NpgsqlDbType.Jsonb, json);
            command.Parameters.AddWithValue("lease", NpgsqlDbType.Bigint, (object?)subscription.LeaseExpiresAt?.UtcTicks ?? DBNull.Value);
            command.Parameters.AddWithValue("next", NpgsqlDbType.Bigint, (object?)subscription.NextAttemptAt?.UtcTicks ?? DBNull.Value);
            if (expectedVersion is { } version)
            {
                command.Parameters.AddWithValue("version", version);
            }
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        return await store.RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand($"DELETE FROM {schema}.ds_subscriptions WHERE id = @id", connection);
            command.Parameters.AddWithValue("id", id);
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<IReadOnlyList<string>> ListDueAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        return await store.RunAsync(async connection =>
        {
            // A held lease governs; without one, the retry time does (the engine's own order of checks).
            await using var command = new NpgsqlCommand(
                $"SELECT id FROM {schema}.ds_subscriptions WHERE coalesce(lease_expires_ticks, next_attempt_ticks) <= @now", connection);
            command.Parameters.AddWithValue("now", now.UtcTicks);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            var ids = new List<string>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                ids.Add(reader.GetString(0));
            }
            return (IReadOnlyList<string>)ids;
        }, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask PublishLinksChangedAsync(string id, CancellationToken cancellationToken = default) =>
        hub.PublishSubscriptionChangeAsync(id, cancellationToken);

    public async ValueTask<IReadOnlyList<SigningKeyState>> GetOrAddSigningKeysAsync(IReadOnlyList<SigningKeyState> ifNone, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ifNone);
        var candidate = Encoding.UTF8.GetString(SubscriptionStateJson.SerializeKeys(ifNone));
        return await store.RunAsync(async connection =>
        {
            // Insert-if-absent, then read what won: nodes starting together all end up with the first key stored.
            await using var command = new NpgsqlCommand(
                $"""
                INSERT INTO {schema}.ds_subscription_keys (id, keys) VALUES (@row, @keys) ON CONFLICT (id) DO NOTHING;
                SELECT keys::text FROM {schema}.ds_subscription_keys WHERE id = @row;
                """, connection);
            command.Parameters.AddWithValue("row", (short)KeysRow);
            command.Parameters.AddWithValue("keys", NpgsqlDbType.Jsonb, candidate);
            var stored = (string?)await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException("The signing keys row vanished.");
            return (IReadOnlyList<SigningKeyState>)SubscriptionStateJson.DeserializeKeys(Encoding.UTF8.GetBytes(stored));
        }, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask SaveSigningKeysAsync(IReadOnlyList<SigningKeyState> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var json = Encoding.UTF8.GetString(SubscriptionStateJson.SerializeKeys(keys));
        await store.RunAsync(async connection =>
        {
            await using var command = new NpgsqlCommand(
                $"INSERT INTO {schema}.ds_subscription_keys (id, keys) VALUES (@row, @keys) ON CONFLICT (id) DO UPDATE SET keys = excluded.keys", connection);
            command.Parameters.AddWithValue("row", (short)KeysRow);
            command.Parameters.AddWithValue("keys", NpgsqlDbType.Jsonb, json);
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    private static VersionedSubscription Read(NpgsqlDataReader reader) =>
        new(SubscriptionStateJson.Deserialize(Encoding.UTF8.GetBytes(reader.GetString(1))), reader.GetInt64(0));
}
