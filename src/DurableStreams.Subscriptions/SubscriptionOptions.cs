using System.Net;
using DurableStreams.Core.Subscriptions;

namespace DurableStreams.Subscriptions;

/// <summary>Settings of the subscription APIs and webhook delivery (§6–7).</summary>
public sealed class SubscriptionOptions
{
    /// <summary>
    /// Where subscriptions, cursors, leases, retry schedules and the signing key are kept. Null (the default) keeps
    /// them in memory; <c>serve</c> with the file store uses a <c>FileSubscriptionStateStore</c> in its data directory.
    /// The server does not dispose a store given here.
    /// </summary>
    public ISubscriptionStateStore? State { get; set; }

    /// <summary>
    /// Subscription state shared by several server nodes (the PostgreSQL store's
    /// <c>PostgresStreamStore.CreateSubscriptionRepository()</c>); when set, <see cref="State"/> is ignored and every
    /// subscription call reads and conditionally writes this repository. The server does not dispose it.
    /// </summary>
    public ISubscriptionRepository? Repository { get; set; }

    /// <summary>
    /// How often a node checks a shared <see cref="Repository"/> for expired leases and due webhook retries, so a wake
    /// whose node died is retried by another; default 1 s. Unused for single-process state (local timers cover it).
    /// </summary>
    public TimeSpan SharedPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long one webhook request may take before it counts as failed; default 10 s.</summary>
    public TimeSpan WebhookTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The largest webhook response body read from a receiver, in bytes; default 64 KiB (65,536), plenty for
    /// <c>{ "done": true }</c>. The body is streamed and reading stops after this many bytes: a longer answer counts as a
    /// failed delivery and is retried on the usual schedule.
    /// </summary>
    public int MaxWebhookResponseBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// Accept <c>http://localhost</c> and <c>http://127.0.0.x</c> webhook URLs (§6.2 development exception); default
    /// false (<c>serve --allow-local-webhooks</c> turns it on). Numeric host forms count by the address they denote
    /// (<c>http://127.1</c> and <c>http://2130706433</c> are 127.0.0.1). Every other target must be https and resolve
    /// to public addresses.
    /// </summary>
    public bool AllowLocalhostHttp { get; set; }

    /// <summary>Resolves webhook host names for the SSRF checks; null uses DNS. Tests substitute their own.</summary>
    public Func<string, CancellationToken, Task<IPAddress[]>>? HostResolver { get; set; }

    /// <summary>
    /// The handler webhook requests go through; null (the default) uses a handler whose connections re-check every
    /// resolved address against the SSRF rules. A handler given here is not disposed by the server.
    /// </summary>
    public HttpMessageHandler? WebhookHandler { get; set; }

    /// <summary>Source of retry jitter, values in [0, 1); null uses <see cref="Random.Shared"/>.</summary>
    public Func<double>? JitterSource { get; set; }

    /// <summary>Throws when a setting is out of range.</summary>
    public void Validate()
    {
        if (WebhookTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(WebhookTimeout), WebhookTimeout, "Webhook timeout must be positive.");
        }
        if (MaxWebhookResponseBytes < 1 || MaxWebhookResponseBytes >= Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxWebhookResponseBytes), MaxWebhookResponseBytes, "The webhook response limit must be positive.");
        }
        if (SharedPollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(SharedPollInterval), SharedPollInterval, "The shared poll interval must be positive.");
        }
    }
}
