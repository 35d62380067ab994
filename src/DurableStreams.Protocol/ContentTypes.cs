namespace DurableStreams.Protocol;

/// <summary>Content-type rules: comparison, JSON mode and SSE encoding.</summary>
public static class ContentTypes
{
    /// <summary>The default for a stream created without a Content-Type.</summary>
    public const string Default = "application/octet-stream";

    public const string Json = "application/json";

    /// <summary>
    /// The media type without parameters, lower-cased; null when the value is not a <c>type/subtype</c> token pair.
    /// </summary>
    public static string? MediaType(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType))
        {
            return null;
        }
        var span = contentType.AsSpan();
        var semicolon = span.IndexOf(';');
        if (semicolon >= 0)
        {
            span = span[..semicolon];
        }
        span = span.Trim();
        var slash = span.IndexOf('/');
        if (slash <= 0 || slash == span.Length - 1 || span[(slash + 1)..].Contains('/'))
        {
            return null;
        }
        foreach (var c in span)
        {
            if (c <= ' ' || c >= 127 || c is '"' or '(' or ')' or ',' or ':' or '<' or '>' or '?' or '@' or '[' or ']' or '\\' or '{' or '}' or '=')
            {
                return null;
            }
        }
        return span.ToString().ToLowerInvariant();
    }

    /// <summary>True when both values name the same media type (parameters and case ignored).</summary>
    public static bool Matches(string a, string b) =>
        string.Equals(MediaType(a), MediaType(b), StringComparison.Ordinal);

    /// <summary>JSON mode (§9.1) applies to <c>application/json</c> streams.</summary>
    public static bool IsJson(string contentType) => MediaType(contentType) == Json;

    /// <summary>SSE carries <c>text/*</c> and <c>application/json</c> as text and everything else as base64 (§5.8).</summary>
    public static bool IsSseText(string contentType)
    {
        var media = MediaType(contentType);
        return media is not null && (media.StartsWith("text/", StringComparison.Ordinal) || media == Json);
    }
}
