using System.Text;
using DurableStreams.Protocol;
using DurableStreams.Core;
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
public abstract partial class StreamStoreContractTests : StoreTestBase, IAsyncLifetime
{
    private IStreamStore? _store;

    /// <summary>The store under test (a new instance after <see cref="RestartAsync"/> for persistent stores).</summary>
    protected IStreamStore Store => _store ?? throw new InvalidOperationException("The store has not been created.");

    protected override IStreamStore CurrentStore => Store;

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

    /// <summary>
    /// The store limits <see cref="CreateStoreAsync"/> and <see cref="ReopenStoreAsync"/> must configure (the stores'
    /// defaults unless a test calls <see cref="UseLimitsAsync"/>).
    /// </summary>
    protected StoreLimits Limits { get; private set; } = StoreLimits.Default;

    /// <summary>
    /// True when the test builds many streams and is about their structure, not durability: a store that syncs every
    /// commit may skip syncs (the file store then runs with <c>DurabilityMode.None</c>) so the test stays fast.
    /// </summary>
    protected bool WithoutSyncs { get; private set; }

    /// <summary>Replaces the (still empty) store with one created under <paramref name="limits"/>.</summary>
    protected async Task UseLimitsAsync(StoreLimits limits, bool withoutSyncs = false)
    {
        Limits = limits;
        WithoutSyncs = withoutSyncs;
        await Store.DisposeAsync();
        _store = null;
        _store = await CreateStoreAsync(Time);
    }

    /// <summary>How often the store's background sweeper runs; <see cref="CreateStoreAsync"/> must configure it.</summary>
    protected virtual TimeSpan SweepInterval => TimeSpan.FromSeconds(1);

    /// <summary>
    /// The producer retention <see cref="CreateStoreAsync"/> must configure: short, so the expiry tests advance the fake
    /// clock by minutes rather than by the stores' real defaults (days).
    /// </summary>
    protected static TimeSpan ProducerRetention { get; } = TimeSpan.FromMinutes(2);

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

    /// <summary>Appends and asserts the append was committed.</summary>
    protected async Task<AppendStreamResult> AppendedAsync(string name, string? body, string? contentType = TextPlain, ProducerClaim? producer = null, bool close = false)
    {
        var result = await AppendAsync(name, body, contentType, producer: producer, close: close);
        Assert.Equal(AppendStatus.Appended, result.Status);
        return result;
    }

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
}
