namespace DurableStreams.Subscriptions;

/// <summary>The reserved control prefix under the streams mount (§6), which no stream or pattern may use.</summary>
internal static class ControlPaths
{
    /// <summary>The reserved first segment: <c>{streams}/__ds/…</c>.</summary>
    public const string ReservedSegment = "__ds";

    /// <summary>Whether <paramref name="name"/> is the reserved segment or below it.</summary>
    public static bool IsReserved(string name) =>
        name == ReservedSegment || name.StartsWith(ReservedSegment + "/", StringComparison.Ordinal);

    /// <summary>A URL under the reserved prefix of the stream root a subscription was created through.</summary>
    public static string ControlUrl(string? baseUrl, string relative) => (baseUrl ?? string.Empty).TrimEnd('/') + "/" + ReservedSegment + "/" + relative;
}
