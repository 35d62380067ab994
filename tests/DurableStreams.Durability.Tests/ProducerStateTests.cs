using DurableStreams.Core;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Producer state in the file store: an append writes only the producer that changed, expired producers leave the
/// metadata, and data written with every producer inline in the state record (format 1) opens with all of them.
/// </summary>
public sealed class ProducerStateTests : FileStoreTestBase
{
    private static readonly TimeSpan Retention = TimeSpan.FromMinutes(10);
    private TimeSpan _retention = Retention;

    protected override FileStreamStoreOptions StoreOptions
    {
        get
        {
            var options = base.StoreOptions;
            return new FileStreamStoreOptions
            {
                DataDirectory = options.DataDirectory,
                TimeProvider = options.TimeProvider,
                Durability = options.Durability,
                MetadataMapSize = options.MetadataMapSize,
                SweepInterval = options.SweepInterval,
                ProducerRetention = _retention,
            };
        }
    }

    private string LogPath => Path.Combine(DataDirectory, "commit.log");

    private static string Id(int i) => $"producer-{i:D4}-" + new string('x', ProducerRules.MaxIdBytes - 14);

    /// <summary>The size of the commit-log record of one producer append on a stream that already has <paramref name="producers"/>.</summary>
    private async Task<int> RecordSizeOfOneAppendAsync(string name, int producers)
    {
        await CreatedAsync(name);
        for (var i = 0; i < producers; i++)
        {
            await AppendedAsync(name, "x", producer: new ProducerClaim(Id(i), 0, 0));
        }
        Store.Faults.SuppressCheckpoints = true;
        var before = CommitLogTests.ReadLog(await File.ReadAllBytesAsync(LogPath, Ct)).Count;
        await AppendedAsync(name, "y", producer: new ProducerClaim(Id(0), 0, 1));
        var records = CommitLogTests.ReadLog(await File.ReadAllBytesAsync(LogPath, Ct));
        Assert.Equal(before + 1, records.Count);
        Store.Faults.SuppressCheckpoints = false;
        return records[^1].Length;
    }

    [Fact]
    public async Task An_append_writes_a_commit_record_whose_size_does_not_grow_with_the_stream_s_producers()
    {
        var withOne = await RecordSizeOfOneAppendAsync("one", 1);
        var withMany = await RecordSizeOfOneAppendAsync("many", 300);

        // The record names streams by id, so the two records are the same size.
        Assert.Equal(withOne, withMany);
        Assert.True(withMany < 2 * ProducerRules.MaxIdBytes, $"a 1-byte producer append wrote a {withMany}-byte record");
        Assert.Equal(300, Store.CommittedProducers("many")!.Count);
    }

