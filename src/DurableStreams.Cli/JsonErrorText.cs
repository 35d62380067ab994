using System.Globalization;
using System.Text.Json;

namespace DurableStreams.Cli;

/// <summary>Describes a <see cref="JsonException"/> in words a person can act on, without .NET's position suffix.</summary>
internal static class JsonErrorText
{
    /// <summary>
    /// The exception's message without the trailing <c>LineNumber: 0 | BytePositionInLine: 5.</c> (or <c>Path: ...</c>)
    /// text, ending in the 1-based position instead: <c>(at byte 6)</c> for one line, <c>(line 2, byte 6)</c> otherwise.
    /// </summary>
    public static string Describe(JsonException ex, bool singleLine)
    {
        var message = ex.Message.ReplaceLineEndings(" ");
        foreach (var marker in new[] { " Path: ", " LineNumber: ", " | LineNumber: " })
        {
            var at = message.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0)
            {
                message = message[..at];
            }
        }

        message = message.Trim().TrimEnd('.', ' ');
        if (ex.BytePositionInLine is not { } column)
        {
            return message + ".";
        }

        var byteText = (column + 1).ToString(CultureInfo.InvariantCulture);
        return singleLine || ex.LineNumber is not { } line
            ? $"{message} (at byte {byteText})."
            : $"{message} (line {(line + 1).ToString(CultureInfo.InvariantCulture)}, byte {byteText}).";
    }
}
