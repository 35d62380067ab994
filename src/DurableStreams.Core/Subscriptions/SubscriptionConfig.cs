using System.Security.Cryptography;
using System.Text.Json;

namespace DurableStreams.Core.Subscriptions;

/// <summary>How a subscription delivers wakes (§6.2).</summary>
public enum SubscriptionType
{
    Webhook,
    PullWake,
}

/// <summary>
/// A subscription's normalised configuration (§6.2): what a PUT sets and what its idempotency hash covers.
/// Paths are stream-root-relative, without leading or trailing slashes; explicit streams are distinct and sorted.
/// </summary>
public sealed class SubscriptionConfig
{
    /// <summary>Shortest lease (§6.2): 1 second.</summary>
    public const int MinLeaseTtlMs = 1_000;

    /// <summary>Longest lease (§6.2): 10 minutes.</summary>
    public const int MaxLeaseTtlMs = 600_000;

    /// <summary>Lease when none is given (§6.2): 30 seconds.</summary>
    public const int DefaultLeaseTtlMs = 30_000;

    public required SubscriptionType Type { get; init; }
    public string? Pattern { get; init; }
    public IReadOnlyList<string> Streams { get; init; } = [];
    public string? WebhookUrl { get; init; }
    public string? WakeStream { get; init; }
    public int LeaseTtlMs { get; init; } = DefaultLeaseTtlMs;
    public string? Description { get; init; }

    /// <summary>The protocol's name of a subscription type.</summary>
    public static string FormatType(SubscriptionType type) => type == SubscriptionType.Webhook ? "webhook" : "pull-wake";

    /// <summary>Parses a protocol type name; false for anything else.</summary>
    public static bool TryParseType(string? text, out SubscriptionType type)
    {
        switch (text)
        {
            case "webhook":
                type = SubscriptionType.Webhook;
                return true;
            case "pull-wake":
                type = SubscriptionType.PullWake;
                return true;
            default:
                type = default;
                return false;
        }
    }

    /// <summary>A path without leading or trailing slashes (the form stored and compared).</summary>
    public static string NormalizePath(string path) => path.Trim().Trim('/');

    /// <summary>Explicit stream paths normalised, de-duplicated and sorted ordinally.</summary>
    public static IReadOnlyList<string> NormalizeStreams(IEnumerable<string> streams) =>
        streams.Select(NormalizePath).Where(s => s.Length > 0).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// SHA-256 (lowercase hex) over a canonical JSON rendering of the normalised configuration: type, pattern, sorted
    /// streams, delivery target, lease and description, in a fixed order, so equal configurations hash equally.
    /// </summary>
    public string ComputeHash()
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", FormatType(Type));
            WriteNullable(writer, "pattern", Pattern);
            writer.WriteStartArray("streams");
            foreach (var stream in NormalizeStreams(Streams))
            {
                writer.WriteStringValue(stream);
            }
            writer.WriteEndArray();
            WriteNullable(writer, "webhook_url", WebhookUrl);
            WriteNullable(writer, "wake_stream", WakeStream);
            writer.WriteNumber("lease_ttl_ms", LeaseTtlMs);
            WriteNullable(writer, "description", Description);
            writer.WriteEndObject();
        }
        return Convert.ToHexStringLower(SHA256.HashData(buffer.ToArray()));
    }

    private static void WriteNullable(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, value);
        }
    }
}
