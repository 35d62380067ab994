using System.Globalization;

namespace DurableStreams.Cli;

/// <summary>
/// The one parser behind sizes and durations: a whole number directly followed by an optional unit from a table
/// (case-insensitive; the empty unit is the table's entry for a bare number), overflow-checked against a maximum.
/// </summary>
internal static class UnitQuantity
{
    /// <summary>
    /// Parses <paramref name="text"/> as digits and a unit of <paramref name="units"/>; <paramref name="value"/> is the
    /// number times the unit's multiplier, refused when it would exceed <paramref name="max"/>.
    /// </summary>
    public static bool TryParse(string? text, ReadOnlySpan<(string Unit, long Multiplier)> units, long max, out long value)
    {
        value = 0;
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
        foreach (var (name, multiplier) in units)
        {
            if (unit.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                if (!long.TryParse(span[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count > max / multiplier)
                {
                    return false;
                }
                value = count * multiplier;
                return true;
            }
        }
        return false;
    }
}
