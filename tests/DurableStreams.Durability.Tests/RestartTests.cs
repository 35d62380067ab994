using DurableStreams.Core;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Every kind of state the file store keeps survives a dispose and reopen over the same directory: data and offsets,
/// closure, producers, Stream-Seq, forks, soft deletes and their clean-up, TTL/expiry and JSON framing.
/// </summary>
public sealed class RestartTests : FileStoreTestBase
{
    [Fact]
    public async Task Data_and_offsets_survive_restart_and_later_offsets_keep_increasing()
    {
        await CreatedAsync("s", Binary);
        // Larger than one frame (64 KiB), so a single append spans several CRC frames.
        byte[][] appends = [Bytes("first "), Filler((2 * FileStreamStore.MaxFrameBytes) + 123, seed: 1), Bytes(" last")];
        var offsets = new List<long>();
        foreach (var body in appends)
        {
            var result = await AppendBytesAsync("s", body, Binary);
            Assert.Equal(AppendStatus.Appended, result.Status);
            offsets.Add(result.NextOffset.Position);
        }
        byte[] expected = [.. appends.SelectMany(a => a)];

        await RestartAsync();

        Assert.Equal(expected, await ReadBytesAsync("s"));
        Assert.Equal(offsets[^1], (await InfoAsync("s")).Tail.Position);
        // Every offset handed out before the restart still reads the exact suffix after it.
        var start = 0;
        for (var i = 0; i < appends.Length; i++)
        {
            start += appends[i].Length;
            Assert.Equal(start, offsets[i]);
            Assert.Equal(expected[start..], await ReadBytesAsync("s", offsets[i]));
        }

        var after = await AppendBytesAsync("s", Bytes("after"), Binary);
        Assert.Equal(AppendStatus.Appended, after.Status);
        Assert.Equal(offsets[^1] + 5, after.NextOffset.Position);

        await RestartAsync();

        var afterRestart = await ReadBytesAsync("s");
        Assert.Equal([.. expected, .. Bytes("after")], afterRestart);
        var again = await AppendBytesAsync("s", Bytes("+"), Binary);
        Assert.Equal(after.NextOffset.Position + 1, again.NextOffset.Position);
    }

