using System.Text.Json;
using DurableStreams.Core;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Protocol;
using DurableStreams.Subscriptions.Webhooks;
using Microsoft.Extensions.Logging;
using static DurableStreams.Subscriptions.SubscriptionUpdater;

namespace DurableStreams.Subscriptions.Wakes;

/// <summary>
/// Decides whether a subscription wakes (§7): expires a lapsed lease, then starts a wake if work is pending and nothing
/// is in flight — a webhook delivery, or wake events appended to a pull-wake subscription's wake stream. The write that
/// bumps the generation is conditional, so when several nodes evaluate at once exactly one delivers the wake.
/// </summary>
internal sealed class WakeEvaluator(
    IStreamStore store, TimeProvider time, ILogger logger, SubscriptionUpdater updater, StreamViews views, WakeScheduler scheduler, WebhookDelivery webhooks)
{
    public async Task EvaluateAsync(string id, CancellationToken cancellationToken)
    {
        var evaluation = await updater.UpdateAsync(id, subscription => DecideAsync(subscription, cancellationToken), Evaluation.Nothing, cancellationToken);
        if (evaluation.WakeAt is { } wakeAt)
        {
            scheduler.ScheduleAt(id, wakeAt);
        }
        if (evaluation.Then is { } then)
        {
            await then();
        }
    }

    private async Task<Decision<Evaluation>> DecideAsync(SubscriptionState subscription, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var changed = false;
        if (subscription.WakeId is not null)
        {
            if (subscription.LeaseExpiresAt is not { } expires)
            {
                return Keep(Evaluation.Nothing); // A pull-wake wake is waiting for a claim.
            }
            if (now < expires)
            {
                return Keep(new Evaluation(expires, null));
            }
            Wake.Clear(subscription);
            changed = true;
        }
        if (subscription.NextAttemptAt is { } next && now < next)
        {
            return new Decision<Evaluation>(new Evaluation(next, null), changed);
        }
        var streams = await views.ViewAsync(subscription, cancellationToken);
        var pending = streams.Where(s => s.HasPending).ToArray();
        if (pending.Length == 0)
        {
            if (subscription.NextAttemptAt is not null)
            {
                subscription.NextAttemptAt = null;
                subscription.RetryCount = 0;
                changed = true;
            }
            return new Decision<Evaluation>(Evaluation.Nothing, changed);
        }
        subscription.Generation++;
        subscription.WakeId = Wake.NewId();
        subscription.WakeSnapshot = pending.ToDictionary(s => s.Path, s => s.TailOffset, StringComparer.Ordinal);
        var id = subscription.Id;
        if (subscription.Type == SubscriptionType.Webhook)
        {
            subscription.LeaseHolder = Wake.WebhookHolder;
            subscription.LeaseExpiresAt = now.AddMilliseconds(subscription.LeaseTtlMs);
            var body = webhooks.Body(subscription, pending);
            var (wakeId, url) = (subscription.WakeId, subscription.WebhookUrl!);
            return Save(new Evaluation(subscription.LeaseExpiresAt, () =>
            {
                webhooks.Send(id, wakeId, url, body);
                return Task.CompletedTask;
            }));
        }
        subscription.LeaseHolder = null;
        subscription.LeaseExpiresAt = null;
        var events = WakeEvents(subscription, pending, now);
        var wakeStream = subscription.WakeStream!;
        return Save(new Evaluation(null, () => AppendWakeEventsAsync(id, wakeStream, events, cancellationToken)));
    }

    /// <summary>
    /// Appends a pull-wake subscription's wake events. The store raises the append like any other, so subscriptions
    /// watching the wake stream hear it without being told.
    /// </summary>
    private async Task AppendWakeEventsAsync(string id, string wakeStream, byte[] events, CancellationToken cancellationToken)
    {
        var result = await store.AppendAsync(wakeStream, new AppendRequest { ContentType = ContentTypes.Json, Body = events }, cancellationToken);
        if (result.Status != AppendStatus.Appended)
        {
            SubscriptionLog.WakeStreamFailed(logger, id, wakeStream, result.Status.ToString());
        }
    }

    private static byte[] WakeEvents(SubscriptionState subscription, IReadOnlyList<StreamView> pending, DateTimeOffset now)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var stream in pending)
            {
                writer.WriteStartObject();
                writer.WriteString("type", "wake");
                writer.WriteString("subscription_id", subscription.Id);
                writer.WriteString("stream", stream.Path);
                writer.WriteNumber("generation", subscription.Generation);
                writer.WriteNumber("ts", now.ToUnixTimeMilliseconds());
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        return buffer.ToArray();
    }
}
