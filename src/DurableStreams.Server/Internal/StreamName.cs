namespace DurableStreams.Server.Internal;

/// <summary>Maps URL paths to stream names: the path below the streams mount, without the leading slash.</summary>
internal static class StreamName
{
    /// <summary>The first segment reserved for control APIs (§6).</summary>
    public const string ReservedSegment = "__ds";

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
    /// server are accepted too). Null when it names nothing under the mount.
    /// </summary>
    public static string? FromForkSource(string value, string streamsPath)
    {
        var path = value.Trim();
        if (Uri.TryCreate(path, UriKind.Absolute, out var absolute) && (absolute.Scheme == Uri.UriSchemeHttp || absolute.Scheme == Uri.UriSchemeHttps))
        {
            path = Uri.UnescapeDataString(absolute.AbsolutePath);
        }
        else
        {
            path = DecodePath(path);
        }
        var prefix = streamsPath.TrimEnd('/') + "/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }
        var name = path[prefix.Length..];
        return name.Length == 0 || IsReserved(name) ? null : name;
    }

    /// <summary>Percent-decodes a path the way Kestrel decodes request paths: everything except an encoded '/'.</summary>
    private static string DecodePath(string path)
    {
        if (!path.Contains('%', StringComparison.Ordinal))
        {
            return path;
        }
        var parts = path.Split("%2F", StringSplitOptions.None);
        for (var i = 0; i < parts.Length; i++)
        {
            parts[i] = string.Join("%2f", parts[i].Split("%2f").Select(Uri.UnescapeDataString));
        }
        return string.Join("%2F", parts);
    }
}
