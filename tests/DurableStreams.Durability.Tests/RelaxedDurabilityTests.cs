using DurableStreams.Core;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// <see cref="DurabilityMode.Interval"/>: after a power cut the metadata may be ahead of a data file. A data file shorter
/// than its committed tail is then cut back to the last whole frame it holds (acknowledged-but-unsynced appends may be
/// lost in this mode), and everything else about the stream stays as committed.
/// </summary>
public sealed class RelaxedDurabilityTests : FileStoreTestBase
{
    protected override DurabilityMode Durability => DurabilityMode.Interval;

    [Fact]
    public async Task A_short_data_file_rewinds_to_its_last_whole_frame_and_appends_continue_from_there()
    {
        await CreatedAsync("s", body: "aaa");
        await AppendedAsync("s", "bbb");
        await AppendedAsync("s", "ccc");
        await CreatedAsync("other", body: "other");
        var file = DataFileOf(await IdOfAsync("s"));
        await StopAsync();

        await using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(7); // "aaabbb" and one byte of "ccc"
        }

        Start();

        Assert.Equal("aaabbb", await ReadTextAsync("s"));
        Assert.Equal(6, (await InfoAsync("s")).Tail.Position);
        Assert.Equal(7, (await AppendedAsync("s", "d")).NextOffset.Position);
        Assert.Equal("other", await ReadTextAsync("other"));

        await RestartAsync();

        Assert.Equal("aaabbbd", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Rewinding_a_short_data_file_keeps_the_persisted_sliding_ttl_access_time()
    {
        await CreatedAsync("s", body: "aaa", ttl: 60);
        await AppendedAsync("s", "bbb");
        Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal("aaabbb", await ReadTextAsync("s")); // last access T+30s: alive until T+90s
        var file = DataFileOf(await IdOfAsync("s"));
        await StopAsync(); // persists the access time

        await using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(3);
        }

        Start(); // rewinds "s" to "aaa"
        await RestartAsync();
        Time.Advance(TimeSpan.FromSeconds(45)); // T+75s

        Assert.Equal(ReadStatus.Ok, await MetadataStatusAsync("s"));
    }

    [Fact]
    public async Task A_fork_whose_inherited_bytes_were_lost_never_serves_a_hole()
    {
        await CreatedAsync("src", body: "aaa");
        await AppendedAsync("src", "bbb");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        await AppendedAsync("fork", "fff");
        var sourceFile = DataFileOf(await IdOfAsync("src"));
        await StopAsync();

        await using (var stream = new FileStream(sourceFile, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(3); // the source rewinds to "aaa", below the fork point 6
        }

        Start();

        // The source's bytes [3, 6) are gone, so no read can reach the fork's tail without serving a hole. Every byte a
        // read serves must be the acknowledged byte at its offset, each read must make progress, and the walk must end
        // failed closed (Corrupt) before the lost range, never answering "no data, not up to date" or zeros.
        var acknowledged = "aaabbbfff"u8.ToArray();
        var position = 0L;
        var end = ReadStatus.Ok;
        for (var reads = 0; reads < 10 && end == ReadStatus.Ok; reads++)
        {
            var read = await ReadAsync("fork", position);
            if (read.Status != ReadStatus.Ok)
            {
                end = read.Status;
                break;
            }
            Assert.Equal(position, read.Start.Position);
            Assert.Equal(acknowledged[(int)position..(int)read.Next.Position], BytesOf(read));
            Assert.False(read.UpToDate, $"the fork's read at {position} reached its tail over lost bytes");
            Assert.True(read.Next.Position > position, $"read at {position} returned no data and is not up to date (tail {read.Info!.Tail.Position})");
            position = read.Next.Position;
        }
        Assert.Equal(ReadStatus.Corrupt, end);
        Assert.InRange(position, 0, 3);
    }
}
