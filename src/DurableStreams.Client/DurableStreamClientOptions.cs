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

    /// <summary>
    /// Longest wait for the answer to a long-poll (<c>live=long-poll</c>), which the server holds until data arrives or
    /// its own timeout (30 s on this server and the reference server) ends it. The wait is the larger of this and
    /// <see cref="RequestTimeout"/>, so a short <see cref="RequestTimeout"/> never cuts off a wait the server is still
    /// holding. Default 60 s. Must be above zero.
    /// </summary>
    public TimeSpan LongPollTimeout { get; init; } = TimeSpan.FromSeconds(60);

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
/// Exponential back-off with jitter, used on network errors, 429 and 5xx (except 501 and 507): the delay before retry n
/// is drawn from [d/2, d] where d = InitialDelay·Multiplier^(n−1), capped at MaxDelay. A <c>Retry-After</c> header
/// (seconds or an HTTP date), when present, replaces the computed delay (capped at <see cref="MaxRetryAfter"/>). Checked
/// when a <see cref="DurableStreamClient"/> is constructed: MaxRetries ≥ 0, InitialDelay &gt; 0, MaxDelay ≥ InitialDelay,
/// Multiplier ≥ 1, MaxRetryAfter ≥ 0 (an <see cref="ArgumentException"/> names the option as <c>retry.maxRetries</c>,
/// <c>retry.initialDelayMs</c>, <c>retry.maxDelayMs</c>, <c>retry.multiplier</c> or <c>retry.maxRetryAfterMs</c>).
/// Following reads (<see cref="LiveMode"/> other than <see cref="LiveMode.None"/>) use the same delays but their own
/// budget: <see cref="ReadOptions.MaxRetries"/> and <see cref="ReadOptions.RetryFor"/>.
/// </summary>
public sealed record RetryPolicy
{
    /// <summary>3 attempts (2 retries), 100 ms initial delay, multiplier 2, 5 s maximum delay.</summary>
    public static RetryPolicy Default { get; } = new();

    /// <summary>A single attempt: nothing is retried.</summary>
    public static RetryPolicy None { get; } = new() { MaxAttempts = 1 };

    /// <summary>Total attempts including the first (<see cref="MaxRetries"/> + 1); default 3. Must be at least 1.</summary>
    public int MaxAttempts { get; init; } = 3;

    /// <summary>Retries after the first attempt (<see cref="MaxAttempts"/> − 1); default 2. Must be at least 0.</summary>
    public int MaxRetries
    {
        get => MaxAttempts - 1;
        init => MaxAttempts = value + 1;
    }

    /// <summary>Delay before the first retry (then multiplied by <see cref="Multiplier"/> per retry, and jittered); default 100 ms. Must be above zero.</summary>
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The same as <see cref="InitialDelay"/> (its earlier name).</summary>
    public TimeSpan BaseDelay
    {
        get => InitialDelay;
        init => InitialDelay = value;
    }

    /// <summary>Upper bound of any single delay; default 5 s. Must be at least <see cref="InitialDelay"/>.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Factor between consecutive delays; default 2 (doubling). Must be a finite number of at least 1.</summary>
    public double Multiplier { get; init; } = 2.0;

    /// <summary>
    /// Longest wait a server's <c>Retry-After</c> (on 429 or 5xx) can ask for; a longer one is cut to this. Default 60 s.
    /// Must be at least zero.
    /// </summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first invalid option (suite spelling in the message).</summary>
    internal void Validate(string paramName)
    {
        if (MaxAttempts < 1)
        {
            throw new ArgumentException($"retry.maxRetries must be at least 0 (RetryPolicy.MaxRetries; MaxAttempts at least 1); got {MaxRetries}.", paramName);
        }
        if (InitialDelay <= TimeSpan.Zero)
        {
            throw new ArgumentException($"retry.initialDelayMs must be greater than 0 (RetryPolicy.InitialDelay); got {InitialDelay.TotalMilliseconds} ms.", paramName);
        }
        if (MaxDelay < InitialDelay)
        {
            throw new ArgumentException(
                $"retry.maxDelayMs must be at least retry.initialDelayMs (RetryPolicy.MaxDelay ≥ InitialDelay); got {MaxDelay.TotalMilliseconds} ms < {InitialDelay.TotalMilliseconds} ms.", paramName);
        }
        if (!double.IsFinite(Multiplier) || Multiplier < 1.0)
        {
            throw new ArgumentException($"retry.multiplier must be a finite number of at least 1.0 (RetryPolicy.Multiplier); got {Multiplier}.", paramName);
        }
        if (MaxRetryAfter < TimeSpan.Zero)
        {
            throw new ArgumentException($"retry.maxRetryAfterMs must be at least 0 (RetryPolicy.MaxRetryAfter); got {MaxRetryAfter.TotalMilliseconds} ms.", paramName);
        }
    }

    /// <summary>The delay before retry number <paramref name="retry"/> (1-based), honouring <paramref name="retryAfter"/>.</summary>
    internal TimeSpan DelayFor(int retry, TimeSpan? retryAfter)
    {
        if (retryAfter is { } after)
        {
            return after < TimeSpan.Zero ? TimeSpan.Zero : after > MaxRetryAfter ? MaxRetryAfter : after;
        }
        var scaled = InitialDelay.Ticks * Math.Pow(Multiplier, Math.Max(0, retry - 1));
        var ceiling = double.IsFinite(scaled) && scaled < MaxDelay.Ticks ? (long)scaled : MaxDelay.Ticks;
        if (ceiling <= 0)
        {
            return TimeSpan.Zero;
        }
        // Anywhere in [ceiling/2, ceiling] keeps retries spread without collapsing to zero.
        return TimeSpan.FromTicks(ceiling / 2 + Random.Shared.NextInt64(ceiling / 2 + 1));
    }
}
