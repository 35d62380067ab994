using System.Text;

namespace DurableStreams.Client.Internal;

/// <summary>One server-sent event: its type and its <c>data:</c> lines joined with <c>\n</c>.</summary>
internal readonly record struct SseEvent(string Type, string Data);

/// <summary>
/// Parses an SSE body line by line (CR, LF and CRLF endings). Comments and <c>id</c> are ignored (the protocol resumes
/// by offset, not by event id); <c>retry</c> sets <see cref="RetryInterval"/>.
/// </summary>
internal sealed class SseEventReader(Stream stream) : IDisposable
{
    private readonly StreamReader _reader = new(stream, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false);

    /// <summary>The reconnection time the server asked for with its last valid <c>retry:</c> field (a whole number of milliseconds), or null.</summary>
    public TimeSpan? RetryInterval { get; private set; }

    /// <summary>The next event, or null when the body ends (an unfinished event at the end is dropped, as SSE requires).</summary>
    public async ValueTask<SseEvent?> ReadAsync(CancellationToken cancellationToken)
    {
        string? type = null;
        StringBuilder? data = null;
        while (await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0)
            {
                if (data is not null)
                {
                    return new SseEvent(type ?? "message", data.ToString());
                }
                type = null;
                continue;
            }
            if (line[0] == ':')
            {
                continue;
            }
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? string.Empty : line[(colon + 1)..];
            if (value.StartsWith(' '))
            {
                value = value[1..];
            }
            switch (field)
            {
                case "event":
                    type = value;
                    break;
                case "data":
                    if (data is null)
                    {
                        data = new StringBuilder(value);
                    }
                    else
                    {
                        data.Append('\n').Append(value);
                    }
                    break;
                case "retry":
                    if (value.Length > 0 && value.AsSpan().IndexOfAnyExceptInRange('0', '9') < 0
                        && long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var milliseconds)
                        && milliseconds <= (long)TimeSpan.MaxValue.TotalMilliseconds)
                    {
                        RetryInterval = TimeSpan.FromMilliseconds(milliseconds);
                    }
                    break;
            }
        }
        return null;
    }

    public void Dispose() => _reader.Dispose();
}
