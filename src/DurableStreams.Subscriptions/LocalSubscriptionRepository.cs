using DurableStreams.Core.Subscriptions;

namespace DurableStreams.Subscriptions;

/// <summary>
/// Subscription state for one process: loaded once from an <see cref="ISubscriptionStateStore"/> (memory or file),
/// kept in memory with a version per subscription, and written through to that store on every change before the
/// change becomes visible. Conditional writes compare versions under one lock, so concurrent engine operations in the
/// process behave as they would on a shared database.
/// </summary>
public sealed class LocalSubscriptionRepository(ISubscriptionStateStore store) : ISubscriptionRepository, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, (byte[] Json, long Version)> _subscriptions = new(StringComparer.Ordinal);
    private List<SigningKeyState> _keys = [];
    private long _nextVersion;

    /// <inheritdoc/>
    public bool IsShared => false;

    /// <summary>Releases the lock; the wrapped state store stays its owner's to dispose.</summary>
    public void Dispose() => _gate.Dispose();

    /// <inheritdoc/>
    public event Action<string?>? LinksChanged
    {
        add { }
        remove { }
    }

    /// <inheritdoc/>
    public async ValueTask InitializeAsync(CancellationToken cancellationToken = default)
    {
        var snapshot = await store.LoadAsync(cancellationToken).ConfigureAwait(false);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _subscriptions.Clear();
            foreach (var subscription in snapshot.Subscriptions)
            {
                _subscriptions[subscription.Id] = (SubscriptionStateJson.Serialize(subscription), ++_nextVersion);
            }
            _keys = snapshot.SigningKeys;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask<VersionedSubscription?> GetAsync(string id, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _subscriptions.TryGetValue(id, out var entry) ? new VersionedSubscription(SubscriptionStateJson.Deserialize(entry.Json), entry.Version) : null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<VersionedSubscription>> ListAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return _subscriptions.Values.Select(e => new VersionedSubscription(SubscriptionStateJson.Deserialize(e.Json), e.Version)).ToArray();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<LinkCandidate>> ListLinkCandidatesAsync(string path, CancellationToken cancellationToken = default)
    {
        var all = await ListAsync(cancellationToken).ConfigureAwait(false);
        return all.Where(s => s.State.Pattern is not null || s.State.Links.ContainsKey(path))
            .Select(s => new LinkCandidate(s.State.Id, s.State.Pattern, s.State.Links.ContainsKey(path)))
            .ToArray();
    }

    /// <inheritdoc/>
    public async ValueTask<bool> TryInsertAsync(SubscriptionState subscription, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_subscriptions.ContainsKey(subscription.Id))
            {
                return false;
            }
            await WriteAsync(subscription, cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask<bool> TryUpdateAsync(SubscriptionState subscription, long expectedVersion, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_subscriptions.TryGetValue(subscription.Id, out var entry) || entry.Version != expectedVersion)
            {
                return false;
            }
            await WriteAsync(subscription, cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Persists first, so a failed write changes nothing; call under the lock.</summary>
    private async ValueTask WriteAsync(SubscriptionState subscription, CancellationToken cancellationToken)
    {
        var json = SubscriptionStateJson.Serialize(subscription);
        await store.SaveAsync(SubscriptionStateJson.Deserialize(json), cancellationToken).ConfigureAwait(false);
        _subscriptions[subscription.Id] = (json, ++_nextVersion);
    }

    /// <inheritdoc/>
    public async ValueTask<bool> DeleteAsync(string id, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_subscriptions.ContainsKey(id))
            {
                return false;
            }
            await store.DeleteAsync(id, cancellationToken).ConfigureAwait(false);
            _subscriptions.Remove(id);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<string>> ListDueAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var all = await ListAsync(cancellationToken).ConfigureAwait(false);
        return all.Where(s => (s.State.LeaseExpiresAt ?? s.State.NextAttemptAt) <= now).Select(s => s.State.Id).ToArray();
    }

    /// <inheritdoc/>
    public ValueTask PublishLinksChangedAsync(string id, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<SigningKeyState>> GetOrAddSigningKeysAsync(IReadOnlyList<SigningKeyState> ifNone, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ifNone);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_keys.Count == 0)
            {
                await store.SaveSigningKeysAsync(ifNone, cancellationToken).ConfigureAwait(false);
                _keys = [.. ifNone];
            }
            return SubscriptionStateJson.DeserializeKeys(SubscriptionStateJson.SerializeKeys(_keys));
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask SaveSigningKeysAsync(IReadOnlyList<SigningKeyState> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await store.SaveSigningKeysAsync(keys, cancellationToken).ConfigureAwait(false);
            _keys = SubscriptionStateJson.DeserializeKeys(SubscriptionStateJson.SerializeKeys(keys));
        }
        finally
        {
            _gate.Release();
        }
    }
}
