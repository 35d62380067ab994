using DurableStreams.Core;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Protocol;
using DurableStreams.Subscriptions.Wakes;
using Microsoft.Extensions.Logging;
using static DurableStreams.Subscriptions.SubscriptionUpdater;

namespace DurableStreams.Subscriptions;

/// <summary>
/// The engine's listener on the store's change feed (<see cref="IStreamChangeFeed"/>): a commit to a linked stream
/// queues its subscriptions for a wake check, a created stream is linked to matching patterns (and to explicit links
/// waiting for it), and a deleted one loses its glob links. Changes another node committed are that node's to handle.
/// It also follows other nodes' link changes, so this node's index stays complete.
/// </summary>
internal sealed class StreamLinker(
    ISubscriptionRepository repository, SubscriptionIndex index, SubscriptionUpdater updater, WakeScheduler scheduler, ILogger logger, CancellationToken stopping)
{
    /// <summary>
    /// The changes the linker acts on, decided on the store's commit path: this node's creations and deletions, and
    /// commits to streams some subscription links. A commit to a stream whose link is still being made is covered by
    /// that link: it starts at the stream's creation tail and queues the subscription once made.
    /// </summary>
    public bool IsInterested(StreamChanged change) =>
        change.IsLocal && (change.Kind is StreamChangeKind.Created or StreamChangeKind.Deleted || index.Current.ByPath.ContainsKey(change.Name));

    /// <summary>Handles one committed change; called by the feed, one change at a time, in commit order.</summary>
    public async ValueTask OnChangedAsync(StreamChanged change, CancellationToken cancellationToken)
    {
        if (!change.IsLocal)
        {
            return;
        }
        try
        {
            switch (change.Kind)
            {
                case StreamChangeKind.Appended or StreamChangeKind.Closed:
                    OnAppended(change.Name);
                    break;
                case StreamChangeKind.Created:
                    await OnCreatedAsync(change.Name, change.Tail, change.Forked, cancellationToken);
                    break;
                case StreamChangeKind.Deleted:
                    await OnDeletedAsync(change.Name, cancellationToken);
                    break;
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            SubscriptionLog.LinkFailed(logger, ex, change.Name);
        }
    }

    /// <summary>A commit to <paramref name="name"/>: queue its subscriptions for a wake check. Never blocks.</summary>
    private void OnAppended(string name)
    {
        if (index.Current.ByPath.TryGetValue(name, out var ids))
        {
            foreach (var id in ids)
            {
                scheduler.Enqueue(id);
            }
        }
    }

    /// <summary>
    /// A stream was created: link it to matching pattern subscriptions (and explicit links waiting for it) at its start,
    /// before its first append is handled, so the initial body counts as pending work (§6.2). A fork starts at its
    /// creation tail.
    /// </summary>
    private async Task OnCreatedAsync(string name, StreamOffset tail, bool fork, CancellationToken cancellationToken)
    {
        string[] candidates;
        if (repository.IsShared)
        {
            // Another node may have just created a matching subscription that this node's index does not show yet.
            candidates = (await repository.ListLinkCandidatesAsync(name, cancellationToken))
                .Where(c => c.Linked || (c.Pattern is { } pattern && StreamGlob.IsMatch(pattern, name)))
                .Select(c => c.Id)
                .ToArray();
        }
        else
        {
            var current = index.Current;
            if (current.IsEmpty)
            {
                return;
            }
            candidates = (current.ByPath.TryGetValue(name, out var linked) ? linked : [])
                .Concat(current.Patterns.Where(p => StreamGlob.IsMatch(p.Pattern, name)).Select(p => p.Id))
                .Distinct(StringComparer.Ordinal)
                .ToArray();
        }
        if (candidates.Length == 0)
        {
            return;
        }
        var start = (fork ? tail : StreamOffset.Zero).ToString();
        var touched = new List<string>();
        foreach (var id in candidates)
        {
            var changed = await updater.UpdateAsync(id, subscription =>
            {
                // A pull-wake subscription never watches its own wake stream (its wake events would wake it again).
                var glob = subscription.Pattern is { } pattern && StreamGlob.IsMatch(pattern, name) && name != subscription.WakeStream;
                if (subscription.Links.TryGetValue(name, out var link))
                {
                    // A new incarnation of a linked name starts over.
                    link.AckedOffset = start;
                    link.Glob |= glob;
                }
                else if (glob)
                {
                    subscription.Links[name] = new SubscriptionLink { Glob = true, AckedOffset = start };
                }
                else
                {
                    return Keep(false);
                }
                return Save(true);
            }, missing: false, cancellationToken);
            if (changed)
            {
                touched.Add(id);
            }
        }
        await index.LinksChangedAsync(touched, cancellationToken);
        foreach (var id in touched)
        {
            scheduler.Enqueue(id);
        }
    }

    /// <summary>
    /// A stream was deleted: glob-only links to it are dropped; explicit links stay (they wait for a new stream of that
    /// name, which starts over at its beginning).
    /// </summary>
    private async Task OnDeletedAsync(string name, CancellationToken cancellationToken)
    {
        string[] ids;
        if (repository.IsShared)
        {
            // As for creation: the database, not a possibly stale index, says which subscriptions link the name.
            ids = (await repository.ListLinkCandidatesAsync(name, cancellationToken)).Where(c => c.Linked).Select(c => c.Id).ToArray();
        }
        else if (index.Current.ByPath.TryGetValue(name, out var linked))
        {
            ids = linked;
        }
        else
        {
            return;
        }
        var touched = new List<string>();
        foreach (var id in ids)
        {
            var changed = await updater.UpdateAsync(id, subscription =>
                subscription.Links.TryGetValue(name, out var link) && !link.Explicit && subscription.Links.Remove(name) ? Save(true) : Keep(false),
                missing: false, cancellationToken);
            if (changed)
            {
                touched.Add(id);
            }
        }
        await index.LinksChangedAsync(touched, cancellationToken);
    }

    /// <summary>
    /// Another node changed links (or, with null, anything may have changed): re-read that part of the index, then
    /// evaluate, so an append this node made before its index knew the new link still wakes the subscription.
    /// </summary>
    public void OnRemoteLinksChanged(string? id) => _ = RefreshAfterRemoteChangeAsync(id);

    private async Task RefreshAfterRemoteChangeAsync(string? id)
    {
        try
        {
            if (id is not null)
            {
                await index.RefreshAsync(id, stopping);
                scheduler.Enqueue(id);
                return;
            }
            foreach (var subscription in await index.RebuildAsync(stopping))
            {
                scheduler.Enqueue(subscription.State.Id);
            }
        }
        catch (Exception ex) when (!stopping.IsCancellationRequested)
        {
            SubscriptionLog.SharedStateFailed(logger, ex);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
