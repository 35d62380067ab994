using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableStreams.Client;

/// <summary>Settings of a <see cref="DurableStreamClient"/>. Immutable; derive variants with <c>with</c>.</summary>
public sealed record DurableStreamClientOptions
{
    /// <summary>Defaults: the protocol's port on loopback, no authorization, 60 s request timeout, <see cref="RetryPolicy.Default"/>.</summary>
    public static DurableStreamClientOptions Default { get; } = new();

    /// <summary>The streams root, e.g. <c>http://127.0.0.1:4437/v1/stream/</c>; stream names are resolved below it. Default is that URL.</summary>
    public Uri BaseUrl { get; init; } = new("http://127.0.0.1:4437/v1/stream/");

    /// <summary>The <c>Authorization</c> header value sent with every request (for example <c>Bearer …</c>); none by default.</summary>
    public string? Authorization { get; init; }

    /// <summary>Extra headers sent with every request; none by default.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Headers computed for every request, each provider called once per request (retries included), for values that
    /// change: rotating tokens, correlation ids. A provided header replaces a static one of the same name
    /// (<see cref="Headers"/>, <see cref="Authorization"/>). None by default.
    /// </summary>
    public IReadOnlyDictionary<string, Func<CancellationToken, ValueTask<string>>> HeaderProviders { get; init; } =
        new Dictionary<string, Func<CancellationToken, ValueTask<string>>>();

    /// <summary>
    /// Query parameters computed for every request (for example a signed-URL token), each provider called once per
    /// request and its value appended (escaped) to the request's URL. None by default.
    /// </summary>
    public IReadOnlyDictionary<string, Func<CancellationToken, ValueTask<string>>> QueryParameterProviders { get; init; } =
        new Dictionary<string, Func<CancellationToken, ValueTask<string>>>();

    /// <summary>
    /// Longest wait for a response's headers (catch-up bodies included). Default 60 s, longer than the server's 30 s
    /// long-poll timeout so a parked long-poll is never cut off. SSE bodies are not limited by it.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Retries for idempotent operations only (reads, HEAD, PUT create, DELETE, close, producer appends).</summary>
    public RetryPolicy Retry { get; init; } = RetryPolicy.Default;

    /// <summary>
    /// Also retry plain appends (<see cref="DurableStreamClient.AppendAsync(string, ReadOnlyMemory{byte}, string, AppendOptions?, CancellationToken)"/>
    /// with an in-memory body) by <see cref="Retry"/> on network errors, timeouts, 429 and 5xx. Default false: a plain
    /// POST whose response was lost may have been written, and its retry appends the data twice. Opt in only where a
    /// duplicate is acceptable or ruled out (a <see cref="AppendOptions.StreamSeq"/> makes the retry fail with
    /// <see cref="DurableStreamErrorCode.SequenceConflict"/> instead); an <see cref="IdempotentProducer"/> retries safely.
    /// </summary>
    public bool RetryAppends { get; init; }

    /// <summary>Clock for retry back-off and producer linger; <see cref="TimeProvider.System"/> by default.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Where the client logs (category <c>DurableStreams.Client</c>): each request and its response status at Debug,
    /// retries at Information. <see cref="NullLoggerFactory.Instance"/> (no logging) by default.
    /// </summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}

/// <summary>
/// Exponential back-off with jitter (each delay drawn from [d/2, d] where d = BaseDelay·2^(retry−1), capped at MaxDelay), used on network errors, 429 and 5xx (except 501 and 507). A
/// <c>Retry-After</c> header, when present, replaces the computed delay (capped at <see cref="MaxDelay"/>).
/// </summary>
public sealed record RetryPolicy
{
    /// <summary>3 attempts, 100 ms base delay, 5 s maximum delay.</summary>
    public static RetryPolicy Default { get; } = new();

    /// <summary>A single attempt: nothing is retried.</summary>
    public static RetryPolicy None { get; } = new() { MaxAttempts = 1 };

    /// <summary>Total attempts including the first; default 3. Values below 1 count as 1.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Delay before the first retry (doubled per retry, then jittered); default 100 ms.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Upper bound of any single delay; default 5 s.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The delay before retry number <paramref name="retry"/> (1-based), honouring <paramref name="retryAfter"/>.</summary>
    internal TimeSpan DelayFor(int retry, TimeSpan? retryAfter)
    {
        if (retryAfter is { } after)
        {
            return after < TimeSpan.Zero ? TimeSpan.Zero : after > MaxDelay ? MaxDelay : after;
        }
        var exponent = Math.Min(retry - 1, 30);
        var ceiling = Math.Min(MaxDelay.Ticks, BaseDelay.Ticks * (1L << exponent));
        if (ceiling <= 0)
        {
            return TimeSpan.Zero;
        }
        // Anywhere in [ceiling/2, ceiling] keeps retries spread without collapsing to zero.
        return TimeSpan.FromTicks(ceiling / 2 + Random.Shared.NextInt64(ceiling / 2 + 1));
    }
}
