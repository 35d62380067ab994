using System.Buffers;
using System.Text;
using DurableStreams.Protocol;
using DurableStreams.Core;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Testing;

/// <summary>
/// The store operations tests are written in: one place for the store contract suite and for the file store's
/// durability tests, so both speak to stores the same way. Subclasses say which store is current.
/// </summary>
public abstract class StoreTestBase
{
    protected const string TextPlain = "text/plain";
    protected const string Json = "application/json";
    protected const string Binary = "application/octet-stream";
    protected const int Unlimited = 1 << 24;

    /// <summary>The fake clock's start; any fixed instant works.</summary>
    protected static readonly DateTimeOffset StartTime = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Real-time bound on awaits that must complete, so a lost wake-up fails instead of hanging.</summary>
    protected static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    /// <summary>The clock the store runs on.</summary>
    protected FakeTimeProvider Time { get; } = new(StartTime);

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The store the helpers below talk to.</summary>
    protected abstract IStreamStore CurrentStore { get; }

    protected static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    protected static ProducerClaim Producer(long epoch, long seq, string id = "producer-1") => new(id, epoch, seq);

    protected static ForkRequest ForkOf(string source, long? offset = null, long subOffset = 0) =>
        new(source, offset is { } o ? new StreamOffset(o) : null, subOffset);

    protected ValueTask<CreateStreamResult> CreateAsync(
        string name,
        string? contentType = TextPlain,
        string? body = null,
        long? ttl = null,
        DateTimeOffset? expiresAt = null,
        bool closed = false,
        ForkRequest? fork = null) =>
        CurrentStore.CreateAsync(name, new CreateStreamRequest
        {
            ContentType = contentType,
            Body = body is null ? ReadOnlyMemory<byte>.Empty : Bytes(body),
            TtlSeconds = ttl,
            ExpiresAt = expiresAt,
            Closed = closed,
            Fork = fork,
        }, Ct);

    /// <summary>Creates a stream and asserts it was created.</summary>
    protected async Task<StoredStreamInfo> CreatedAsync(
        string name,
        string? contentType = TextPlain,
        string? body = null,
        long? ttl = null,
        DateTimeOffset? expiresAt = null,
        bool closed = false,
        ForkRequest? fork = null)
    {
        var result = await CreateAsync(name, contentType, body, ttl, expiresAt, closed, fork);
        Assert.Equal(CreateStatus.Created, result.Status);
        Assert.NotNull(result.Info);
        return result.Info;
    }

    protected ValueTask<AppendStreamResult> AppendAsync(
        string name,
        string? body,
        string? contentType = TextPlain,
        string? streamSeq = null,
        ProducerClaim? producer = null,
        bool close = false) =>
        AppendBytesAsync(name, body is null ? null : Bytes(body), contentType, streamSeq, producer, close);

    protected ValueTask<AppendStreamResult> AppendBytesAsync(
        string name,
        byte[]? body,
        string? contentType = TextPlain,
        string? streamSeq = null,
        ProducerClaim? producer = null,
        bool close = false) =>
        CurrentStore.AppendAsync(name, new AppendRequest
        {
            Body = body ?? ReadOnlyMemory<byte>.Empty,
            ContentType = contentType,
            StreamSeq = streamSeq,
            Producer = producer,
            Close = close,
        }, Ct);

    protected ValueTask<ReadResult> ReadAsync(string name, OffsetQuery offset, int maxBytes = Unlimited) =>
        CurrentStore.ReadAsync(name, new ReadRequest(offset, maxBytes), Ct);

    protected ValueTask<ReadResult> ReadAsync(string name, long position, int maxBytes = Unlimited) =>
        ReadAsync(name, OffsetQuery.At(new StreamOffset(position)), maxBytes);

    protected ValueTask<ReadResult> ReadFromStartAsync(string name, int maxBytes = Unlimited) =>
        ReadAsync(name, OffsetQuery.Beginning, maxBytes);

    protected static byte[] BytesOf(ReadResult read) => [.. read.Chunks.SelectMany(c => c.ToArray())];

    /// <summary>Stored JSON messages as the one JSON array a read returns.</summary>
    protected static string JsonOf(ReadResult read)
    {
        var buffer = new ArrayBufferWriter<byte>();
        JsonFraming.WriteArray(read.Chunks, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    protected async Task<StoredStreamInfo> InfoAsync(string name)
    {
        var metadata = await CurrentStore.GetMetadataAsync(name, Ct);
        Assert.Equal(ReadStatus.Ok, metadata.Status);
        Assert.NotNull(metadata.Info);
        return metadata.Info;
    }

    protected async Task<ReadStatus> MetadataStatusAsync(string name) => (await CurrentStore.GetMetadataAsync(name, Ct)).Status;

    protected async Task<DeleteStatus> DeleteAsync(string name) => (await CurrentStore.DeleteAsync(name, Ct)).Status;

    /// <summary>Awaits a task that must complete without further clock movement.</summary>
    protected static Task<T> Promptly<T>(Task<T> task) => task.WaitAsync(HangGuard, Ct);
}
