namespace DurableStreams.Server.Internal;

/// <summary>Maps URL paths to stream names: the path below the streams mount, without the leading slash.</summary>
internal static class StreamName
{
    /// <summary>The first segment reserved for control APIs (§6).</summary>
    public const string ReservedSegment = DurableStreams.Subscriptions.ControlPaths.ReservedSegment;

    public static bool IsReserved(string name) =>
        name == ReservedSegment || name.StartsWith(ReservedSegment + "/", StringComparison.Ordinal);

    /// <summary>Why a name is refused by the length and segment limits.</summary>
    public enum Problem
    {
        TooLong,
        TooManySegments,
    }

    /// <summary>
    /// Checks the name against the limits; null when it is within them. Counts UTF-8 bytes only when the name could
    /// exceed the limit (a UTF-16 char is at most 3 UTF-8 bytes), and counts '/' with a vectorized scan.
    /// </summary>
    public static Problem? Check(string name, int maxBytes, int maxSegments)
    {
        if (name.Length > maxBytes || ((long)name.Length * 3 > maxBytes && System.Text.Encoding.UTF8.GetByteCount(name) > maxBytes))
        {
            return Problem.TooLong;
        }
        return name.AsSpan().Count('/') + 1 > maxSegments ? Problem.TooManySegments : null;
    }

    /// <summary>
    /// The stream name named by a <c>Stream-Forked-From</c> value: a path under the streams mount (absolute URLs of this
    /// server are accepted too), decoded by the same rules as a request path (<see cref="Decode"/>). Null when it names
    /// nothing under the mount or is not a canonical name.
    /// </summary>
    public static string? FromForkSource(string value, string streamsPath)
    {
        var path = value.Trim();
        if (Uri.TryCreate(path, UriKind.Absolute, out var absolute) && (absolute.Scheme == Uri.UriSchemeHttp || absolute.Scheme == Uri.UriSchemeHttps))
        {
            path = absolute.AbsolutePath;
        }
        var prefix = streamsPath.TrimEnd('/') + "/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }
        var query = path.IndexOfAny(['?', '#']);
        var raw = query < 0 ? path.AsSpan(prefix.Length) : path.AsSpan(prefix.Length, query - prefix.Length);
        if (Decode(raw, allowEncodedSlash: false, out var name) != PathProblem.None)
        {
            return null;
        }
        return name.Length == 0 || IsReserved(name) ? null : name;
    }

    /// <summary>Why a request path does not name a stream canonically (issue 22 item 10, item 9).</summary>
    public enum PathProblem
    {
        /// <summary>The path decoded to a canonical name.</summary>
        None,

        /// <summary>An encoded <c>/</c> or <c>\</c> (<c>%2F</c>, <c>%5C</c>): a second spelling of a segment boundary.</summary>
        EncodedSlash,

        /// <summary><c>%25</c> followed by two hex digits: an escape that would decode a second time.</summary>
        DoubleEncoded,

        /// <summary>A <c>%</c> not followed by two hex digits.</summary>
        MalformedEscape,

        /// <summary>The decoded bytes are not valid UTF-8.</summary>
        InvalidUtf8,

        /// <summary>A C0 or C1 control character (U+0000–U+001F, U+007F–U+009F).</summary>
        ControlCharacter,

        /// <summary>A <c>.</c> or <c>..</c> segment (the server's router removes them, so the name would differ).</summary>
        DotSegment,

        /// <summary>The raw request target does not start with the streams mount (for example a dot segment before it).</summary>
        NotUnderMount,
    }

    /// <summary>The 400 message for a path problem.</summary>
    public static string Message(PathProblem problem) => problem switch
    {
        PathProblem.EncodedSlash => "The stream name contains an encoded '/' or '\\' (%2F or %5C); use a literal '/' between segments.",
        PathProblem.DoubleEncoded => "The stream name contains a double-encoded escape (%25 followed by two hex digits); encode the name once.",
        PathProblem.MalformedEscape => "The stream name contains a '%' that is not followed by two hex digits; encode '%' as %25.",
        PathProblem.InvalidUtf8 => "The stream name's percent-encoded bytes are not valid UTF-8.",
        PathProblem.ControlCharacter => "The stream name contains a control character (U+0000-U+001F or U+007F-U+009F).",
        PathProblem.DotSegment => "The stream name contains a '.' or '..' segment.",
        PathProblem.NotUnderMount => "The request path is not in canonical form (a dot segment or an encoded character before the stream name).",
        _ => "The stream name is not valid.",
    };

