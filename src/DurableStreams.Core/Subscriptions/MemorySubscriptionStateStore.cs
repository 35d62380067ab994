using System.Text.Json;

namespace DurableStreams.Core.Subscriptions;

/// <summary>Subscription state for the process lifetime (the in-memory stream store's companion).</summary>
public class MemorySubscriptionStateStore : ISubscriptionStateStore
{
    private readonly object _gate = new();
    private readonly Dictionary<string, byte[]> _subscriptions = new(StringComparer.Ordinal);
    private byte[] _keys = JsonSerializer.SerializeToUtf8Bytes(new List<SigningKeyState>(), SubscriptionJson.Options);

    /// <inheritdoc/>
    public virtual ValueTask<SubscriptionStateSnapshot> LoadAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(BuildSnapshot());
        }
    }

    /// <inheritdoc/>
    public virtual ValueTask SaveAsync(SubscriptionState subscription, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        var bytes = JsonSerializer.SerializeToUtf8Bytes(subscription, SubscriptionJson.Options);
        lock (_gate)
        {
            _subscriptions[subscription.Id] = bytes;
            return PersistSave(bytes);
        }
    }

    /// <inheritdoc/>
    public virtual ValueTask DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return _subscriptions.Remove(id) ? PersistDelete(id) : ValueTask.CompletedTask;
        }
    }

    /// <inheritdoc/>
    public virtual ValueTask SaveSigningKeysAsync(IReadOnlyList<SigningKeyState> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        lock (_gate)
        {
            _keys = JsonSerializer.SerializeToUtf8Bytes(keys, SubscriptionJson.Options);
            return PersistKeys(_keys);
        }
    }

    /// <inheritdoc/>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>Called under the lock after a subscription was saved, with its JSON; the file store records it durably.</summary>
    private protected virtual ValueTask PersistSave(byte[] subscription) => ValueTask.CompletedTask;

    /// <summary>Called under the lock after a subscription was removed.</summary>
    private protected virtual ValueTask PersistDelete(string id) => ValueTask.CompletedTask;

    /// <summary>Called under the lock after the signing keys were replaced, with their JSON array.</summary>
    private protected virtual ValueTask PersistKeys(byte[] keys) => ValueTask.CompletedTask;

    /// <summary>Applies one change while loading (no persist hook runs).</summary>
    private protected void RestoreSave(SubscriptionState subscription) =>
        _subscriptions[subscription.Id] = JsonSerializer.SerializeToUtf8Bytes(subscription, SubscriptionJson.Options);

    /// <summary>Applies one removal while loading.</summary>
    private protected void RestoreDelete(string id) => _subscriptions.Remove(id);

    /// <summary>Replaces the keys while loading.</summary>
    private protected void RestoreKeys(List<SigningKeyState> keys) => _keys = JsonSerializer.SerializeToUtf8Bytes(keys, SubscriptionJson.Options);

    /// <summary>
    /// Writes everything as a <see cref="SubscriptionStateSnapshot"/> JSON object from the stored bytes (call under
    /// the lock, or while loading), without a round trip through objects.
    /// </summary>
    private protected void WriteSnapshot(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WritePropertyName("subscriptions");
        writer.WriteStartArray();
        foreach (var bytes in _subscriptions.Values)
        {
            writer.WriteRawValue(bytes, skipInputValidation: true);
        }
        writer.WriteEndArray();
        writer.WritePropertyName("signing_keys");
        writer.WriteRawValue(_keys, skipInputValidation: true);
        writer.WriteEndObject();
    }

    /// <summary>Replaces the contents (used when loading from disk).</summary>
    private protected void Restore(SubscriptionStateSnapshot snapshot)
    {
        lock (_gate)
        {
            _subscriptions.Clear();
            foreach (var subscription in snapshot.Subscriptions)
            {
                _subscriptions[subscription.Id] = JsonSerializer.SerializeToUtf8Bytes(subscription, SubscriptionJson.Options);
            }
            _keys = JsonSerializer.SerializeToUtf8Bytes(snapshot.SigningKeys, SubscriptionJson.Options);
        }
    }

    /// <summary>Deep copies of everything (call under the lock).</summary>
    private protected SubscriptionStateSnapshot BuildSnapshot() => new()
    {
        Subscriptions = _subscriptions.Values
            .Select(bytes => JsonSerializer.Deserialize<SubscriptionState>(bytes, SubscriptionJson.Options)!)
            .ToList(),
        SigningKeys = JsonSerializer.Deserialize<List<SigningKeyState>>(_keys, SubscriptionJson.Options)!,
    };
}

/// <summary>The JSON settings of persisted subscription state.</summary>
internal static class SubscriptionJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };
}
