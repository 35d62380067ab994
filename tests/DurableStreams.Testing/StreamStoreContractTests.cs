using System.Buffers;
using System.Text;
using DurableStreams.Protocol;
using DurableStreams.Storage;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Testing;

/// <summary>
/// The <see cref="IStreamStore"/> contract, exercised through the interface only. Each store's test class derives from
/// this one, implements <see cref="CreateStoreAsync"/> and <see cref="CountLiveStreamsAsync"/>, and inherits every test;
/// persistent stores also implement <see cref="ReopenStoreAsync"/> so the durability tests restart them. xUnit creates
/// one instance per test, so every test gets a fresh store and a fresh <see cref="FakeTimeProvider"/>.
/// </summary>
/// <remarks>
/// Stores must take all time (TTL, expiry, live-wait deadlines, the background sweeper) from the provider they are
/// given: with a fake clock timers fire only on <see cref="FakeTimeProvider.Advance"/>. The suite assumes the default
/// JSON nesting limit (<see cref="JsonFraming.DefaultMaxDepth"/>) and a sweeper running every
/// <see cref="SweepInterval"/>.
/// </remarks>
public abstract partial class StreamStoreContractTests : IAsyncLifetime
{
    protected const string TextPlain = "text/plain";
    protected const string Json = "application/json";
    protected const string Binary = "application/octet-stream";
    protected const int Unlimited = 1 << 24;

    /// <summary>The fake clock's start; any fixed instant works.</summary>
    protected static readonly DateTimeOffset StartTime = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Real-time bound on awaits that should complete promptly, so a broken wake-up fails instead of hanging.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);

    private IStreamStore? _store;

    /// <summary>The clock the store was created with.</summary>
    protected FakeTimeProvider Time { get; } = new(StartTime);

    /// <summary>The store under test (a new instance after <see cref="RestartAsync"/> for persistent stores).</summary>
    protected IStreamStore Store => _store ?? throw new InvalidOperationException("The store has not been created.");

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Creates an empty store that takes all time from <paramref name="time"/>.</summary>
    protected abstract Task<IStreamStore> CreateStoreAsync(FakeTimeProvider time);

    /// <summary>
    /// Simulates a process restart: disposes <paramref name="store"/> and opens a new instance over the same persisted
    /// data with the same clock. Stores that keep nothing across restarts (memory) return null, and the durability
    /// tests then check the same assertions against the running instance.
    /// </summary>
    protected virtual Task<IStreamStore?> ReopenStoreAsync(IStreamStore store, FakeTimeProvider time) => Task.FromResult<IStreamStore?>(null);

    /// <summary>
    /// The number of live streams the store holds (soft-deleted ones excluded), read without touching any stream, so
    /// tests can see that the background sweeper reclaimed an expired stream nobody accessed.
    /// </summary>
    protected abstract ValueTask<int> CountLiveStreamsAsync(IStreamStore store);

    /// <summary>How often the store's background sweeper runs; <see cref="CreateStoreAsync"/> must configure it.</summary>
    protected virtual TimeSpan SweepInterval => TimeSpan.FromSeconds(1);

    public virtual async ValueTask InitializeAsync() => _store = await CreateStoreAsync(Time);

    public virtual async ValueTask DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
            _store = null;
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Restarts a persistent store (see <see cref="ReopenStoreAsync"/>); a no-op for memory stores.</summary>
    protected async Task RestartAsync()
    {
        var reopened = await ReopenStoreAsync(Store, Time);
        if (reopened is not null)
        {
            _store = reopened;
        }
    }

    protected static StreamOffset At(long position) => new(position);

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

    /// <summary>Creates a stream and asserts it was created.</summary>
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
        Store.AppendAsync(name, new AppendRequest
        {
            Body = body is null ? ReadOnlyMemory<byte>.Empty : Bytes(body),
            ContentType = contentType,
            StreamSeq = streamSeq,
            Producer = producer,
            Close = close,
        }, Ct);

    /// <summary>Appends and asserts the append was committed.</summary>
    protected async Task<AppendResult> AppendedAsync(string name, string? body, string? contentType = TextPlain, ProducerClaim? producer = null, bool close = false)
    {
        var result = await AppendAsync(name, body, contentType, producer: producer, close: close);
        Assert.Equal(AppendStatus.Appended, result.Status);
        return result;
    }

    protected ValueTask<ReadResult> ReadAsync(string name, OffsetQuery offset, int maxBytes = Unlimited) =>
        Store.ReadAsync(name, new ReadRequest(offset, maxBytes), Ct);

    protected ValueTask<ReadResult> ReadAsync(string name, long position, int maxBytes = Unlimited) =>
        ReadAsync(name, OffsetQuery.At(At(position)), maxBytes);

    protected ValueTask<ReadResult> ReadFromStartAsync(string name, int maxBytes = Unlimited) =>
        ReadAsync(name, OffsetQuery.Beginning, maxBytes);

    /// <summary>Reads the whole stream with one request and returns its text, asserting the read reached the tail.</summary>
    protected async Task<string> ReadTextAsync(string name)
    {
        var read = await ReadFromStartAsync(name);
        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.True(read.UpToDate);
        return TextOf(read);
    }

    /// <summary>Reads a JSON stream with one request and returns it as one JSON array.</summary>
    protected async Task<string> ReadJsonAsync(string name, long? position = null, int maxBytes = Unlimited)
    {
        var read = position is { } p ? await ReadAsync(name, p, maxBytes) : await ReadFromStartAsync(name, maxBytes);
        Assert.Equal(ReadStatus.Ok, read.Status);
        return JsonOf(read);
    }

    protected static string TextOf(ReadResult read)
    {
        var bytes = BytesOf(read);
        Assert.Equal(read.Length, bytes.Length);
        Assert.Equal(read.Next.Position - read.Start.Position, read.Length);
        return Encoding.UTF8.GetString(bytes);
    }

    protected static byte[] BytesOf(ReadResult read) => [.. read.Chunks.SelectMany(c => c.ToArray())];

    protected static string JsonOf(ReadResult read)
    {
        var buffer = new ArrayBufferWriter<byte>();
        JsonFraming.WriteArray(read.Chunks, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    protected async Task<StreamInfo> InfoAsync(string name)
    {
        var metadata = await Store.GetMetadataAsync(name, Ct);
        Assert.Equal(ReadStatus.Ok, metadata.Status);
        Assert.NotNull(metadata.Info);
        return metadata.Info;
    }

    protected async Task<ReadStatus> MetadataStatusAsync(string name) => (await Store.GetMetadataAsync(name, Ct)).Status;

    protected async Task<DeleteStatus> DeleteAsync(string name) => (await Store.DeleteAsync(name, Ct)).Status;

    /// <summary>Awaits a task that must complete without further clock movement.</summary>
    protected static Task<T> Promptly<T>(Task<T> task) => task.WaitAsync(HangGuard, Ct);
}
