using DurableStreams.Server;
using DurableStreams.Storage.Files;

namespace DurableStreams.PowerShell;

/// <summary>Which store a server started by <c>Start-DurableStreamServer</c> uses.</summary>
public enum DurableStreamStoreKind
{
    /// <summary>The durable file store in a data directory (the default, as for <c>durable-streams serve</c>).</summary>
    File,

    /// <summary>The in-memory store (<c>-InMemory</c>); streams are lost when the server stops.</summary>
    Memory,
}

/// <summary>How <c>Read-DurableStream -Follow</c> waits for new data.</summary>
public enum DurableStreamLiveMode
{
    /// <summary>Long-poll requests (<c>live=long-poll</c>). The default.</summary>
    LongPoll,

    /// <summary>Server-sent events (<c>live=sse</c>).</summary>
    Sse,
}

/// <summary>A server started in this PowerShell session by <c>Start-DurableStreamServer</c>.</summary>
public sealed class DurableStreamServerInfo
{
    internal DurableStreamServerInfo(
        int id, DurableStreamHost host, DurableStreamStoreKind store, string? dataPath, DurabilityMode? durability, string hostName)
    {
        var server = host.Server;
        Id = id;
        Host = host;
        Store = store;
        DataPath = dataPath;
        Durability = durability;
        HostName = hostName;
        Port = server.Port;
        ServerUri = server.BaseUrl;
        BaseUri = server.StreamsUrl;
        StartTime = DateTime.Now;
    }

    /// <summary>A number unique among the servers of this session.</summary>
    public int Id { get; }

    /// <summary>The address the server listens on.</summary>
    public string HostName { get; }

    /// <summary>The TCP port actually bound (a free one when started with <c>-Port 0</c>).</summary>
    public int Port { get; }

    /// <summary>Where streams live, e.g. <c>http://127.0.0.1:4437/v1/stream/</c>; a stream's URI is this plus its name.</summary>
    public Uri BaseUri { get; }

    /// <summary>The server root, e.g. <c>http://127.0.0.1:4437/</c>.</summary>
    public Uri ServerUri { get; }

    /// <summary>The store behind the server.</summary>
    public DurableStreamStoreKind Store { get; }

    /// <summary>The file store's data directory; null for the in-memory store.</summary>
    public string? DataPath { get; }

    /// <summary>The file store's durability mode; null for the in-memory store.</summary>
    public DurabilityMode? Durability { get; }

    /// <summary>When the server started listening (local time).</summary>
    public DateTime StartTime { get; }

    /// <summary>False once the server was stopped.</summary>
    public bool IsRunning { get; internal set; } = true;

    /// <summary>The server with its store and subscription state, closed in that order when it stops.</summary>
    internal DurableStreamHost Host { get; }

    /// <inheritdoc/>
    public override string ToString() => BaseUri.ToString();
}

/// <summary>A stream's metadata, as returned by <c>Get-DurableStream</c> and <c>New-DurableStream</c>.</summary>
public sealed class DurableStreamInfo
{
    internal DurableStreamInfo(Uri uri, string name, string? contentType, string nextOffset, bool closed, TimeSpan? timeToLive, DateTimeOffset? expiresAt, DateTimeOffset? createdAt = null)
    {
        CreatedAt = createdAt?.LocalDateTime;
        Uri = uri;
        Name = name;
        ContentType = contentType;
        NextOffset = nextOffset;
        Closed = closed;
        TimeToLive = timeToLive;
        ExpiresAt = expiresAt?.LocalDateTime;
    }

    /// <summary>The stream's URI; stream cmdlets bind it from the pipeline by this property name.</summary>
    public Uri Uri { get; }

    /// <summary>The stream's name below the server's streams root.</summary>
    public string Name { get; }

    /// <summary>The stream's content type.</summary>
    public string? ContentType { get; }

    /// <summary>The tail: the offset after the last byte, where the next append lands.</summary>
    public string NextOffset { get; }

    /// <summary>
    /// Where the stream's retained data starts: the zero offset unless retention dropped a prefix (reading from -1
    /// starts here; reading below it fails with OffsetBeforeRetainedStart). Null when the server does not report it.
    /// </summary>
    public string? RetainedStart { get; internal init; }

    /// <summary>
    /// The stream's offset-space generation (the first field of its offsets): 0 until the server first compacts the
    /// stream (State-Protocol compaction, Compress-DurableStream), then one more per compaction.
    /// </summary>
    public long Generation => Protocol.StreamOffset.TryParse(NextOffset, out var offset) ? offset.Generation : 0;

    /// <summary>True when the stream is closed to appends.</summary>
    public bool Closed { get; }

    /// <summary>The sliding time-to-live, if any.</summary>
    public TimeSpan? TimeToLive { get; }

    /// <summary>The absolute expiry (local time), if any.</summary>
    public DateTime? ExpiresAt { get; }

    /// <summary>When the stream was created (local time), as the server's stream registry recorded it; null unless it came from a listing.</summary>
    public DateTime? CreatedAt { get; }

    /// <inheritdoc/>
    public override string ToString() => Uri.ToString();
}