    [Fact]
    public async Task Producers_of_many_streams_survive_a_restart_with_and_without_a_checkpoint()
    {
        await CreatedAsync("a");
        await CreatedAsync("b");
        await AppendedAsync("a", "1", producer: new ProducerClaim("p", 4, 0));
        await AppendedAsync("b", "1", producer: new ProducerClaim("q", 2, 0));
        await RestartAsync();
        // Only in the commit log at the crash below: replay must bring these back.
        await AppendedAsync("a", "2", producer: new ProducerClaim("p", 4, 1));
        await AppendedAsync("a", "3", producer: new ProducerClaim("r", 0, 0));
        Store.Faults.SuppressCheckpoints = true;
        await RestartAsync();

        var a = Store.CommittedProducers("a")!;
        var b = Store.CommittedProducers("b")!;
        Assert.Equal((4L, 1L), (a["p"].Epoch, a["p"].LastSeq));
        Assert.Equal((0L, 0L), (a["r"].Epoch, a["r"].LastSeq));
        Assert.Equal((2L, 0L), (b["q"].Epoch, b["q"].LastSeq));
        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("a", "2", producer: new ProducerClaim("p", 4, 1))).Status);
    }

    [Fact]
    public async Task An_expired_producer_s_record_is_deleted_and_stays_deleted_after_a_restart()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "a", producer: new ProducerClaim("idle", 5, 0));
        await AppendedAsync("s", "b", producer: new ProducerClaim("busy", 0, 0));
        Time.Advance(Retention / 2);
        await AppendedAsync("s", "c", producer: new ProducerClaim("busy", 0, 1));
        Time.Advance(Retention / 2);
        // The first append after the idle producer's retention sweeps it (and writes its deletion).
        await AppendedAsync("s", "d", producer: new ProducerClaim("busy", 0, 2));
        Assert.False(Store.CommittedProducers("s")!.ContainsKey("idle"));

        // Reopened without expiry: a record left behind would fence epoch 0 again (stale epoch).
        _retention = Timeout.InfiniteTimeSpan;
        await RestartAsync();

        Assert.Equal(1, Store.ProducerRecordCount());
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "e", producer: new ProducerClaim("idle", 0, 0))).Status);
    }

    [Fact]
    public async Task Deleting_a_stream_deletes_its_producer_records()
    {
        await CreatedAsync("gone");
        await CreatedAsync("kept");
        for (var i = 0; i < 3; i++)
        {
            await AppendedAsync("gone", "x", producer: new ProducerClaim($"g{i}", 0, 0));
        }
        await AppendedAsync("kept", "x", producer: new ProducerClaim("k", 0, 0));

        await DeleteAsync("gone");
        await RestartAsync();

        Assert.Equal(1, Store.ProducerRecordCount());
    }

    [Fact]
    public async Task A_data_directory_with_producers_inline_in_the_state_opens_with_every_producer_tuple()
    {
        await StopAsync();
        Directory.Delete(DataDirectory, recursive: true);
        CopyDirectory(Path.Combine(AppContext.BaseDirectory, "Fixtures", "producers-v1"), DataDirectory);
        var t0 = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        Time.SetUtcNow(t0.AddMinutes(5));
        _retention = Timeout.InfiniteTimeSpan;
        Start();

        var expected = new Dictionary<string, Dictionary<string, (long Epoch, long Seq, DateTimeOffset At)>>
        {
            ["prod/text"] = new()
            {
                ["p-a"] = (0, 3, t0.AddMinutes(3)),
                ["p-b"] = (3, 1, t0.AddMinutes(1)),
                ["prod-é✓"] = (1, 0, t0.AddMinutes(2)),
                ["p-c"] = (0, 0, t0.AddMinutes(3)),
            },
            ["prod/json"] = new() { ["j1"] = (0, 1, t0.AddMinutes(2)), ["j2"] = (5, 0, t0.AddMinutes(2)) },
            ["prod/closed"] = new() { ["c1"] = (2, 1, t0.AddMinutes(2)) },
            ["plain"] = new(),
            ["prod/late"] = new() { ["l1"] = (7, 1, t0.AddMinutes(3)) },
        };
        Check();
        // Migrated durably: the same after a restart.
        await RestartAsync();
        Check();
        Assert.Equal(8, Store.ProducerRecordCount());

        Assert.Equal("a0;a1;a2;b0;b1;u0;a3;c0;", await ReadTextAsync("prod/text"));
        Assert.True((await InfoAsync("prod/closed")).Closed);
        var closeRetry = await AppendAsync("prod/closed", "c1;", producer: new ProducerClaim("c1", 2, 1), close: true);
        Assert.Equal(AppendStatus.Duplicate, closeRetry.Status);
        Assert.Equal(AppendStatus.StreamSeqConflict, (await AppendAsync("prod/text", "z", streamSeq: "0002")).Status);
        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("prod/text", "a3;", producer: new ProducerClaim("p-a", 0, 3))).Status);
        await AppendedAsync("prod/text", "a4;", producer: new ProducerClaim("p-a", 0, 4));
        await RestartAsync();
        Assert.Equal(4, Store.CommittedProducers("prod/text")!["p-a"].LastSeq);
        Assert.Equal((3L, 1L), (Store.CommittedProducers("prod/text")!["p-b"].Epoch, Store.CommittedProducers("prod/text")!["p-b"].LastSeq));

        void Check()
        {
            foreach (var (stream, producers) in expected)
            {
                var actual = Store.CommittedProducers(stream);
                Assert.NotNull(actual);
                Assert.Equal(producers.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
                foreach (var (id, (epoch, seq, at)) in producers)
                {
                    Assert.Equal(new ProducerState(epoch, seq, at), actual[id]);
                }
            }
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (relative.EndsWith(".md", StringComparison.Ordinal))
            {
                continue;
            }
            var target = Path.Combine(to, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }
}
