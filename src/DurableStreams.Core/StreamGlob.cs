namespace DurableStreams.Core;

/// <summary>
/// Glob patterns over stream-root-relative paths (§6.2; also the retention policies): a <c>*</c> segment matches exactly one segment, a <c>**</c>
/// segment matches zero or more, and a <c>*</c> inside a segment matches any run of characters within that segment.
/// </summary>
public static class StreamGlob
{
    /// <summary>Whether <paramref name="path"/> matches <paramref name="pattern"/> (both already normalised).</summary>
    public static bool IsMatch(string pattern, string path)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(path);
        var patternSegments = pattern.Split('/');
        var pathSegments = path.Split('/');
        return MatchSegments(patternSegments, 0, pathSegments, 0);
    }

    private static bool MatchSegments(string[] pattern, int p, string[] path, int s)
    {
        while (p < pattern.Length)
        {
            if (pattern[p] == "**")
            {
                // Zero or more segments: try every split point (patterns are short, so recursion depth is small).
                for (var skip = s; skip <= path.Length; skip++)
                {
                    if (MatchSegments(pattern, p + 1, path, skip))
                    {
                        return true;
                    }
                }
                return false;
            }
            if (s >= path.Length || !MatchSegment(pattern[p], path[s]))
            {
                return false;
            }
            p++;
            s++;
        }
        return s == path.Length;
    }

    /// <summary>Matches one segment; <c>*</c> matches any characters within it (never a slash, segments have none).</summary>
    internal static bool MatchSegment(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        var star = pattern.IndexOf('*');
        if (star < 0)
        {
            return pattern.SequenceEqual(text);
        }
        if (!text.StartsWith(pattern[..star]))
        {
            return false;
        }
        var rest = pattern[(star + 1)..];
        var remaining = text[star..];
        if (rest.IsEmpty)
        {
            return true;
        }
        for (var i = 0; i <= remaining.Length; i++)
        {
            if (MatchSegment(rest, remaining[i..]))
            {
                return true;
            }
        }
        return false;
    }
}
