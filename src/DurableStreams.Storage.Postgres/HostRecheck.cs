using System.Diagnostics;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

/// <summary>
/// Makes a multi-host data source (<c>Host=a,b;Target Session Attributes=read-write</c>) look for the read-write
/// primary again after a command failed, instead of trusting what it learned of each host for up to
/// <c>Host Recheck Seconds</c> (Npgsql default 10 s). Npgsql caches a dead host as offline and a standby as standby;
/// after the standby is promoted the cache would keep every connection away from the new primary until it expires.
/// Forgetting is throttled to once per <see cref="MinInterval"/> so a burst of failing requests costs one re-probe of the
/// hosts, not one per request. A single-host data source has nothing to forget.
/// </summary>
internal sealed class HostRecheck(NpgsqlDataSource dataSource)
{
    /// <summary>Least time between two resets caused by failing commands.</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(250);

    // Real elapsed time, not the store's TimeProvider: this paces connection attempts, not protocol time.
    private long _last = Stopwatch.GetTimestamp() - Stopwatch.Frequency;

    /// <summary>After a failed command: forget the hosts' states unless that was done less than <see cref="MinInterval"/> ago.</summary>
    public bool AfterFailure()
    {
        if (dataSource is not NpgsqlMultiHostDataSource)
        {
            return false;
        }
        var now = Stopwatch.GetTimestamp();
        var last = Volatile.Read(ref _last);
        if (Stopwatch.GetElapsedTime(last, now) < MinInterval || Interlocked.CompareExchange(ref _last, now, last) != last)
        {
            return false;
        }
        Reset();
        return true;
    }

    /// <summary>Forgets the hosts' states now (the next connection re-checks which host is the read-write primary).</summary>
    public void Reset()
    {
        if (dataSource is NpgsqlMultiHostDataSource multiHost)
        {
            multiHost.ClearDatabaseStates();
        }
    }
}
