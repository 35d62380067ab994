using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;

namespace DurableStreams.Core.Tests.Storage;

/// <summary>The store contract against <see cref="FileStreamStore"/>, restarting it where the contract asks.</summary>
public sealed class FileStreamStoreTests : StreamStoreContractTests
{
    private static readonly TimeSpan Sweep = TimeSpan.FromSeconds(2);
    private readonly TempDirectory _directory = new();

    protected override TimeSpan SweepInterval => Sweep;

    protected override Task<IStreamStore> CreateStoreAsync(FakeTimeProvider time) => Task.FromResult<IStreamStore>(Open(time));

    protected override async Task<IStreamStore?> ReopenStoreAsync(IStreamStore store, FakeTimeProvider time)
    {
        await store.DisposeAsync();
        return Open(time);
    }

    protected override ValueTask<int> CountLiveStreamsAsync(IStreamStore store) => ValueTask.FromResult(((FileStreamStore)store).Count);

    private FileStreamStore Open(FakeTimeProvider time) => FileStreamStore.Open(new FileStreamStoreOptions
    {
        DataDirectory = _directory.Path,
        TimeProvider = time,
        SweepInterval = Sweep,
        MaxForkDepth = Limits.MaxForkDepth,
        MaxMessagesPerAppend = Limits.MaxMessagesPerAppend,
        Retention = Limits.Retention ?? DurableStreams.Core.Retention.RetentionPolicies.None,
        Durability = WithoutSyncs ? DurabilityMode.None : DurabilityMode.Always,
        ProducerRetention = ProducerRetention,
    });

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }
}

/// <summary>File-store behaviour outside the shared contract: data files and the open-file limit.</summary>
public sealed class FileStreamStoreFileTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => Xunit.TestContext.Current.CancellationToken;

    private FileStreamStore Open(int maxOpenFiles = 2048) => FileStreamStore.Open(new FileStreamStoreOptions
    {
        DataDirectory = _directory.Path,
        TimeProvider = _time,
        MaxOpenFiles = maxOpenFiles,
    });

    private static byte[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    [Xunit.Fact]
    public async Task Many_streams_stay_under_the_open_file_limit_and_keep_their_data()
    {
        await using var store = Open(maxOpenFiles: 16);
        for (var i = 0; i < 100; i++)
        {
            var name = $"s{i}";
            Xunit.Assert.Equal(CreateStatus.Created, (await store.CreateAsync(name, new CreateStreamRequest { ContentType = "text/plain", Body = Bytes(name + ":") }, Ct)).Status);
            Xunit.Assert.Equal(AppendStatus.Appended, (await store.AppendAsync(name, new AppendRequest { ContentType = "text/plain", Body = Bytes("x") }, Ct)).Status);
            Xunit.Assert.True(store.OpenFileCount <= 16, $"{store.OpenFileCount} files open after stream {i}");
        }
        for (var i = 0; i < 100; i++)
        {
            var read = await store.ReadAsync($"s{i}", new ReadRequest(DurableStreams.Protocol.OffsetQuery.Beginning, 1 << 20), Ct);
            Xunit.Assert.Equal(ReadStatus.Ok, read.Status);
            Xunit.Assert.Equal($"s{i}:x", System.Text.Encoding.UTF8.GetString(read.Chunks.SelectMany(c => c.ToArray()).ToArray()));
        }
        Xunit.Assert.True(store.OpenFileCount <= 16, $"{store.OpenFileCount} files open after reading");
    }

    [Xunit.Fact]
    public async Task A_stream_gets_a_data_file_only_when_it_has_data()
    {
        await using var store = Open();
        await store.CreateAsync("empty", new CreateStreamRequest { ContentType = "text/plain" }, Ct);
        Xunit.Assert.Empty(Directory.GetFiles(_directory.Combine("streams"), "*.dat"));

        Xunit.Assert.Equal(AppendStatus.Appended, (await store.AppendAsync("empty", new AppendRequest { ContentType = "text/plain", Body = Bytes("now") }, Ct)).Status);

        var file = Xunit.Assert.Single(Directory.GetFiles(_directory.Combine("streams"), "*.dat"));
        Xunit.Assert.Equal(3, new FileInfo(file).Length);
    }

    public void Dispose() => _directory.Dispose();
}
