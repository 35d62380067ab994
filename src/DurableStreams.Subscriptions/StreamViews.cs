using System.Text.Json;
using DurableStreams.Core;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Protocol;

namespace DurableStreams.Subscriptions;

/// <summary>A subscription's linked streams with their tails read from the store, and their JSON form.</summary>
internal sealed class StreamViews(IStreamStore store)
{
    /// <summary>Every link, ordered by path, with the stream's current tail and whether work is pending.</summary>
    public async Task<List<StreamView>> ViewAsync(SubscriptionState subscription, CancellationToken cancellationToken)
    {
        var views = new List<StreamView>(subscription.Links.Count);
        foreach (var (path, link) in subscription.Links.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            var metadata = await store.GetMetadataAsync(path, cancellationToken);
            var acked = StreamOffset.TryParse(link.AckedOffset, out var a) ? a : StreamOffset.Zero;
            var tail = metadata.Status == ReadStatus.Ok ? metadata.Info!.Tail : acked;
            views.Add(new StreamView(path, link.LinkType, link.AckedOffset, tail.ToString(), tail > acked));
        }
        return views;
    }

    public async Task<bool> HasPendingAsync(SubscriptionState subscription, CancellationToken cancellationToken) =>
        (await ViewAsync(subscription, cancellationToken)).Exists(s => s.HasPending);

    /// <summary>The stream's tail, or zero when it does not exist.</summary>
    public async Task<StreamOffset> CurrentTailAsync(string path, CancellationToken cancellationToken)
    {
        var metadata = await store.GetMetadataAsync(path, cancellationToken);
        return metadata.Status == ReadStatus.Ok ? metadata.Info!.Tail : StreamOffset.Zero;
    }

    /// <summary>Writes stream views as the protocol's JSON array.</summary>
    public static void Write(Utf8JsonWriter writer, IEnumerable<StreamView> streams, bool withTail)
    {
        writer.WriteStartArray();
        foreach (var stream in streams)
        {
            writer.WriteStartObject();
            writer.WriteString("path", stream.Path);
            writer.WriteString("link_type", stream.LinkType);
            writer.WriteString("acked_offset", stream.AckedOffset);
            if (withTail)
            {
                writer.WriteString("tail_offset", stream.TailOffset);
                writer.WriteBoolean("has_pending", stream.HasPending);
            }
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }
}
