using DurableStreams.Core;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Protocol;
using DurableStreams.Subscriptions.Wakes;
using DurableStreams.Subscriptions.Webhooks;
using static DurableStreams.Subscriptions.SubscriptionUpdater;

namespace DurableStreams.Subscriptions;

/// <summary>
/// The subscription control API (§6): create or confirm, read, delete, link and unlink streams, the JWKS and key
/// rotation. Every operation reads the subscription from the repository and writes it back conditionally, so the
/// same code is correct in one process and on several nodes sharing a database.
/// </summary>
internal sealed class SubscriptionOperations(
    IStreamStore store, ISubscriptionRepository repository, TimeProvider time, WebhookUrlPolicy policy, WebhookSigner signer,
    SubscriptionUpdater updater, StreamViews views, SubscriptionIndex index, WakeScheduler scheduler)
{
    /// <summary>Null when the URL may receive webhooks (§6.2 SSRF rules), otherwise why not.</summary>
    public Task<string?> ValidateWebhookUrlAsync(string url, CancellationToken cancellationToken) => policy.ValidateAsync(url, cancellationToken);

    public byte[] JwksJson() => signer.JwksJson();

    public async Task<SubscriptionResult<SubscriptionView>> CreateOrConfirmAsync(string id, SubscriptionConfig config, string baseUrl, CancellationToken cancellationToken)
    {
        var hash = config.ComputeHash();
        SubscriptionState subscription;
        while (true)
        {
            if (await repository.GetAsync(id, cancellationToken) is { } existing)
            {
                return existing.State.ConfigHash == hash
                    ? new SubscriptionView(existing.State, signer.ActiveKid, Created: false)
                    : new SubscriptionError(SubscriptionErrorCode.SubscriptionAlreadyExists, "A subscription with this id exists with a different configuration.");
            }
            subscription = SubscriptionState.Create(id, config, time.GetUtcNow(), baseUrl);
            foreach (var path in subscription.Streams)
            {
                subscription.Links[path] = new SubscriptionLink { Explicit = true, AckedOffset = (await views.CurrentTailAsync(path, cancellationToken)).ToString() };
            }
            if (subscription.Pattern is not null && store is IStreamCatalog catalog)
            {
                // Eager back-fill (§6.2): existing matches are linked at their tail, so history is not replayed.
                foreach (var name in MatchingStreams(catalog, subscription))
                {
                    if (subscription.Links.TryGetValue(name, out var link))
                    {
                        link.Glob = true;
                    }
                    else
                    {
                        subscription.Links[name] = new SubscriptionLink { Glob = true, AckedOffset = (await views.CurrentTailAsync(name, cancellationToken)).ToString() };
                    }
                }
            }
            if (await repository.TryInsertAsync(subscription, cancellationToken))
            {
                break;
            }
            // Another request (or node) created it meanwhile: confirm against what it stored.
        }
        if (subscription.Pattern is not null && store is IStreamCatalog lateCatalog)
        {
            // A stream created after the back-fill listed names but before the insert was visible to the change
            // listener is linked here, at its start (it was created after the subscription began).
            var late = MatchingStreams(lateCatalog, subscription).Where(n => !subscription.Links.ContainsKey(n)).ToArray();
            if (late.Length > 0)
            {
                await updater.UpdateAsync(id, stored =>
                {
                    foreach (var name in late)
                    {
                        stored.Links.TryAdd(name, new SubscriptionLink { Glob = true, AckedOffset = StreamOffset.Zero.ToString() });
                    }
                    return Save(true);
                }, missing: false, cancellationToken);
            }
        }
        await index.LinksChangedAsync([id], cancellationToken);
        // An append that landed between reading a tail and the index knowing the link has no other trigger.
        scheduler.Enqueue(id);
        var current = await repository.GetAsync(id, cancellationToken);
        return new SubscriptionView(current?.State ?? subscription, signer.ActiveKid, Created: true);
    }

    private static IEnumerable<string> MatchingStreams(IStreamCatalog catalog, SubscriptionState subscription) =>
        catalog.ListStreamNames().Where(name =>
            StreamGlob.IsMatch(subscription.Pattern!, name) && !ControlPaths.IsReserved(name) && name != subscription.WakeStream);

    public async Task<SubscriptionView?> GetAsync(string id, CancellationToken cancellationToken) =>
        await repository.GetAsync(id, cancellationToken) is { } subscription ? new SubscriptionView(subscription.State, signer.ActiveKid, Created: false) : null;

    /// <summary>Deletes (idempotently). In-flight wakes of it fail from now on and move no cursor.</summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        if (await repository.DeleteAsync(id, cancellationToken))
        {
            scheduler.CancelTimer(id);
            await index.LinksChangedAsync([id], cancellationToken);
        }
    }

    public async Task<SubscriptionError?> AddStreamsAsync(string id, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        var error = await updater.UpdateAsync<SubscriptionError?>(id, async subscription =>
        {
            foreach (var path in paths)
            {
                if (subscription.Links.TryGetValue(path, out var link))
                {
                    link.Explicit = true;
                }
                else
                {
                    subscription.Links[path] = new SubscriptionLink { Explicit = true, AckedOffset = (await views.CurrentTailAsync(path, cancellationToken)).ToString() };
                }
            }
            return Save<SubscriptionError?>(null);
        }, NotFound(), cancellationToken);
        if (error is null)
        {
            await index.LinksChangedAsync([id], cancellationToken);
        }
        return error;
    }

    public async Task<SubscriptionError?> RemoveStreamAsync(string id, string path, CancellationToken cancellationToken)
    {
        var removed = false;
        var error = await updater.UpdateAsync<SubscriptionError?>(id, subscription =>
        {
            removed = false;
            if (subscription.Links.TryGetValue(path, out var link) && link.Explicit)
            {
                link.Explicit = false;
                if (!link.Glob)
                {
                    subscription.Links.Remove(path);
                }
                removed = true;
                return Save<SubscriptionError?>(null);
            }
            return Keep<SubscriptionError?>(null);
        }, NotFound(), cancellationToken);
        if (removed)
        {
            await index.LinksChangedAsync([id], cancellationToken);
        }
        return error;
    }

    /// <summary>Adds a new signing key; older keys stay in the JWKS for <paramref name="publishOldKeysFor"/>.</summary>
    public async Task RotateSigningKeyAsync(TimeSpan publishOldKeysFor, CancellationToken cancellationToken)
    {
        signer.Rotate(time.GetUtcNow(), publishOldKeysFor);
        await repository.SaveSigningKeysAsync(signer.States, cancellationToken);
    }

    internal static SubscriptionError NotFound() => new(SubscriptionErrorCode.SubscriptionNotFound, "Subscription not found.");
}
