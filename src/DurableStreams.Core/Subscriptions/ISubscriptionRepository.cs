namespace DurableStreams.Core.Subscriptions;

/// <summary>
/// The subscription engine's per-operation access to subscription state. Every call reads or writes the stored state
/// directly, and every change is a conditional write against the version that was read, so several engines (one per
/// server node) can share one repository: of two racing changes exactly one wins and the other re-reads and decides
/// again. The subscription engine's <c>LocalSubscriptionRepository</c> keeps the state in process (over an <see cref="ISubscriptionStateStore"/>);
/// the PostgreSQL store implements it with conditional <c>UPDATE</c>s.
/// </summary>
public interface ISubscriptionRepository
{
    /// <summary>
    /// Whether other processes change the same state. Then the engine learns of link changes through
    /// <see cref="LinksChanged"/>, re-reads its index before linking a created stream, and polls <see cref="ListDueAsync"/>
    /// for expired leases and due retries that a node which has since died had scheduled.
    /// </summary>
    bool IsShared { get; }

    /// <summary>
    /// Raised when another process created, deleted or re-linked a subscription (its id), or with null when any may
    /// have changed (for example after a lost notification connection). Never raised for this process's own writes.
    /// </summary>
    event Action<string?>? LinksChanged;

    /// <summary>Prepares the repository (loads local state); called once before any other call.</summary>
    ValueTask InitializeAsync(CancellationToken cancellationToken = default);

    /// <summary>One subscription as a copy the caller owns, with the version a write must name; null when absent.</summary>
    ValueTask<VersionedSubscription?> GetAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Every subscription, as copies.</summary>
    ValueTask<IReadOnlyList<VersionedSubscription>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Subscriptions that may link a stream created at <paramref name="path"/>: those with a link to it and those with a
    /// pattern (which the caller matches), as id, pattern and whether it links the path.
    /// </summary>
    ValueTask<IReadOnlyList<LinkCandidate>> ListLinkCandidatesAsync(string path, CancellationToken cancellationToken = default);

    /// <summary>Stores a new subscription; false (and nothing stored) when the id exists.</summary>
    ValueTask<bool> TryInsertAsync(SubscriptionState subscription, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces a subscription only if its stored version is still <paramref name="expectedVersion"/>; false when it
    /// changed or was deleted since it was read (the caller re-reads and decides again).
    /// </summary>
    ValueTask<bool> TryUpdateAsync(SubscriptionState subscription, long expectedVersion, CancellationToken cancellationToken = default);

    /// <summary>Deletes a subscription; false when it was absent.</summary>
    ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>
    /// Ids of subscriptions with work due at <paramref name="now"/>: a lease that has expired, or (without a lease) a
    /// webhook retry whose time has come.
    /// </summary>
    ValueTask<IReadOnlyList<string>> ListDueAsync(DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Tells the other processes that a subscription's links changed (no-op when not shared).</summary>
    ValueTask PublishLinksChangedAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>
    /// The stored signing keys (oldest first); when none are stored, stores <paramref name="ifNone"/> first (an
    /// insert-if-absent, so processes starting together agree on one key) and returns what won.
    /// </summary>
    ValueTask<IReadOnlyList<SigningKeyState>> GetOrAddSigningKeysAsync(IReadOnlyList<SigningKeyState> ifNone, CancellationToken cancellationToken = default);

    /// <summary>Replaces the signing keys (rotation).</summary>
    ValueTask SaveSigningKeysAsync(IReadOnlyList<SigningKeyState> keys, CancellationToken cancellationToken = default);
}

/// <summary>A subscription that may link a new stream: its id, pattern (if any), and whether it already links the path.</summary>
public sealed record LinkCandidate(string Id, string? Pattern, bool Linked);

/// <summary>A subscription as read, with the version a conditional write must name.</summary>
public sealed record VersionedSubscription(SubscriptionState State, long Version);

/// <summary>Copies subscription state through its persisted JSON form (the same settings every store uses).</summary>
public static class SubscriptionStateJson
{
    /// <summary>The persisted JSON of one subscription.</summary>
    public static byte[] Serialize(SubscriptionState subscription) =>
        System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(subscription, SubscriptionJson.Options);

    /// <summary>A subscription from its persisted JSON.</summary>
    public static SubscriptionState Deserialize(ReadOnlySpan<byte> json) =>
        System.Text.Json.JsonSerializer.Deserialize<SubscriptionState>(json, SubscriptionJson.Options)
        ?? throw new InvalidOperationException("Stored subscription state is null.");

    /// <summary>The persisted JSON of signing keys.</summary>
    public static byte[] SerializeKeys(IReadOnlyList<SigningKeyState> keys) =>
        System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(keys, SubscriptionJson.Options);

    /// <summary>Signing keys from their persisted JSON.</summary>
    public static List<SigningKeyState> DeserializeKeys(ReadOnlySpan<byte> json) =>
        System.Text.Json.JsonSerializer.Deserialize<List<SigningKeyState>>(json, SubscriptionJson.Options) ?? [];

    /// <summary>A deep copy.</summary>
    public static SubscriptionState Clone(SubscriptionState subscription) => Deserialize(Serialize(subscription));
}
