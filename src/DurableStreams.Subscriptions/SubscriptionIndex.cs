using DurableStreams.Core.Subscriptions;

namespace DurableStreams.Subscriptions;

/// <summary>
/// Which subscriptions link which stream paths, and their patterns: an immutable <see cref="Snapshot"/> the change
/// listener reads without locking, replaced whenever this node (or, through the repository, another node) changes links.
/// </summary>
internal sealed class SubscriptionIndex(ISubscriptionRepository repository) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    /// <summary>Per subscription, what the index is built from; guarded by <see cref="_gate"/>.</summary>
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private volatile Snapshot _current = Snapshot.Empty;

    /// <summary>The index as of the last update.</summary>
    public Snapshot Current => _current;

    /// <summary>Re-reads every subscription and replaces the index; returns what it read.</summary>
    public async Task<IReadOnlyList<VersionedSubscription>> RebuildAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var all = await repository.ListAsync(cancellationToken);
            _entries.Clear();
            foreach (var (subscription, _) in all)
            {
                _entries[subscription.Id] = Entry.Of(subscription);
            }
            _current = Build();
            return all;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Re-reads one subscription (absent: deleted) into the index; updates run one at a time.</summary>
    public async Task RefreshAsync(string id, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (await repository.GetAsync(id, cancellationToken) is { } current)
            {
                _entries[id] = Entry.Of(current.State);
            }
            else
            {
                _entries.Remove(id);
            }
            _current = Build();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Updates this node's index after its own link changes and tells the other nodes.</summary>
    public async Task LinksChangedAsync(IEnumerable<string> ids, CancellationToken cancellationToken)
    {
        foreach (var id in ids)
        {
            await RefreshAsync(id, cancellationToken);
            await repository.PublishLinksChangedAsync(id, cancellationToken);
        }
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>A new immutable index from the entries; call under the gate.</summary>
    private Snapshot Build()
    {
        if (_entries.Count == 0)
        {
            return Snapshot.Empty;
        }
        var byPath = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var patterns = new List<(string Id, string Pattern)>();
        foreach (var (id, entry) in _entries)
        {
            if (entry.Pattern is { } pattern)
            {
                patterns.Add((id, pattern));
            }
            foreach (var path in entry.Paths)
            {
                byPath[path] = byPath.TryGetValue(path, out var ids) ? [.. ids, id] : [id];
            }
        }
        return new Snapshot(byPath, patterns.ToArray());
    }

    /// <summary>What the index needs of one subscription.</summary>
    private sealed record Entry(string? Pattern, string[] Paths)
    {
        public static Entry Of(SubscriptionState subscription) => new(subscription.Pattern, [.. subscription.Links.Keys]);
    }

    /// <summary>An immutable view: subscription ids by linked path, and every pattern.</summary>
    internal sealed record Snapshot(Dictionary<string, string[]> ByPath, (string Id, string Pattern)[] Patterns)
    {
        public static readonly Snapshot Empty = new(new Dictionary<string, string[]>(StringComparer.Ordinal), []);

        public bool IsEmpty => ReferenceEquals(this, Empty);
    }
}
