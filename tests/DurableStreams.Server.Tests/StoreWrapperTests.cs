using DurableStreams.Core;
using DurableStreams.Core.Memory;
using DurableStreams.Server.Internal;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// The store wrappers the server tests put between the server and a real store must pass every optional store
/// interface through: the server picks its read path (<see cref="IDirectReadStore"/>) and its subscription back-fill
/// (<see cref="IStreamCatalog"/>) by type test, so a wrapper that hides one makes the tests take a path production never takes.
/// </summary>
public sealed class StoreWrapperTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Every interface a production store implements beside the contract itself.</summary>
    private static IEnumerable<Type> OptionalStoreInterfaces =>
        new[] { typeof(MemoryStreamStore), typeof(FileStreamStore) }
            .SelectMany(t => t.GetInterfaces())
            .Where(i => i != typeof(IStreamStore) && i != typeof(IAsyncDisposable) && i != typeof(IDisposable))
            .Distinct();

    /// <summary>Public store types in the test assemblies that wrap another store (a constructor takes an <see cref="IStreamStore"/>).</summary>
    private static IEnumerable<Type> Wrappers =>
        new[] { typeof(ObservedStore).Assembly, typeof(ServerHarness).Assembly }
            .SelectMany(a => a.GetExportedTypes())
            .Where(t => t.IsClass && !t.IsAbstract && typeof(IStreamStore).IsAssignableFrom(t))
            .Where(t => t.GetConstructors().Any(c => c.GetParameters().Any(p => p.ParameterType == typeof(IStreamStore))));

    [Fact]
    public void Every_store_wrapper_in_the_tests_implements_every_optional_store_interface()
    {
        var wrappers = Wrappers.ToList();
        Assert.Contains(typeof(ObservedStore), wrappers);
        Assert.Contains(typeof(IDirectReadStore), OptionalStoreInterfaces);
        Assert.Contains(typeof(IStreamCatalog), OptionalStoreInterfaces);
        Assert.Contains(typeof(DurableStreams.Core.Retention.IStreamRetention), OptionalStoreInterfaces);
        var hidden = (from wrapper in wrappers
                      from optional in OptionalStoreInterfaces
                      where !optional.IsAssignableFrom(wrapper)
                      select $"{wrapper.Name} hides {optional.Name}").ToList();
        Assert.True(hidden.Count == 0, string.Join("; ", hidden));
    }

    [Fact]
    public async Task The_observed_store_answers_through_the_inner_stores_catalog_and_direct_reads()
    {
        await using var observed = new ObservedStore(new MemoryStreamStore());
        Assert.Equal(CreateStatus.Created, (await observed.CreateAsync("a", new CreateStreamRequest { ContentType = "text/plain", Body = "hello"u8.ToArray() }, Ct)).Status);
        var readsSeen = 0;
        observed.BeforeRead = (_, _) => readsSeen++;

        Assert.Equal(["a"], Assert.IsAssignableFrom<IStreamCatalog>(observed).ListStreamNames());
        var direct = Assert.IsAssignableFrom<IDirectReadStore>(observed);
        var buffer = new byte[3];
        Assert.Equal(ReadStatus.Ok, await direct.ReadIntoAsync("a", 1, buffer, Ct));
        Assert.Equal("ell"u8.ToArray(), buffer);
        Assert.Equal(ReadStatus.OffsetBeyondTail, await direct.ReadIntoAsync("a", 4, buffer, Ct));
        Assert.Equal(2, readsSeen);
    }

    [Fact]
    public async Task A_long_catch_up_read_through_the_shared_harness_reaches_the_stores_direct_reads()
    {
        var counting = new CountingDirectReads(new MemoryStreamStore());
        await using (counting)
        {
            await using var host = await InProcessServer.StartAsync(store: counting, cancellationToken: Ct);
            using var client = new HttpClient { BaseAddress = host.StreamsUrl, Timeout = ServerHarness.RequestTimeout };
            var body = new byte[(2 * StreamEndpoints.ReadPieceBytes) + 10];
            new Random(5).NextBytes(body);
            using (var created = await client.PutAsync("long", ServerHarness.Body("application/octet-stream", body), Ct))
            {
                Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
            }

            Assert.Equal(body, await client.GetByteArrayAsync("long?offset=-1", Ct));
            // The pieces after the first are positioned reads of the committed range, straight into the response.
            Assert.True(counting.DirectReads > 0, "the server read every piece through ReadAsync: a wrapper hid IDirectReadStore");
        }
    }

    /// <summary>A store that counts the positioned reads it serves (private: it is no wrapper the tests share).</summary>
    private sealed class CountingDirectReads(MemoryStreamStore inner) : ForwardingStore(inner), IDirectReadStore
    {
        private int _directReads;

        public int DirectReads => Volatile.Read(ref _directReads);

        public ValueTask<ReadStatus> ReadIntoAsync(string name, long position, Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _directReads);
            return ((IDirectReadStore)inner).ReadIntoAsync(name, position, destination, cancellationToken);
        }
    }
}
