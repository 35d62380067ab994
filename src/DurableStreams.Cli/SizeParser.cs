using System.Diagnostics.CodeAnalysis;

namespace DurableStreams.Cli;

/// <summary>
/// Parses the sizes accepted on the command line and in the config file: a whole number of bytes with an optional unit,
/// decimal (<c>KB</c>, <c>MB</c>, <c>GB</c>, <c>TB</c>: powers of 1000) or binary (<c>KiB</c>, <c>MiB</c>, <c>GiB</c>,
/// <c>TiB</c>: powers of 1024), case-insensitive, with no space (<c>500MB</c>, <c>10GiB</c>, <c>1048576</c>).
/// </summary>
internal static class SizeParser
{
    /// <summary>Describes the accepted forms; used in error messages and help text.</summary>
    public const string ExpectedFormat = "a whole number of bytes with an optional unit B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), for example 500MB or 10GiB";

    private static readonly (string Unit, long Bytes)[] s_units =
    [
        ("", 1), ("B", 1),
        ("KB", 1000), ("MB", 1000 * 1000), ("GB", 1000L * 1000 * 1000), ("TB", 1000L * 1000 * 1000 * 1000),
        ("KiB", 1024), ("MiB", 1024 * 1024), ("GiB", 1024L * 1024 * 1024), ("TiB", 1024L * 1024 * 1024 * 1024),
    ];

    public static bool TryParse([NotNullWhen(true)] string? text, out long bytes) => UnitQuantity.TryParse(text, s_units, long.MaxValue, out bytes);
}
