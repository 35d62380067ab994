using DurableStreams.Core;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// A crash can leave bytes past the committed tail of a data file (a torn write, zeros from a preallocated extent,
/// garbage). On reopen the stream must read exactly its committed bytes, and the next append must land right after
/// them rather than after (or inside) the junk.
/// </summary>
public sealed class TornTailTests : FileStoreTestBase
{
    public enum Junk
    {
        Garbage,
        Zeros,
        /// <summary>The first part of an append's bytes, as a write cut short by the crash leaves them.</summary>
        PartialFrame,
        /// <summary>More junk than one frame, so it cannot pass for a frame's worth of data.</summary>
        LargeGarbage,
    }

    private static byte[] JunkBytes(Junk junk) => junk switch
    {
        Junk.Garbage => Filler(37, seed: 7),
        Junk.Zeros => new byte[4096],
        Junk.PartialFrame => Bytes("<next-append-that-never-commit"),
        Junk.LargeGarbage => Filler(FileStreamStore.MaxFrameBytes + 1000, seed: 8),
        _ => throw new ArgumentOutOfRangeException(nameof(junk)),
    };

    [Theory]
    [InlineData(Junk.Garbage)]
    [InlineData(Junk.Zeros)]
    [InlineData(Junk.PartialFrame)]
    [InlineData(Junk.LargeGarbage)]
    public async Task A_junk_tail_is_cut_and_the_next_append_lands_right_after_the_committed_bytes(Junk junk)
    {
        await CreatedAsync("torn", Binary);
        await CreatedAsync("other", Binary);
        byte[] committed = [.. Bytes("committed-1|"), .. Filler(5000, seed: 2), .. Bytes("|committed-2")];
        Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("torn", committed[..12], Binary)).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("torn", committed[12..], Binary)).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("other", Bytes("other-data"), Binary)).Status);
        var file = DataFileOf(await IdOfAsync("torn"));
        await StopAsync();

        await using (var stream = new FileStream(file, FileMode.Append, FileAccess.Write))
        {
            await stream.WriteAsync(JunkBytes(junk), Ct);
        }
        Assert.True(new FileInfo(file).Length > committed.Length);

        Start();

        Assert.Equal(committed, await ReadBytesAsync("torn"));
        Assert.Equal(committed.Length, (await InfoAsync("torn")).Tail.Position);
        Assert.Equal(committed.Length, new FileInfo(file).Length);
        var next = await AppendBytesAsync("torn", Bytes("next"), Binary);
        Assert.Equal(AppendStatus.Appended, next.Status);
        Assert.Equal(committed.Length + 4, next.NextOffset.Position);
        byte[] expected = [.. committed, .. Bytes("next")];
        Assert.Equal(expected, await ReadBytesAsync("torn"));
        Assert.Equal(Bytes("next"), await ReadBytesAsync("torn", committed.Length));
        Assert.Equal(Bytes("other-data"), await ReadBytesAsync("other"));

        await RestartAsync();

        Assert.Equal(expected, await ReadBytesAsync("torn"));
        Assert.Equal(Bytes("other-data"), await ReadBytesAsync("other"));
    }

    [Fact]
    public async Task A_torn_json_message_is_cut_and_later_messages_frame_correctly()
    {
        await CreatedAsync("j", Json, body: "[{\"n\":1},{\"n\":2}]");
        var file = DataFileOf(await IdOfAsync("j"));
        await StopAsync();

        await using (var stream = new FileStream(file, FileMode.Append, FileAccess.Write))
        {
            await stream.WriteAsync(Bytes("{\"n\":3,\"tor"), Ct);
        }

        Start();

        Assert.Equal("[{\"n\":1},{\"n\":2}]", await ReadJsonAsync("j"));
        var tail = (await InfoAsync("j")).Tail.Position;
        await AppendedAsync("j", "{\"n\":4}", Json);
        Assert.Equal("[{\"n\":1},{\"n\":2},{\"n\":4}]", await ReadJsonAsync("j"));
        Assert.Equal("[{\"n\":4}]", await ReadJsonAsync("j", tail));

        await RestartAsync();

        Assert.Equal("[{\"n\":1},{\"n\":2},{\"n\":4}]", await ReadJsonAsync("j"));
    }

    [Fact]
    public async Task A_junk_tail_on_a_fork_is_cut_without_touching_its_source()
    {
        await CreatedAsync("src", body: "source");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        await AppendedAsync("fork", "+fork");
        var forkFile = DataFileOf(await IdOfAsync("fork"));
        var sourceFile = DataFileOf(await IdOfAsync("src"));
        await StopAsync();

        await File.AppendAllTextAsync(forkFile, "junk-after-fork", Ct);
        await File.AppendAllTextAsync(sourceFile, "junk-after-source", Ct);

        Start();

        Assert.Equal("source+fork", await ReadTextAsync("fork"));
        Assert.Equal("source", await ReadTextAsync("src"));
        Assert.Equal(12, (await AppendedAsync("fork", "!")).NextOffset.Position);
        Assert.Equal("source+fork!", await ReadTextAsync("fork"));
        Assert.Equal(7, (await AppendedAsync("src", "?")).NextOffset.Position);
        Assert.Equal("source?", await ReadTextAsync("src"));
        Assert.Equal("source+fork!", await ReadTextAsync("fork"));
    }
}
