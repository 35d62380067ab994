using System.Text.Json.Serialization;

namespace DurableStreams.Core.Subscriptions;

/// <summary>
/// Everything a subscription needs to survive a restart (§6–7): configuration, stream links with acked offsets,
/// generation, the current wake and its lease, and the webhook retry schedule. A plain data object: the subscription
/// engine mutates it under its own lock and hands copies to an <see cref="ISubscriptionStateStore"/>.
/// </summary>
public sealed class SubscriptionState
{
    public required string Id { get; set; }
    public required SubscriptionType Type { get; set; }
    public string? Pattern { get; set; }
    /// <summary>Explicit streams as configured by the PUT (the hashed list; POST/DELETE …/streams change links only).</summary>
    public List<string> Streams { get; set; } = [];
    public string? WebhookUrl { get; set; }
    public string? WakeStream { get; set; }
    public int LeaseTtlMs { get; set; } = SubscriptionConfig.DefaultLeaseTtlMs;
    public string? Description { get; set; }
    public required string ConfigHash { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>The stream root URL the subscription was created through (callback and JWKS URLs are built from it).</summary>
    public string? BaseUrl { get; set; }

    /// <summary>Linked streams by path.</summary>
    public Dictionary<string, SubscriptionLink> Links { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Fencing counter; increments for every wake (§7.3).</summary>
    public long Generation { get; set; }
    /// <summary>The current wake, or null when idle.</summary>
    public string? WakeId { get; set; }
    /// <summary>Tail offsets of the current wake's snapshot, by path (what <c>done: true</c> acks).</summary>
    public Dictionary<string, string> WakeSnapshot { get; set; } = new(StringComparer.Ordinal);
    /// <summary>The pull-wake worker holding the lease, or the webhook marker while a webhook wake is in flight.</summary>
    public string? LeaseHolder { get; set; }
    /// <summary>When the current lease ends; null while no lease is held (a pull-wake wake not yet claimed).</summary>
    public DateTimeOffset? LeaseExpiresAt { get; set; }

    /// <summary>Failed webhook attempts in a row.</summary>
    public int RetryCount { get; set; }
    /// <summary>When the next webhook attempt may run after a failure (§7.1); null when none is scheduled.</summary>
    public DateTimeOffset? NextAttemptAt { get; set; }

    /// <summary><c>failed</c> while a webhook retry is scheduled, otherwise <c>active</c>.</summary>
    [JsonIgnore]
    public string Status => NextAttemptAt is null ? "active" : "failed";

    /// <summary>The configuration part, as hashed.</summary>
    public SubscriptionConfig ToConfig() => new()
    {
        Type = Type,
        Pattern = Pattern,
        Streams = Streams,
        WebhookUrl = WebhookUrl,
        WakeStream = WakeStream,
        LeaseTtlMs = LeaseTtlMs,
        Description = Description,
    };

    /// <summary>A new, idle subscription from a configuration.</summary>
    public static SubscriptionState Create(string id, SubscriptionConfig config, DateTimeOffset createdAt, string? baseUrl) => new()
    {
        Id = id,
        Type = config.Type,
        Pattern = config.Pattern,
        Streams = SubscriptionConfig.NormalizeStreams(config.Streams).ToList(),
        WebhookUrl = config.WebhookUrl,
        WakeStream = config.WakeStream,
        LeaseTtlMs = config.LeaseTtlMs,
        Description = config.Description,
        ConfigHash = config.ComputeHash(),
        CreatedAt = createdAt,
        BaseUrl = baseUrl,
    };
}

/// <summary>One linked stream (§6.1): how it is linked and the last processed offset (inclusive).</summary>
public sealed class SubscriptionLink
{
    public bool Explicit { get; set; }
    public bool Glob { get; set; }
    /// <summary>The last acked offset in the protocol's text form.</summary>
    public required string AckedOffset { get; set; }

    /// <summary><c>explicit</c> wins over <c>glob</c> in responses (§6.1).</summary>
    [JsonIgnore]
    public string LinkType => Explicit ? "explicit" : "glob";
}

/// <summary>A webhook signing key (Ed25519). Retired keys stay published in the JWKS until <see cref="RetireAfter"/>.</summary>
public sealed class SigningKeyState
{
    public required string Kid { get; set; }
    /// <summary>The 32-byte private seed, base64url.</summary>
    public required string PrivateKey { get; set; }
    /// <summary>The 32-byte public key, base64url.</summary>
    public required string PublicKey { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>Set when a newer key took over; the key is still published until then plus the replay window.</summary>
    public DateTimeOffset? RetireAfter { get; set; }
}

/// <summary>All persisted subscription state, as loaded at start-up.</summary>
public sealed class SubscriptionStateSnapshot
{
    public List<SubscriptionState> Subscriptions { get; set; } = [];
    /// <summary>Signing keys, oldest first; the last one signs.</summary>
    public List<SigningKeyState> SigningKeys { get; set; } = [];
}
