namespace DurableStreams.Server;

/// <summary>A stream was created (a PUT answered 201).</summary>
/// <param name="Name">The stream's name (its path below the streams mount).</param>
/// <param name="ContentType">The stream's content type.</param>
/// <param name="Timestamp">When the server created it.</param>
public sealed record StreamCreatedEvent(string Name, string ContentType, DateTimeOffset Timestamp)
{
    /// <summary>For a fork, the source stream's name (the PUT's <c>Stream-Forked-From</c>); null otherwise.</summary>
    public string? ForkedFrom { get; init; }
}

/// <summary>A stream was deleted (a DELETE answered 204).</summary>
/// <param name="Name">The stream's name.</param>
/// <param name="Timestamp">When the server deleted it.</param>
public sealed record StreamDeletedEvent(string Name, DateTimeOffset Timestamp);

/// <summary>
/// Called after a stream is created or deleted, once the change is durable. A failing hook is logged and never fails
/// the request; hooks run one after another in registration order.
/// </summary>
public interface IStreamLifecycleHooks
{
    /// <summary>Called once a created stream is durable.</summary>
    Task OnStreamCreatedAsync(StreamCreatedEvent created, CancellationToken cancellationToken);

    /// <summary>Called once a deletion is durable.</summary>
    Task OnStreamDeletedAsync(StreamDeletedEvent deleted, CancellationToken cancellationToken);
}
