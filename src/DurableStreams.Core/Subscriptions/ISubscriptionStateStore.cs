namespace DurableStreams.Core.Subscriptions;

/// <summary>
/// Where subscription state lives: the in-memory store keeps it for the process, the file store's companion keeps it
/// in the data directory, and a database store (PostgreSQL) can follow with the same four calls. Each call is atomic:
/// after a crash the state is either before or after it. Callers serialise calls (the subscription engine holds its lock).
/// </summary>
public interface ISubscriptionStateStore : IAsyncDisposable
{
    /// <summary>Everything stored, as copies the caller owns.</summary>
    ValueTask<SubscriptionStateSnapshot> LoadAsync(CancellationToken cancellationToken = default);

    /// <summary>Inserts or replaces one subscription (the store copies it).</summary>
    ValueTask SaveAsync(SubscriptionState subscription, CancellationToken cancellationToken = default);

    /// <summary>Removes one subscription; absent is fine.</summary>
    ValueTask DeleteAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Replaces the signing keys (oldest first).</summary>
    ValueTask SaveSigningKeysAsync(IReadOnlyList<SigningKeyState> keys, CancellationToken cancellationToken = default);
}
