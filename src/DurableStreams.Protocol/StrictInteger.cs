using System.Globalization;

namespace DurableStreams.Protocol;

/// <summary>Parsing of the protocol's integer headers (producer epoch/seq, fork sub-offset).</summary>
public static class StrictInteger
{
    /// <summary>2^53-1: the protocol's bound for producer numbers, for JavaScript interoperability.</summary>
    public const long MaxSafeInteger = 9_007_199_254_740_991;

    /// <summary>
    /// A non-negative decimal integer ≤ 2^53-1. With <paramref name="allowLeadingZeros"/> false, "05" is rejected.
    /// </summary>
    public static bool TryParse(string? text, bool allowLeadingZeros, out long value)
    {
        value = 0;
        if (string.IsNullOrEmpty(text) || text.Length > 16 || (!allowLeadingZeros && text.Length > 1 && text[0] == '0'))
        {
            return false;
        }
        foreach (var c in text)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        value = long.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        return value <= MaxSafeInteger;
    }
}
