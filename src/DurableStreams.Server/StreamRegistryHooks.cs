using System.Text.Json;
using DurableStreams.Protocol;
using DurableStreams.Core;

namespace DurableStreams.Server;

/// <summary>
/// The built-in stream registry: a lifecycle hook that records every creation and deletion as a State-Protocol change
/// event in the JSON stream <see cref="RegistryStreamName"/>, in the shape of the Node reference's
/// <c>createRegistryHooks</c>: <c>{"type":"stream","key":NAME,"value":{"path":NAME,"contentType":…,"createdAt":ms},"headers":{"operation":"insert"}}</c>
/// (a fork's value also names its source: <c>"forkedFrom":SOURCE</c>, since HEAD does not report it)
/// and <c>{"type":"stream","key":NAME,"headers":{"operation":"delete"}}</c>. Replaying the events in order gives the
/// current set of streams. The registry stream itself and other names starting with <c>__</c> are not recorded.
/// </summary>
public sealed class StreamRegistryHooks : IStreamLifecycleHooks
{
    /// <summary>The registry stream's name below the streams mount.</summary>
    public const string RegistryStreamName = RegistryStream.Name;

    private const string JsonContentType = ContentTypes.Json;

    private readonly IStreamStore _store;

    /// <param name="store">The store that holds both the streams and the registry stream.</param>
    public StreamRegistryHooks(IStreamStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
    }

    /// <summary>
    /// Creates the registry stream when it does not exist yet, so an empty server lists no streams instead of answering
    /// 404. A new registry is back-filled with the streams the store already holds (a data directory first served without
    /// <c>--registry</c>), when the store can list them (<see cref="IStreamCatalog"/>): one insert event each, with the
    /// stream's content type and creation time (a fork's source is not known then and is left out).
    /// </summary>
    public Task EnsureCreatedAsync(CancellationToken cancellationToken) => EnsureCreatedAsync(backFill: true, cancellationToken);

    private async Task EnsureCreatedAsync(bool backFill, CancellationToken cancellationToken)
    {
        var result = await _store.CreateAsync(RegistryStreamName, new CreateStreamRequest { ContentType = JsonContentType }, cancellationToken);
        if (result.Status is not (CreateStatus.Created or CreateStatus.AlreadyExists))
        {
            throw new InvalidOperationException($"The stream registry '{RegistryStreamName}' could not be created: {result.Status}.");
        }

        if (backFill && result.Status == CreateStatus.Created && _store is IStreamCatalog catalog)
        {
            await BackFillAsync(catalog, cancellationToken);
        }
    }

    private async Task BackFillAsync(IStreamCatalog catalog, CancellationToken cancellationToken)
    {
        foreach (var name in catalog.ListStreamNames())
        {
            if (!IsRecorded(name))
            {
                continue;
            }

            var metadata = await _store.GetMetadataAsync(name, cancellationToken);
            if (metadata is { Status: ReadStatus.Ok, Info: { } info })
            {
                await AppendAsync(InsertEvent(new StreamCreatedEvent(name, info.ContentType, info.CreatedAt)), cancellationToken);
            }
        }
    }

    /// <inheritdoc/>
    public Task OnStreamCreatedAsync(StreamCreatedEvent created, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(created);
        return IsRecorded(created.Name)
            ? AppendAsync(InsertEvent(created), cancellationToken)
            : Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task OnStreamDeletedAsync(StreamDeletedEvent deleted, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(deleted);
        return IsRecorded(deleted.Name)
            ? AppendAsync(DeleteEvent(deleted.Name), cancellationToken)
            : Task.CompletedTask;
    }

    /// <summary>The insert event for a created stream (UTF-8 JSON).</summary>
    public static byte[] InsertEvent(StreamCreatedEvent created)
    {
        ArgumentNullException.ThrowIfNull(created);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("type", "stream");
            json.WriteString("key", created.Name);
            json.WriteStartObject("value");
            json.WriteString("path", created.Name);
            json.WriteString("contentType", created.ContentType);
            json.WriteNumber("createdAt", created.Timestamp.ToUnixTimeMilliseconds());
            if (created.ForkedFrom is { } source)
            {
                json.WriteString("forkedFrom", source);
            }
            json.WriteEndObject();
            WriteOperation(json, "insert");
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>The delete event for a deleted stream (UTF-8 JSON).</summary>
    public static byte[] DeleteEvent(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("type", "stream");
            json.WriteString("key", name);
            WriteOperation(json, "delete");
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static void WriteOperation(Utf8JsonWriter json, string operation)
    {
        json.WriteStartObject("headers");
        json.WriteString("operation", operation);
        json.WriteEndObject();
    }

    private static bool IsRecorded(string name) => !name.StartsWith("__", StringComparison.Ordinal);

    private async Task AppendAsync(byte[] change, CancellationToken cancellationToken)
    {
        var request = new AppendRequest { ContentType = JsonContentType, Body = change };
        var result = await _store.AppendAsync(RegistryStreamName, request, cancellationToken);
        if (result.Status is AppendStatus.NotFound or AppendStatus.Gone)
        {
            // Someone deleted the registry stream: start a new one rather than losing events from now on (not
            // back-filled: the deletion was deliberate, and the change being recorded would be listed twice).
            await EnsureCreatedAsync(backFill: false, cancellationToken);
            result = await _store.AppendAsync(RegistryStreamName, request, cancellationToken);
        }
        if (result.Status != AppendStatus.Appended)
        {
            throw new InvalidOperationException($"The stream registry rejected a change event: {result.Status}.");
        }
    }
}
