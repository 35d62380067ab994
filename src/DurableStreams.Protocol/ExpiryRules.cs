using System.Globalization;
using System.Text.RegularExpressions;

namespace DurableStreams.Protocol;

/// <summary>Strict parsing of <c>Stream-TTL</c> and <c>Stream-Expires-At</c> (§5.1).</summary>
public static partial class ExpiryRules
{
    /// <summary>The largest TTL accepted, in seconds (about 317 years): far beyond any real need, safe for DateTime math.</summary>
    public const long MaxTtlSeconds = 10_000_000_000;

    /// <summary>A non-negative decimal integer without sign, leading zeros, fraction or exponent.</summary>
    public static bool TryParseTtl(string? text, out long seconds)
    {
        seconds = 0;
        if (string.IsNullOrEmpty(text) || text.Length > 11 || (text.Length > 1 && text[0] == '0'))
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
        seconds = long.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        return seconds <= MaxTtlSeconds;
    }

    /// <summary>An RFC 3339 date-time with a 'Z' or numeric offset.</summary>
    public static bool TryParseExpiresAt(string? text, out DateTimeOffset expiresAt)
    {
        expiresAt = default;
        if (string.IsNullOrEmpty(text) || !Rfc3339().IsMatch(text))
        {
            return false;
        }
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out expiresAt);
    }

    /// <summary>Formats an expiry as RFC 3339 in UTC with milliseconds.</summary>
    public static string Format(DateTimeOffset expiresAt) =>
        expiresAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex Rfc3339();
}
