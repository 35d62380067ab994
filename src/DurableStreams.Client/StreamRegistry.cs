using System.Text.Json;
using DurableStreams.Protocol;

namespace DurableStreams.Client;

/// <summary>A stream listed by a server's stream registry.</summary>
/// <param name="Name">The stream's name below the streams URL.</param>
/// <param name="ContentType">The content type it was created with; null when the registry did not record one.</param>
/// <param name="CreatedAt">When it was created; null when the registry did not record it.</param>
public sealed record RegisteredStream(string Name, string? ContentType, DateTimeOffset? CreatedAt);

/// <summary>
/// Reads a server's stream registry (<c>serve --registry</c>): the JSON stream <see cref="RegistryStreamName"/> of
/// State-Protocol change events (<c>{"type":"stream","key":…,"value":{…},"headers":{"operation":"insert|update|delete"}}</c>),
/// replayed in order into the current set of streams.
/// </summary>
public static class StreamRegistry
{
    /// <summary>The registry stream's name below the streams URL.</summary>
    public const string RegistryStreamName = RegistryStream.Name;

    /// <summary>
    /// The streams the server's registry lists, sorted by name (ordinal); null when the server keeps no registry
    /// (<c>__registry__</c> answers 404).
    /// </summary>
    public static async Task<IReadOnlyList<RegisteredStream>?> ListAsync(DurableStreamClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var events = new List<JsonElement>();
        try
        {
            await foreach (var change in client.ReadJsonAsync(RegistryStreamName, cancellationToken: cancellationToken).ConfigureAwait(false))
            {
                events.Add(change);
            }
        }
        catch (DurableStreamException ex) when (ex.ErrorCode == DurableStreamErrorCode.NotFound && events.Count == 0)
        {
            return null;
        }
        return Materialize(events);
    }

    /// <summary>
    /// Replays change events into the current set, sorted by name (ordinal). Events of other types, without a string
    /// key or with an unknown operation are skipped, so newer servers can add event kinds.
    /// </summary>
    public static IReadOnlyList<RegisteredStream> Materialize(IEnumerable<JsonElement> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var current = new Dictionary<string, RegisteredStream>(StringComparer.Ordinal);
        foreach (var change in events)
        {
            if (change.ValueKind != JsonValueKind.Object
                || !change.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "stream"
                || !change.TryGetProperty("key", out var keyElement) || keyElement.ValueKind != JsonValueKind.String)
            {
                continue;
            }
            var key = keyElement.GetString()!;
            switch (Operation(change))
            {
                case "insert":
                case "update":
                    current[key] = FromValue(key, change);
                    break;
                case "delete":
                    current.Remove(key);
                    break;
            }
        }
        return current.Values.OrderBy(s => s.Name, StringComparer.Ordinal).ToArray();
    }

    private static string? Operation(JsonElement change) =>
        change.TryGetProperty("headers", out var headers)
        && headers.ValueKind == JsonValueKind.Object
        && headers.TryGetProperty("operation", out var operation)
        && operation.ValueKind == JsonValueKind.String
            ? operation.GetString()
            : null;

    private static RegisteredStream FromValue(string key, JsonElement change)
    {
        string? contentType = null;
        DateTimeOffset? createdAt = null;
        if (change.TryGetProperty("value", out var value) && value.ValueKind == JsonValueKind.Object)
        {
            if (value.TryGetProperty("contentType", out var type) && type.ValueKind == JsonValueKind.String)
            {
                contentType = type.GetString();
            }
            if (value.TryGetProperty("createdAt", out var created) && created.ValueKind == JsonValueKind.Number && created.TryGetInt64(out var ms))
            {
                createdAt = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            }
        }
        return new RegisteredStream(key, contentType, createdAt);
    }
}
