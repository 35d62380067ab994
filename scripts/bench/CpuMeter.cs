using System.Diagnostics;
using System.Globalization;

namespace DurableStreams.Bench;

/// <summary>
/// The server process's CPU time (user + system) over a scenario's measured window, read from /proc. CPU per operation
/// is a better figure than throughput on a shared, noisy machine: other load slows a server down but does not make
/// each request cost it more CPU.
/// </summary>
internal sealed class CpuMeter
{
    private readonly Task<double?> _seconds;

    private CpuMeter(int pid, long start, long end) => _seconds = MeasureAsync(pid, start, end);

    /// <summary>Starts sampling: once at <paramref name="start"/> and once at <paramref name="end"/> (Stopwatch timestamps).</summary>
    public static CpuMeter Start(int pid, long start, long end) => new(pid, start, end);

    /// <summary>Server CPU microseconds per operation, or null where /proc is unavailable.</summary>
    public async Task<double?> MicrosecondsPerOpAsync(double operations) =>
        await _seconds is { } seconds && operations > 0 ? seconds * 1e6 / operations : null;

    private static async Task<double?> MeasureAsync(int pid, long start, long end)
    {
        await DelayUntilAsync(start);
        var before = Read(pid);
        await DelayUntilAsync(end);
        var after = Read(pid);
        return before is { } b && after is { } a ? a - b : null;
    }

    /// <summary>The process's CPU time so far in seconds, or null where /proc is unavailable.</summary>
    public static double? ReadSeconds(int pid) => Read(pid);

    private static async Task DelayUntilAsync(long timestamp)
    {
        var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), timestamp);
        if (remaining > TimeSpan.Zero)
        {
            await Task.Delay(remaining);
        }
    }

    // /proc/<pid>/stat: fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised command name.
    private static double? Read(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return ticks / 100.0; // USER_HZ is 100 on Linux
        }
        catch (IOException)
        {
            return null;
        }
    }
}
