using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace DurableStreams.Cli;

/// <summary>
/// Parses the durations accepted on the command line: a whole number with an optional unit
/// (<c>500ms</c>, <c>30s</c>, <c>2m</c>, <c>1h</c>, <c>7d</c>); a number without a unit means seconds (<c>30</c>).
/// </summary>
internal static class DurationParser
{
    /// <summary>Describes the accepted forms; used in error messages and help text.</summary>
    public const string ExpectedFormat = "a whole number with an optional unit ms, s, m, h or d (for example 500ms, 30s, 2m, 1h, 7d; no unit means seconds)";

    // A bare number means seconds.
    private static readonly (string Unit, long Ticks)[] s_units =
    [
        ("", TimeSpan.TicksPerSecond), ("s", TimeSpan.TicksPerSecond), ("ms", TimeSpan.TicksPerMillisecond),
        ("m", TimeSpan.TicksPerMinute), ("h", TimeSpan.TicksPerHour), ("d", TimeSpan.TicksPerDay),
    ];

    public static bool TryParse([NotNullWhen(true)] string? text, out TimeSpan duration)
    {
        var parsed = UnitQuantity.TryParse(text, s_units, TimeSpan.MaxValue.Ticks, out var ticks);
        duration = TimeSpan.FromTicks(ticks);
        return parsed;
    }

    /// <summary>Formats a duration in the largest unit that represents it exactly (<c>30s</c>, <c>500ms</c>, <c>2m</c>).</summary>
    public static string Format(TimeSpan duration)
    {
        var ticks = duration.Ticks;
        if (ticks != 0 && ticks % TimeSpan.TicksPerHour == 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ticks / TimeSpan.TicksPerHour}h");
        }

        if (ticks != 0 && ticks % TimeSpan.TicksPerMinute == 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ticks / TimeSpan.TicksPerMinute}m");
        }

        if (ticks % TimeSpan.TicksPerSecond == 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{ticks / TimeSpan.TicksPerSecond}s");
        }

        return string.Create(CultureInfo.InvariantCulture, $"{duration.TotalMilliseconds}ms");
    }
}
