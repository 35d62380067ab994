namespace DurableStreams.Client.Internal;

/// <summary>
/// How many more attempts an operation may make: failed attempts in a row (<paramref name="maxRetries"/> retries after
/// the first failure; null for no limit) and time without progress (<paramref name="retryFor"/>; null for no limit).
/// A single request uses one per call; a following read shares one across its requests and reports progress on every
/// successful response, which starts the count afresh.
/// </summary>
internal sealed class RetryBudget(int? maxRetries, TimeSpan? retryFor, TimeProvider time)
{
    private long _progressAt = time.GetTimestamp();

    /// <summary>Failed attempts since the last progress.</summary>
    public int Failures { get; private set; }

    /// <summary>A successful response: the count and the clock start again.</summary>
    public void Progress()
    {
        Failures = 0;
        _progressAt = time.GetTimestamp();
    }

    /// <summary>
    /// Counts a failed attempt. True when another attempt is allowed, with <paramref name="retry"/> its 1-based number
    /// and <paramref name="longestDelay"/> the longest wait that still leaves time for it.
    /// </summary>
    public bool TryRetry(out int retry, out TimeSpan longestDelay)
    {
        retry = ++Failures;
        longestDelay = TimeSpan.MaxValue;
        if (maxRetries is { } max && Failures > max)
        {
            return false;
        }
        if (retryFor is { } limit)
        {
            var left = limit - time.GetElapsedTime(_progressAt);
            if (left <= TimeSpan.Zero)
            {
                return false;
            }
            longestDelay = left;
        }
        return true;
    }
}