    /// <summary>C0 and C1 control characters (U+0000–U+001F, U+007F–U+009F): never part of a name.</summary>
    private static readonly System.Buffers.SearchValues<char> Controls = System.Buffers.SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000A\u000B\u000C\u000D\u000E\u000F" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F" +
        "\u007F\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008A\u008B\u008C\u008D\u008E\u008F" +
        "\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009A\u009B\u009C\u009D\u009E\u009F");

    /// <summary>True when <paramref name="text"/> holds a C0 or C1 control character.</summary>
    public static bool HasControlCharacter(ReadOnlySpan<char> text) => text.ContainsAny(Controls);

    /// <summary>
    /// Decodes the raw (still percent-encoded) path below the streams mount exactly once into the canonical name:
    /// every <c>%XX</c> becomes its byte and the bytes must be UTF-8. Refused: a malformed escape, <c>%25XX</c>
    /// (would decode again), invalid UTF-8, control characters, <c>.</c>/<c>..</c> segments, and, unless
    /// <paramref name="allowEncodedSlash"/> (one segment of a control route), an encoded <c>/</c> or <c>\</c>.
    /// Without a <c>%</c> the name is the raw text itself.
    /// </summary>
    public static PathProblem Decode(ReadOnlySpan<char> raw, bool allowEncodedSlash, out string name)
    {
        name = string.Empty;
        var percent = raw.IndexOf('%');
        if (percent < 0)
        {
            if (HasControlCharacter(raw))
            {
                return PathProblem.ControlCharacter;
            }
            if (HasDotSegment(raw))
            {
                return PathProblem.DotSegment;
            }
            name = raw.ToString();
            return PathProblem.None;
        }
        var rented = raw.Length <= 512 ? null : System.Buffers.ArrayPool<byte>.Shared.Rent(raw.Length * 3);
        try
        {
            Span<byte> bytes = rented ?? stackalloc byte[512 * 3];
            var length = 0;
            for (var i = 0; i < raw.Length; i++)
            {
                var c = raw[i];
                if (c != '%')
                {
                    if (c < 0x80)
                    {
                        bytes[length++] = (byte)c;
                    }
                    else
                    {
                        // Raw targets are ASCII; anything else (a fallback path) is taken as its UTF-8 bytes.
                        length += System.Text.Encoding.UTF8.GetBytes(raw.Slice(i, char.IsHighSurrogate(c) && i + 1 < raw.Length ? 2 : 1), bytes[length..]);
                        i += char.IsHighSurrogate(c) && i + 1 < raw.Length ? 1 : 0;
                    }
                    continue;
                }
                if (i + 2 >= raw.Length || !char.IsAsciiHexDigit(raw[i + 1]) || !char.IsAsciiHexDigit(raw[i + 2]))
                {
                    return PathProblem.MalformedEscape;
                }
                var value = (byte)((HexValue(raw[i + 1]) << 4) | HexValue(raw[i + 2]));
                if ((value == (byte)'/' || value == (byte)'\\') && !allowEncodedSlash)
                {
                    return PathProblem.EncodedSlash;
                }
                if (value == (byte)'%' && i + 4 < raw.Length && char.IsAsciiHexDigit(raw[i + 3]) && char.IsAsciiHexDigit(raw[i + 4]))
                {
                    return PathProblem.DoubleEncoded;
                }
                bytes[length++] = value;
                i += 2;
            }
            var decoded = bytes[..length];
            if (!System.Text.Unicode.Utf8.IsValid(decoded))
            {
                return PathProblem.InvalidUtf8;
            }
            var text = System.Text.Encoding.UTF8.GetString(decoded);
            if (HasControlCharacter(text))
            {
                return PathProblem.ControlCharacter;
            }
            if (HasDotSegment(text))
            {
                return PathProblem.DotSegment;
            }
            name = text;
            return PathProblem.None;
        }
        finally
        {
            if (rented is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>True when a '/'-separated segment is <c>.</c> or <c>..</c>.</summary>
    private static bool HasDotSegment(ReadOnlySpan<char> path)
    {
        if (path.IndexOf('.') < 0)
        {
            return false;
        }
        foreach (var range in path.Split('/'))
        {
            var segment = path[range];
            if (segment is "." or "..")
            {
                return true;
            }
        }
        return false;
    }
}
