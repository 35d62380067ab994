using System.Security.Cryptography;
using DurableStreams.Core.Subscriptions;

namespace DurableStreams.Subscriptions.Wakes;

/// <summary>Small pieces every wake path shares: wake ids and ending a wake.</summary>
internal static class Wake
{
    /// <summary>The holder recorded for a webhook wake's lease.</summary>
    public const string WebhookHolder = "webhook";

    public static string NewId() => "w_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    /// <summary>Ends the current wake: no wake id, snapshot or lease.</summary>
    public static void Clear(SubscriptionState subscription)
    {
        subscription.WakeId = null;
        subscription.WakeSnapshot = new Dictionary<string, string>(StringComparer.Ordinal);
        subscription.LeaseHolder = null;
        subscription.LeaseExpiresAt = null;
    }
}

/// <summary>What an evaluation (or a delivery outcome) decided to do once its write has won.</summary>
internal sealed record Evaluation(DateTimeOffset? WakeAt, Func<Task>? Then)
{
    public static readonly Evaluation Nothing = new(null, null);
}
