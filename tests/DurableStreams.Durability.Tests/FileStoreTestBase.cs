using System.Buffers;
using System.Globalization;
using System.Text;
using DurableStreams.Protocol;
using DurableStreams.Storage;
using DurableStreams.Storage.File;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// One <see cref="FileStreamStore"/> in its own temp directory with a fake clock, which a test can stop (dispose),
/// tamper with on disk, and start again over the same directory, as a process restart would.
/// </summary>
public abstract class FileStoreTestBase : IAsyncLifetime
{
    protected const string TextPlain = "text/plain";
    protected const string Json = "application/json";
    protected const string Binary = "application/octet-stream";
    protected const int Unlimited = 1 << 24;

    /// <summary>The fake clock's start; any fixed instant works.</summary>
    protected static readonly DateTimeOffset StartTime = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Real-time bound on awaits that must complete, so a lost wake-up fails instead of hanging.</summary>
    protected static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    private readonly TempDirectory _directory = new();
    private FileStreamStore? _store;

    protected FakeTimeProvider Time { get; } = new(StartTime);

    /// <summary>The running store; throws while stopped.</summary>
    protected FileStreamStore Store => _store ?? throw new InvalidOperationException("The store is stopped.");

    protected string DataDirectory => _directory.Path;

    protected virtual DurabilityMode Durability => DurabilityMode.Always;

    /// <summary>The LMDB map size: the most metadata the store can hold.</summary>
    protected virtual long MetadataMapSize => new FileStreamStoreOptions { DataDirectory = "." }.MetadataMapSize;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    public virtual ValueTask InitializeAsync()
    {
        Start();
        return ValueTask.CompletedTask;
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
            _store = null;
        }
        _directory.Dispose();
        GC.SuppressFinalize(this);
    }

    protected FileStreamStore OpenStore() => FileStreamStore.Open(new FileStreamStoreOptions
    {
        DataDirectory = DataDirectory,
        TimeProvider = Time,
        Durability = Durability,
        MetadataMapSize = MetadataMapSize,
        SweepInterval = TimeSpan.FromSeconds(2),
    });

    protected void Start()
    {
        Assert.Null(_store);
        _store = OpenStore();
    }

    protected async Task StopAsync()
    {
        await Store.DisposeAsync();
        _store = null;
    }

    protected async Task RestartAsync()
    {
        await StopAsync();
        Start();
    }

    protected string StreamsDirectory => Path.Combine(DataDirectory, "streams");

    /// <summary>The data file of stream <paramref name="id"/>, asserting it exists so tampering cannot miss it.</summary>
    protected string DataFileOf(long id)
    {
        var path = Path.Combine(StreamsDirectory, id.ToString("x16", CultureInfo.InvariantCulture) + ".dat");
        Assert.True(File.Exists(path), $"expected data file {path}");
        return path;
    }

    /// <summary>The store id of a live stream (its incarnation), which names its data file.</summary>
    protected async Task<long> IdOfAsync(string name) => (await InfoAsync(name)).Incarnation;

    protected string[] DataFiles() => [.. Directory.EnumerateFiles(StreamsDirectory, "*.dat").Order(StringComparer.Ordinal)];

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
        Store.CreateAsync(name, new CreateStreamRequest
        {
            ContentType = contentType,
            Body = body is null ? ReadOnlyMemory<byte>.Empty : Bytes(body),
            TtlSeconds = ttl,
            ExpiresAt = expiresAt,
            Closed = closed,
            Fork = fork,
        }, Ct);

    protected async Task<StreamInfo> CreatedAsync(
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

    protected ValueTask<AppendResult> AppendAsync(
        string name,
        string? body,
        string? contentType = TextPlain,
        string? streamSeq = null,
        ProducerClaim? producer = null,
        bool close = false) =>
        AppendBytesAsync(name, body is null ? null : Bytes(body), contentType, streamSeq, producer, close);

    protected ValueTask<AppendResult> AppendBytesAsync(
        string name,
        byte[]? body,
        string? contentType = TextPlain,
        string? streamSeq = null,
        ProducerClaim? producer = null,
        bool close = false) =>
        Store.AppendAsync(name, new AppendRequest
        {
            Body = body ?? ReadOnlyMemory<byte>.Empty,
            ContentType = body is null ? null : contentType,
            StreamSeq = streamSeq,
            Producer = producer,
            Close = close,
        }, Ct);

    protected async Task<AppendResult> AppendedAsync(string name, string? body, string? contentType = TextPlain, string? streamSeq = null, ProducerClaim? producer = null, bool close = false)
    {
        var result = await AppendAsync(name, body, contentType, streamSeq, producer, close);
        Assert.Equal(AppendStatus.Appended, result.Status);
        return result;
    }

    protected ValueTask<ReadResult> ReadAsync(string name, long position, int maxBytes = Unlimited) =>
        Store.ReadAsync(name, new ReadRequest(OffsetQuery.At(new StreamOffset(position)), maxBytes), Ct);

    protected ValueTask<ReadResult> ReadFromStartAsync(string name, int maxBytes = Unlimited) =>
        Store.ReadAsync(name, new ReadRequest(OffsetQuery.Beginning, maxBytes), Ct);

    /// <summary>Reads a whole stream in one request, asserting it succeeded and reached the tail.</summary>
    protected async Task<byte[]> ReadBytesAsync(string name, long position = 0)
    {
        var read = await ReadAsync(name, position);
        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.True(read.UpToDate);
        var bytes = BytesOf(read);
        Assert.Equal(read.Length, bytes.Length);
        Assert.Equal(read.Next.Position - read.Start.Position, read.Length);
        return bytes;
    }

    protected async Task<string> ReadTextAsync(string name, long position = 0) => Encoding.UTF8.GetString(await ReadBytesAsync(name, position));

    /// <summary>Reads a whole JSON stream and returns it as one JSON array.</summary>
    protected async Task<string> ReadJsonAsync(string name, long position = 0)
    {
        var read = await ReadAsync(name, position);
        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.True(read.UpToDate);
        var buffer = new ArrayBufferWriter<byte>();
        JsonFraming.WriteArray(read.Chunks, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    protected static byte[] BytesOf(ReadResult read) => [.. read.Chunks.SelectMany(c => c.ToArray())];

    protected async Task<StreamInfo> InfoAsync(string name)
    {
        var metadata = await Store.GetMetadataAsync(name, Ct);
        Assert.Equal(ReadStatus.Ok, metadata.Status);
        Assert.NotNull(metadata.Info);
        return metadata.Info;
    }

    protected async Task<ReadStatus> MetadataStatusAsync(string name) => (await Store.GetMetadataAsync(name, Ct)).Status;

    protected async Task<DeleteStatus> DeleteAsync(string name) => (await Store.DeleteAsync(name, Ct)).Status;

    /// <summary>Deterministic filler of a given length, different for each <paramref name="seed"/>.</summary>
    protected static byte[] Filler(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
