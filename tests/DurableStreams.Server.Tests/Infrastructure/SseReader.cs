using System.Text;
using System.Text.Json;

namespace DurableStreams.Server.Tests.Infrastructure;

/// <summary>One server-sent event.</summary>
public sealed record SseEvent(string Type, string Data)
{
    public JsonElement Json()
    {
        using var document = JsonDocument.Parse(Data);
        return document.RootElement.Clone();
    }

    public bool Flag(string name) => Json().TryGetProperty(name, out var value) && value.GetBoolean();

    public string? Field(string name) => Json().TryGetProperty(name, out var value) ? value.GetString() : null;
}

/// <summary>Parses an SSE response body incrementally, event by event, as a browser would.</summary>
public sealed class SseReader(Stream body) : IDisposable
{
    private readonly StreamReader _reader = new(body, Encoding.UTF8);

    /// <summary>The next event, or null when the response has ended.</summary>
    public async Task<SseEvent?> ReadEventAsync(CancellationToken cancellationToken)
    {
        string? type = null;
        List<string> data = [];
        while (true)
        {
            var line = await _reader.ReadLineAsync(cancellationToken);
            if (line is null)
            {
                if (type is null && data.Count == 0)
                {
                    return null;
                }
                throw new InvalidDataException("The SSE response ended in the middle of an event.");
            }
            if (line.Length == 0)
            {
                if (type is null && data.Count == 0)
                {
                    continue;
                }
                return new SseEvent(type ?? "message", string.Join('\n', data));
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
                    data.Add(value);
                    break;
            }
        }
    }

    /// <summary>The next event, which must exist and be of <paramref name="type"/>.</summary>
    public async Task<SseEvent> ExpectAsync(string type, CancellationToken cancellationToken)
    {
        var next = await ReadEventAsync(cancellationToken) ?? throw new Xunit.Sdk.XunitException($"Expected an '{type}' event but the response ended.");
        Xunit.Assert.Equal(type, next.Type);
        return next;
    }

    public void Dispose() => _reader.Dispose();
}
