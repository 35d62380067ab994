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

    public static bool TryParse([NotNullWhen(true)] string? text, out TimeSpan duration)
    {
        duration = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var span = text.AsSpan().Trim();
        var digits = 0;
        while (digits < span.Length && char.IsAsciiDigit(span[digits]))
        {
            digits++;
        }

        if (digits == 0)
        {
            return false;
        }

        var unit = span[digits..];
        long ticksPerUnit;
        if (unit.IsEmpty || unit.Equals("s", StringComparison.OrdinalIgnoreCase))
        {
            ticksPerUnit = TimeSpan.TicksPerSecond;
        }
        else if (unit.Equals("ms", StringComparison.OrdinalIgnoreCase))
        {
            ticksPerUnit = TimeSpan.TicksPerMillisecond;
        }
        else if (unit.Equals("m", StringComparison.OrdinalIgnoreCase))
        {
            ticksPerUnit = TimeSpan.TicksPerMinute;
        }
        else if (unit.Equals("h", StringComparison.OrdinalIgnoreCase))
        {
            ticksPerUnit = TimeSpan.TicksPerHour;
        }
        else if (unit.Equals("d", StringComparison.OrdinalIgnoreCase))
        {
            ticksPerUnit = TimeSpan.TicksPerDay;
        }
        else
        {
            return false;
        }

        if (!long.TryParse(span[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var count)
            || count > TimeSpan.MaxValue.Ticks / ticksPerUnit)
        {
            return false;
        }

        duration = TimeSpan.FromTicks(count * ticksPerUnit);
        return true;
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
