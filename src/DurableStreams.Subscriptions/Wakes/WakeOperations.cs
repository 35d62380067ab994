using DurableStreams.Core.Subscriptions;
using DurableStreams.Protocol;
using DurableStreams.Subscriptions.Webhooks;
using static DurableStreams.Subscriptions.SubscriptionUpdater;

namespace DurableStreams.Subscriptions.Wakes;

/// <summary>
/// The calls a woken consumer makes (§7.1–7.3): the webhook callback and pull-wake ack (fencing, acks, lease extension
/// or release), the pull-wake release and claim. Racing calls (on any node) have exactly one winner: each is one
/// conditional write.
/// </summary>
internal sealed class WakeOperations(
    TimeProvider time, WebhookSigner signer, SubscriptionUpdater updater, StreamViews views, WakeScheduler scheduler)
{
    /// <summary>Webhook callback (§7.1) or pull-wake ack (§7.2): fencing, acks, lease extension or release.</summary>
    public async Task<SubscriptionResult<bool>> AckAsync(string id, string token, AckRequest request, SubscriptionType expected, CancellationToken cancellationToken)
    {
        if (CheckTokenSubject(id, token) is { } invalid)
        {
            return new SubscriptionResult<bool>(false, invalid);
        }
        var outcome = await updater.UpdateAsync(id, async subscription =>
        {
            if (CheckFence(subscription, token, request, expected) is { } error)
            {
                return Keep(new AckOutcome(error, null));
            }
            var parsed = new List<(SubscriptionLink Link, StreamOffset Offset)>();
            foreach (var (stream, offsetText) in request.Acks)
            {
                var path = SubscriptionConfig.NormalizePath(stream);
                if (!subscription.Links.TryGetValue(path, out var link))
                {
                    return Keep(new AckOutcome(new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"Stream '{path}' is not linked to this subscription."), null));
                }
                if (!StreamOffset.TryParse(offsetText, out var offset))
                {
                    return Keep(new AckOutcome(new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"'{offsetText}' is not a valid offset."), null));
                }
                var tail = await views.CurrentTailAsync(path, cancellationToken);
                if (offset > tail)
                {
                    return Keep(new AckOutcome(new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"Offset '{offsetText}' is beyond the tail of '{path}'."), null));
                }
                parsed.Add((link, offset));
            }
            foreach (var (link, offset) in parsed)
            {
                if (StreamOffset.TryParse(link.AckedOffset, out var acked) && offset > acked)
                {
                    link.AckedOffset = offset.ToString();
                }
            }
            if (request.Done)
            {
                Wake.Clear(subscription);
                return Save(new AckOutcome(new SubscriptionResult<bool>(await views.HasPendingAsync(subscription, cancellationToken), null), null));
            }
            subscription.LeaseExpiresAt = time.GetUtcNow().AddMilliseconds(subscription.LeaseTtlMs);
            return Save(new AckOutcome(new SubscriptionResult<bool>(false, null), subscription.LeaseExpiresAt));
        }, new AckOutcome(SubscriptionOperations.NotFound(), null), cancellationToken);
        if (outcome.Result.Error is null)
        {
            if (outcome.LeaseUntil is { } until)
            {
                scheduler.ScheduleAt(id, until);
            }
            else
            {
                scheduler.CancelTimer(id);
                if (outcome.Result.Value)
                {
                    scheduler.Enqueue(id);
                }
            }
        }
        return outcome.Result;
    }

    /// <summary>Pull-wake release (§7.2): gives the lease back without acking; pending work is woken again.</summary>
    public async Task<SubscriptionError?> ReleaseAsync(string id, string token, AckRequest request, CancellationToken cancellationToken)
    {
        if (CheckTokenSubject(id, token) is { } invalid)
        {
            return invalid;
        }
        var error = await updater.UpdateAsync(id, subscription =>
        {
            if (CheckFence(subscription, token, request, SubscriptionType.PullWake) is { } fenced)
            {
                return Keep<SubscriptionError?>(fenced);
            }
            Wake.Clear(subscription);
            return Save<SubscriptionError?>(null);
        }, SubscriptionOperations.NotFound(), cancellationToken);
        if (error is null)
        {
            scheduler.CancelTimer(id);
            scheduler.Enqueue(id);
        }
        return error;
    }

    /// <summary>Pull-wake claim (§7.2): of racing claims (on any node) exactly one wins the conditional write.</summary>
    public async Task<SubscriptionResult<ClaimView>> ClaimAsync(string id, string worker, CancellationToken cancellationToken)
    {
        var result = await updater.UpdateAsync<SubscriptionResult<ClaimView>>(id, async subscription =>
        {
            if (subscription.Type != SubscriptionType.PullWake)
            {
                return Keep<SubscriptionResult<ClaimView>>(new SubscriptionError(SubscriptionErrorCode.InvalidRequest, "Only pull-wake subscriptions can be claimed."));
            }
            var now = time.GetUtcNow();
            if (subscription.LeaseHolder is { } holder)
            {
                if (subscription.LeaseExpiresAt > now)
                {
                    return Keep<SubscriptionResult<ClaimView>>(new SubscriptionError(SubscriptionErrorCode.AlreadyClaimed, "Another worker holds the lease.", holder, subscription.Generation));
                }
                Wake.Clear(subscription);
            }
            var streams = await views.ViewAsync(subscription, cancellationToken);
            var pending = streams.Where(s => s.HasPending).ToArray();
            if (subscription.WakeId is null)
            {
                if (pending.Length == 0)
                {
                    return Keep<SubscriptionResult<ClaimView>>(new SubscriptionError(SubscriptionErrorCode.NoPendingWork, "The subscription has no pending work."));
                }
                subscription.Generation++;
                subscription.WakeId = Wake.NewId();
            }
            subscription.WakeSnapshot = pending.ToDictionary(s => s.Path, s => s.TailOffset, StringComparer.Ordinal);
            subscription.LeaseHolder = worker;
            subscription.LeaseExpiresAt = now.AddMilliseconds(subscription.LeaseTtlMs);
            var token = signer.CreateToken(id, subscription.Generation, subscription.WakeId);
            return Save<SubscriptionResult<ClaimView>>(new ClaimView(subscription.WakeId, subscription.Generation, token, pending, subscription.LeaseTtlMs, subscription.LeaseExpiresAt.Value));
        }, SubscriptionOperations.NotFound(), cancellationToken);
        if (result.Value is { } claim)
        {
            scheduler.ScheduleAt(id, claim.LeaseExpiresAt);
        }
        return result;
    }

    /// <summary>
    /// The token must be one this server signed for <paramref name="id"/>, checked before the subscription is looked up:
    /// a junk or another subscription's token gets the same 401 whether or not <paramref name="id"/> exists, so
    /// callback, ack and release cannot be used to probe for subscription ids.
    /// </summary>
    private SubscriptionError? CheckTokenSubject(string id, string token) =>
        signer.ReadToken(token) is { } claims && claims.Sub == id ? null : InvalidToken();

    private static SubscriptionError InvalidToken() => new(SubscriptionErrorCode.TokenInvalid, "The bearer token is not valid for this subscription.");

    /// <summary>The token and request must name the current wake of the subscription, of the expected type (§7.3).</summary>
    private SubscriptionError? CheckFence(SubscriptionState subscription, string token, AckRequest request, SubscriptionType expected)
    {
        var claims = signer.ReadToken(token);
        if (claims is null || claims.Sub != subscription.Id)
        {
            return InvalidToken();
        }
        if (subscription.Type != expected)
        {
            return new SubscriptionError(SubscriptionErrorCode.InvalidRequest, "This endpoint does not apply to the subscription's delivery type.");
        }
        var now = time.GetUtcNow();
        var leaseLive = subscription.LeaseHolder is not null && subscription.LeaseExpiresAt > now;
        if (subscription.WakeId is null || !leaseLive || claims.Gen != subscription.Generation || claims.Wid != subscription.WakeId
            || request.Generation != subscription.Generation || request.WakeId != subscription.WakeId)
        {
            return new SubscriptionError(SubscriptionErrorCode.Fenced, "The wake is stale: its generation or wake id is not the current one.", Generation: subscription.Generation);
        }
        return null;
    }

    private sealed record AckOutcome(SubscriptionResult<bool> Result, DateTimeOffset? LeaseUntil);
}
