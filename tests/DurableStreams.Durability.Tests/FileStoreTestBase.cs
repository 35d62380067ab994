using System.Globalization;
using System.Text;
using DurableStreams.Core;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// One <see cref="FileStreamStore"/> in its own temp directory with a fake clock, which a test can stop (dispose),
/// tamper with on disk, and start again over the same directory, as a process restart would.
/// </summary>
public abstract class FileStoreTestBase : StoreTestBase, IAsyncLifetime
{
    private readonly TempDirectory _directory = new();
    private FileStreamStore? _store;

    /// <summary>The running store; throws while stopped.</summary>
    protected FileStreamStore Store => _store ?? throw new InvalidOperationException("The store is stopped.");

    protected override IStreamStore CurrentStore => Store;

    protected string DataDirectory => _directory.Path;

    protected virtual DurabilityMode Durability => DurabilityMode.Always;

    /// <summary>The LMDB map size: the most metadata the store can hold.</summary>
    protected virtual long MetadataMapSize => new FileStreamStoreOptions { DataDirectory = "." }.MetadataMapSize;

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

    /// <summary>The options each start opens the store with.</summary>
    protected virtual FileStreamStoreOptions StoreOptions => new()
    {
        DataDirectory = DataDirectory,
        TimeProvider = Time,
        Durability = Durability,
        MetadataMapSize = MetadataMapSize,
        SweepInterval = TimeSpan.FromSeconds(2),
    };

    protected FileStreamStore OpenStore() => FileStreamStore.Open(StoreOptions);

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

    protected async Task<AppendStreamResult> AppendedAsync(string name, string? body, string? contentType = TextPlain, string? streamSeq = null, ProducerClaim? producer = null, bool close = false)
    {
        var result = await AppendAsync(name, body, contentType, streamSeq, producer, close);
        Assert.Equal(AppendStatus.Appended, result.Status);
        return result;
    }

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
        return JsonOf(read);
    }

    /// <summary>Deterministic filler of a given length, different for each <paramref name="seed"/>.</summary>
    protected static byte[] Filler(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
