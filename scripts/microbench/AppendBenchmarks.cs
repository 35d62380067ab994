using BenchmarkDotNet.Attributes;
using DurableStreams.Core;
using DurableStreams.Storage.Files;
using DurableStreams.Core.Memory;

namespace DurableStreams.MicroBench;

/// <summary>
/// The append path without HTTP: 100 B appends to the memory store and to the file store. The file store runs without
/// fsync (<see cref="DurabilityMode.None"/>) so the figure is the store's own CPU cost, not the disk's.
/// </summary>
[MemoryDiagnoser]
public class AppendBenchmarks
{
    private readonly byte[] _body = new byte[100];
    private MemoryStreamStore _memory = null!;
    private FileStreamStore _file = null!;
    private string _directory = string.Empty;

    [GlobalSetup]
    public async Task Setup()
    {
        _memory = new MemoryStreamStore();
        _directory = Directory.CreateTempSubdirectory("ds-microbench-").FullName;
        _file = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = _directory, Durability = DurabilityMode.None });
        foreach (var store in new IStreamStore[] { _memory, _file })
        {
            var created = await store.CreateAsync("s", new CreateStreamRequest { ContentType = "application/octet-stream" });
            if (created.Status != CreateStatus.Created)
            {
                throw new InvalidOperationException($"create answered {created.Status}");
            }
        }
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _memory.DisposeAsync();
        await _file.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public async Task<AppendStatus> Memory() => (await _memory.AppendAsync("s", new AppendRequest { ContentType = "application/octet-stream", Body = _body })).Status;

    [Benchmark]
    public async Task<AppendStatus> FileNoSync() => (await _file.AppendAsync("s", new AppendRequest { ContentType = "application/octet-stream", Body = _body })).Status;
}