    [Fact]
    public async Task Closure_survives_restart()
    {
        await CreatedAsync("closed-later", body: "abc");
        await AppendedAsync("closed-later", "def", close: true);
        await CreatedAsync("closed-at-create", body: "xyz", closed: true);

        await RestartAsync();

        foreach (var (name, text) in new[] { ("closed-later", "abcdef"), ("closed-at-create", "xyz") })
        {
            var info = await InfoAsync(name);
            Assert.True(info.Closed, name);
            var read = await ReadFromStartAsync(name);
            Assert.True(read.Closed, name);
            Assert.Equal(text, await ReadTextAsync(name));
            Assert.Equal(AppendStatus.StreamClosed, (await AppendAsync(name, "more")).Status);
            Assert.Equal(AppendStatus.AlreadyClosed, (await AppendAsync(name, null, close: true)).Status);
        }
        // The create configuration is compared with the current closure: the stream closed later now matches closed: true.
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("closed-later", closed: true)).Status);
    }

    [Fact]
    public async Task Producer_state_survives_restart()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "a", producer: Producer(0, 0));
        await AppendedAsync("s", "b", producer: Producer(0, 1));
        await AppendedAsync("s", "x", producer: Producer(3, 0, id: "other"));

        await RestartAsync();

        // A retry of the last (id, epoch, seq) after the restart is a duplicate, not a second copy.
        var retry = await AppendAsync("s", "b", producer: Producer(0, 1));
        Assert.Equal(AppendStatus.Duplicate, retry.Status);
        Assert.Equal(0, retry.ProducerEpoch);
        Assert.Equal(1, retry.ProducerSeq);
        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("s", "a", producer: Producer(0, 0))).Status);
        Assert.Equal("abx", await ReadTextAsync("s"));

        var gap = await AppendAsync("s", "z", producer: Producer(0, 5));
        Assert.Equal(AppendStatus.SequenceGap, gap.Status);
        Assert.Equal(2, gap.ExpectedSeq);
        Assert.Equal(AppendStatus.StaleEpoch, (await AppendAsync("s", "z", producer: Producer(2, 9, id: "other"))).Status);
        await AppendedAsync("s", "c", producer: Producer(0, 2));
        await AppendedAsync("s", "d", producer: Producer(1, 0));

        await RestartAsync();

        var stale = await AppendAsync("s", "old", producer: Producer(0, 3));
        Assert.Equal(AppendStatus.StaleEpoch, stale.Status);
        Assert.Equal(1, stale.ProducerEpoch);
        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("s", "d", producer: Producer(1, 0))).Status);
        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("s", "x", producer: Producer(3, 0, id: "other"))).Status);
        await AppendedAsync("s", "e", producer: Producer(1, 1));
        Assert.Equal("abxcde", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Stream_seq_survives_restart()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "1", streamSeq: "0001");
        await AppendedAsync("s", "2", streamSeq: "0002");

        await RestartAsync();

        Assert.Equal(AppendStatus.StreamSeqConflict, (await AppendAsync("s", "x", streamSeq: "0001")).Status);
        Assert.Equal(AppendStatus.StreamSeqConflict, (await AppendAsync("s", "x", streamSeq: "0002")).Status);
        await AppendedAsync("s", "3", streamSeq: "0003");

        await RestartAsync();

        Assert.Equal(AppendStatus.StreamSeqConflict, (await AppendAsync("s", "x", streamSeq: "0003")).Status);
        Assert.Equal("123", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Forks_with_sub_offsets_and_forks_of_forks_survive_restart()
    {
        await CreatedAsync("src", body: "hello ");
        await AppendedAsync("src", "world");
        // Anchored after "hello " with sub-offset 2: the fork takes "wo" of the next append.
        var f1 = await CreatedAsync("f1", contentType: null, fork: ForkOf("src", 6, subOffset: 2));
        Assert.Equal(8, f1.Tail.Position);
        await AppendedAsync("f1", "!!");
        await CreatedAsync("f2", contentType: null, fork: ForkOf("f1"));
        await AppendedAsync("f2", "??");
        await CreatedAsync("f3", contentType: null, fork: ForkOf("f2", 9, subOffset: 1));
        await AppendedAsync("f3", "#");

        await RestartAsync();

        Assert.Equal("hello world", await ReadTextAsync("src"));
        Assert.Equal("hello wo!!", await ReadTextAsync("f1"));
        Assert.Equal("hello wo!!??", await ReadTextAsync("f2"));
        Assert.Equal("hello wo!!#", await ReadTextAsync("f3"));
        Assert.Equal("!??", await ReadTextAsync("f2", 9));
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("f1", contentType: null, fork: ForkOf("src", 6, subOffset: 2))).Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("f1", contentType: null, fork: ForkOf("src", 6, subOffset: 1))).Status);

        // Writes after the restart stay on their own stream and continue its offsets.
        await AppendedAsync("src", "!!!");
        Assert.Equal(11, (await AppendedAsync("f1", "x")).NextOffset.Position);
        Assert.Equal(13, (await AppendedAsync("f2", "y")).NextOffset.Position);

        await RestartAsync();

        Assert.Equal("hello world!!!", await ReadTextAsync("src"));
        Assert.Equal("hello wo!!x", await ReadTextAsync("f1"));
        Assert.Equal("hello wo!!??y", await ReadTextAsync("f2"));
        Assert.Equal("hello wo!!#", await ReadTextAsync("f3"));
    }

    [Fact]
    public async Task Json_forks_at_a_message_sub_offset_survive_restart()
    {
        await CreatedAsync("src", Json, body: "[1,22,333]");
        var fork = await CreatedAsync("fork", contentType: null, fork: ForkOf("src", 0, subOffset: 2));
        await AppendedAsync("fork", "[4]", Json);

        await RestartAsync();

        // Each stored JSON message is its compact text plus a comma: "1," "22," "333,".
        Assert.Equal(5, fork.Tail.Position);
        Assert.Equal(7, (await InfoAsync("fork")).Tail.Position);
        Assert.Equal("[1,22,4]", await ReadJsonAsync("fork"));
        Assert.Equal("[22,4]", await ReadJsonAsync("fork", 2));
        Assert.Equal("[4]", await ReadJsonAsync("fork", 5));
        Assert.Equal(ReadStatus.OffsetUnaligned, (await ReadAsync("fork", 3)).Status);
        await AppendedAsync("fork", "{\"five\":5}", Json);
        Assert.Equal("[1,22,4,{\"five\":5}]", await ReadJsonAsync("fork"));
        Assert.Equal("[1,22,333]", await ReadJsonAsync("src"));
    }

    [Fact]
    public async Task Soft_delete_survives_restart_and_the_name_frees_once_the_last_fork_goes()
    {
        await CreatedAsync("src", body: "base");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        await AppendedAsync("fork", "+fork");
        var sourceFile = DataFileOf(await IdOfAsync("src"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("src"));

        await RestartAsync();

        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("src"));
        Assert.Equal(ReadStatus.Gone, (await ReadFromStartAsync("src")).Status);
        Assert.Equal(AppendStatus.Gone, (await AppendAsync("src", "x")).Status);
        Assert.Equal(DeleteStatus.Gone, await DeleteAsync("src"));
        Assert.Equal(CreateStatus.SoftDeleted, (await CreateAsync("src")).Status);
        Assert.Equal(CreateStatus.SourceSoftDeleted, (await CreateAsync("fork2", contentType: null, fork: ForkOf("src"))).Status);
        Assert.Equal("base+fork", await ReadTextAsync("fork"));
        Assert.Equal(1, Store.Count);

        await RestartAsync();

        Assert.Equal(CreateStatus.SoftDeleted, (await CreateAsync("src")).Status);
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("fork"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("src"));
        Assert.False(File.Exists(sourceFile));
        await CreatedAsync("src", body: "new");

        await RestartAsync();

        Assert.Equal("new", await ReadTextAsync("src"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork"));
        Assert.Single(DataFiles());
    }

    [Fact]
    public async Task Cascade_clean_up_of_a_soft_deleted_chain_works_after_restart()
    {
        await CreatedAsync("a", body: "A");
        await CreatedAsync("b", contentType: null, fork: ForkOf("a"));
        await AppendedAsync("b", "B");
        await CreatedAsync("c", contentType: null, fork: ForkOf("b"));
        await AppendedAsync("c", "C");
        await CreatedAsync("other", body: "keep");
        string[] chainFiles = [DataFileOf(await IdOfAsync("a")), DataFileOf(await IdOfAsync("b")), DataFileOf(await IdOfAsync("c"))];
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("a"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("b"));

        await RestartAsync();

        Assert.Equal("ABC", await ReadTextAsync("c"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("a"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("b"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("c"));
        foreach (var name in new[] { "a", "b", "c" })
        {
            Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync(name));
        }
        Assert.All(chainFiles, f => Assert.False(File.Exists(f), f));

        await RestartAsync();

        foreach (var name in new[] { "a", "b", "c" })
        {
            Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync(name));
            await CreatedAsync(name, body: name);
        }
        Assert.Equal("keep", await ReadTextAsync("other"));
        Assert.Equal("b", await ReadTextAsync("b"));
        Assert.Equal(4, DataFiles().Length);
    }

    [Fact]
    public async Task Sliding_ttl_and_absolute_expiry_follow_the_clock_across_restarts()
    {
        await CreatedAsync("ttl", body: "t", ttl: 60);
        await CreatedAsync("abs", body: "a", expiresAt: StartTime.AddMinutes(10));
        await CreatedAsync("keep", body: "k");
        Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal("t", await ReadTextAsync("ttl")); // refreshes the sliding TTL: now alive until T+90s

        await RestartAsync();

        Time.Advance(TimeSpan.FromSeconds(45)); // T+75s: past created+60 but within last access+60
        Assert.Equal(ReadStatus.Ok, await MetadataStatusAsync("ttl"));

        await StopAsync();
        Time.Advance(TimeSpan.FromSeconds(20)); // T+95s, while stopped
        Start();

        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("ttl"));
        Assert.Equal("a", await ReadTextAsync("abs"));

        await StopAsync();
        Time.Advance(TimeSpan.FromMinutes(10));
        Start();

        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("abs"));
        Assert.Equal(ReadStatus.NotFound, (await ReadFromStartAsync("abs")).Status);
        Assert.Equal("k", await ReadTextAsync("keep"));
        await CreatedAsync("ttl", body: "again");
        Assert.Equal("again", await ReadTextAsync("ttl"));

        await RestartAsync();

        Assert.Equal("again", await ReadTextAsync("ttl"));
        Assert.Equal(2, DataFiles().Length);
    }

    [Fact]
    public async Task An_expired_source_keeps_serving_its_fork_across_restart_while_its_name_is_reused()
    {
        await CreatedAsync("src", body: "old", ttl: 60);
        await CreatedAsync("fork", contentType: null, expiresAt: StartTime.AddDays(1), fork: ForkOf("src"));
        await AppendedAsync("fork", "+f");
        var oldSourceFile = DataFileOf(await IdOfAsync("src"));
        Time.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("src"));
        await CreatedAsync("src", body: "new");

        await RestartAsync();

        Assert.Equal("old+f", await ReadTextAsync("fork"));
        Assert.Equal("new", await ReadTextAsync("src"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("fork"));
        Assert.False(File.Exists(oldSourceFile));

        await RestartAsync();

        Assert.Equal("new", await ReadTextAsync("src"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork"));
        Assert.Single(DataFiles());
    }

    [Fact]
    public async Task Json_streams_keep_their_message_boundaries_across_restart()
    {
        await CreatedAsync("j", Json, body: "[{\"a\":1},{\"b\":2}]");
        await AppendedAsync("j", "{\"c\":3}", Json);
        var tail = await AppendedAsync("j", "[4,[5]]", Json);

        await RestartAsync();

        Assert.Equal("[{\"a\":1},{\"b\":2},{\"c\":3},4,[5]]", await ReadJsonAsync("j"));
        Assert.Equal(tail.NextOffset, (await InfoAsync("j")).Tail);
        // Each stored JSON message is its compact text plus a comma, so {"b":2} starts at 8.
        Assert.Equal("[{\"b\":2},{\"c\":3},4,[5]]", await ReadJsonAsync("j", 8));
        Assert.Equal(ReadStatus.OffsetUnaligned, (await ReadAsync("j", 3)).Status);
        // A small budget still returns whole messages.
        var first = await ReadFromStartAsync("j", maxBytes: 1);
        Assert.Equal("{\"a\":1},"u8.ToArray(), BytesOf(first));
        Assert.Equal(AppendStatus.InvalidJson, (await AppendAsync("j", "{", Json)).Status);
        var next = await AppendedAsync("j", "\"six\"", Json);
        Assert.Equal(tail.NextOffset.Position + 6, next.NextOffset.Position);

        await RestartAsync();

        Assert.Equal("[{\"a\":1},{\"b\":2},{\"c\":3},4,[5],\"six\"]", await ReadJsonAsync("j"));
    }
}
