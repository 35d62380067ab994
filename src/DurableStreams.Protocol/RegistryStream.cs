namespace DurableStreams.Protocol;

/// <summary>
/// The stream registry shared by servers that keep it (<c>serve --registry</c>) and clients that read it
/// (<c>durable-streams ls</c>, <c>Get-DurableStream</c>): a JSON stream of create and delete events under this name.
/// </summary>
public static class RegistryStream
{
    /// <summary>The registry stream's name, <c>__registry__</c> (the inspector page's app.js repeats it).</summary>
    public const string Name = "__registry__";
}
