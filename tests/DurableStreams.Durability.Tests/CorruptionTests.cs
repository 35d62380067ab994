using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Damage inside committed data (a flipped bit, a data file shorter than its committed tail, a missing data file) makes
/// that one stream fail closed: reads answer <see cref="ReadStatus.Corrupt"/> instead of serving wrong bytes, appends
/// fail, and every other stream keeps working.
/// </summary>
public sealed class CorruptionTests : FileStoreTestBase
{
    private static readonly byte[] s_first = Bytes("first append|");
    private static readonly byte[] s_second = Filler(3000, seed: 3);
    private static readonly byte[] s_third = Bytes("|third append");

    /// <summary>Creates "bad" (three appends), "good" and a fork of "good"; returns the data file of "bad".</summary>
    private async Task<string> CreateStreamsAsync()
    {
        await CreatedAsync("bad", Binary);
        foreach (var body in new[] { s_first, s_second, s_third })
        {
            Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("bad", body, Binary)).Status);
        }
        await CreatedAsync("good", body: "good data");
        await CreatedAsync("good-fork", contentType: null, fork: ForkOf("good"));
        await AppendedAsync("good-fork", "+fork");
        return DataFileOf(await IdOfAsync("bad"));
    }

    private async Task AssertOtherStreamsWorkAsync()
    {
        Assert.Equal("good data", await ReadTextAsync("good"));
        Assert.Equal("good data+fork", await ReadTextAsync("good-fork"));
        await AppendedAsync("good", "+more");
        await AppendedAsync("good-fork", "+more");
        await CreatedAsync("fresh", body: "fresh");
        Assert.Equal("good data+more", await ReadTextAsync("good"));
        Assert.Equal("good data+fork+more", await ReadTextAsync("good-fork"));
        Assert.Equal("fresh", await ReadTextAsync("fresh"));
    }

    [Theory]
    [InlineData(0)] // first byte of the stream
    [InlineData(13 + 1500)] // inside the middle append
    [InlineData(13 + 3000 + 12)] // last committed byte
    public async Task A_flipped_bit_in_committed_data_fails_that_stream_closed(int position)
    {
        var file = await CreateStreamsAsync();
        await StopAsync();

        var bytes = await File.ReadAllBytesAsync(file, Ct);
        Assert.Equal(s_first.Length + s_second.Length + s_third.Length, bytes.Length);
        bytes[position] ^= 0x10;
        await File.WriteAllBytesAsync(file, bytes, Ct);

        Start();

        var read = await ReadFromStartAsync("bad");
        Assert.Equal(ReadStatus.Corrupt, read.Status);
        Assert.Empty(read.Chunks);
        // A read of exactly the damaged range fails too, and so does every read once the damage is known.
        Assert.Equal(ReadStatus.Corrupt, (await ReadAsync("bad", position)).Status);
        Assert.Equal(ReadStatus.Corrupt, (await ReadFromStartAsync("bad")).Status);
        Assert.Equal(AppendStatus.StorageFailure, (await AppendAsync("bad", "more", Binary)).Status);
        await AssertOtherStreamsWorkAsync();

        // A restart does not make the damaged bytes servable.
        await RestartAsync();

        Assert.Equal(ReadStatus.Corrupt, (await ReadAsync("bad", position)).Status);
        Assert.Equal(AppendStatus.StorageFailure, (await AppendAsync("bad", "more", Binary)).Status);
        Assert.Equal("good data+more", await ReadTextAsync("good"));
    }

    [Theory]
    [InlineData(13 + 1500, 13, 3000)] // the damaged append lies whole inside the range
    [InlineData(13 + 1500, 20, 100)] // the range lies inside the damaged append, away from the damage
    [InlineData(0, 5, 3010)] // the range starts inside the damaged append
    [InlineData(13 + 3000 + 12, 10, 3010)] // the range ends inside the damaged append
    public async Task A_positioned_read_into_a_buffer_checks_every_append_it_touches(int damage, int start, int length)
    {
        var file = await CreateStreamsAsync();
        await StopAsync();
        var bytes = await File.ReadAllBytesAsync(file, Ct);
        bytes[damage] ^= 0x10;
        await File.WriteAllBytesAsync(file, bytes, Ct);
        Start();
        var destination = new byte[length];
        // An untouched append still reads (checksums are per append) until the damage is found.
        var untouched = damage < 13 ? 13 + 3000 : 0;
        Assert.Equal(ReadStatus.Ok, await Store.ReadIntoAsync("bad", untouched, destination.AsMemory(0, 13), Ct));

        Assert.Equal(ReadStatus.Corrupt, await Store.ReadIntoAsync("bad", start, destination, Ct));

        Assert.Equal(ReadStatus.Corrupt, await Store.ReadIntoAsync("bad", untouched, destination.AsMemory(0, 13), Ct));
        Assert.Equal(ReadStatus.Corrupt, (await ReadFromStartAsync("bad")).Status);
        await AssertOtherStreamsWorkAsync();
    }

    [Fact]
    public async Task A_flipped_bit_in_a_source_fails_reads_through_its_fork()
    {
        await CreateStreamsAsync();
        await CreatedAsync("bad-fork", contentType: null, fork: ForkOf("bad"));
        await AppendedAsync("bad-fork", "fork-own", Binary);
        var file = DataFileOf(await IdOfAsync("bad"));
        await StopAsync();

        var bytes = await File.ReadAllBytesAsync(file, Ct);
        bytes[20] ^= 0x01;
        await File.WriteAllBytesAsync(file, bytes, Ct);

        Start();

        Assert.Equal(ReadStatus.Corrupt, (await ReadFromStartAsync("bad-fork")).Status);
        // The fork's own bytes are intact and still readable.
        var own = s_first.Length + s_second.Length + s_third.Length;
        Assert.Equal(Bytes("fork-own"), await ReadBytesAsync("bad-fork", own));
        await AssertOtherStreamsWorkAsync();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3000)]
    [InlineData(-1)] // cut to zero bytes
    public async Task A_data_file_shorter_than_its_committed_tail_fails_that_stream_closed(int cut)
    {
        var file = await CreateStreamsAsync();
        await StopAsync();

        var length = new FileInfo(file).Length;
        await using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(cut < 0 ? 0 : length - cut);
        }

        Start();

        Assert.Equal(ReadStatus.Corrupt, (await ReadFromStartAsync("bad")).Status);
        Assert.Equal(AppendStatus.StorageFailure, (await AppendAsync("bad", "more", Binary)).Status);
        await AssertOtherStreamsWorkAsync();

        await RestartAsync();

        Assert.Equal(ReadStatus.Corrupt, (await ReadFromStartAsync("bad")).Status);
        Assert.Equal(AppendStatus.StorageFailure, (await AppendAsync("bad", "more", Binary)).Status);
    }

    [Fact]
    public async Task A_missing_data_file_fails_that_stream_closed_and_it_can_be_deleted()
    {
        var file = await CreateStreamsAsync();
        await StopAsync();

        File.Delete(file);

        Start();

        Assert.Equal(ReadStatus.Corrupt, (await ReadFromStartAsync("bad")).Status);
        Assert.Equal(AppendStatus.StorageFailure, (await AppendAsync("bad", "more", Binary)).Status);
        Assert.False(File.Exists(file));
        await AssertOtherStreamsWorkAsync();

        // The operator's way out: delete the damaged stream and create it again.
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("bad"));
        await CreatedAsync("bad", Binary, body: "rebuilt");

        await RestartAsync();

        Assert.Equal("rebuilt", await ReadTextAsync("bad"));
    }
}
