using DurableStreams.Core;
using DurableStreams.Protocol;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// A large read (a catch-up piece) asks the kernel to read the next <see cref="FileStreamStore.ReadAheadBytes"/> of
/// the stream's data file ahead, within the committed data and each range once for a sequential catch-up, so a cold
/// catch-up's disk reads overlap its sends; small reads ask for nothing.
/// </summary>
public sealed class ReadAheadTests : FileStoreTestBase
{
    private const int MiB = 1 << 20;
    private const int Chunk = 64 * 1024;

    private async Task<byte[]> FilledAsync(string name, int mib)
    {
        await CreatedAsync(name, Binary);
        var all = new byte[mib * MiB];
        for (var i = 0; i < mib * (MiB / Chunk); i++)
        {
            var chunk = Filler(Chunk, i);
            chunk.CopyTo(all, i * Chunk);
            Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync(name, chunk, Binary)).Status);
        }
        return all;
    }

    [Fact]
    public async Task A_sequential_catch_up_asks_for_the_next_4_MiB_once_each_and_never_past_the_committed_data()
    {
        var all = await FilledAsync("big", 10);
        var asked = new List<(long From, long To)>();
        Store.Faults.ReadAhead = (from, to) => asked.Add((from, to));
        var piece = new byte[MiB];

        for (var position = 0L; position < 10 * MiB; position += MiB)
        {
            Assert.Equal(ReadStatus.Ok, await Store.ReadIntoAsync("big", position, piece, Ct));
            Assert.True(all.AsSpan((int)position, MiB).SequenceEqual(piece), $"bytes at {position}");
        }

        Assert.Equal(
            [(1L * MiB, 5L * MiB), (5L * MiB, 6L * MiB), (6L * MiB, 7L * MiB), (7L * MiB, 8L * MiB), (8L * MiB, 9L * MiB), (9L * MiB, 10L * MiB)],
            asked);
    }

    [Fact]
    public async Task A_read_through_the_store_api_asks_too_and_a_small_or_tail_read_does_not()
    {
        await FilledAsync("big", 6);
        var asked = new List<(long From, long To)>();
        Store.Faults.ReadAhead = (from, to) => asked.Add((from, to));

        using (var read = await Store.ReadAsync("big", new ReadRequest(OffsetQuery.At(new StreamOffset(0)), MiB), Ct))
        {
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.Equal(MiB, read.Length);
        }
        Assert.Equal([(1L * MiB, 5L * MiB)], asked);

        asked.Clear();
        Assert.Equal(ReadStatus.Ok, await Store.ReadIntoAsync("big", 2 * MiB, new byte[Chunk - 1], Ct));
        Assert.Equal(ReadStatus.Ok, await Store.ReadIntoAsync("big", 5 * MiB, new byte[MiB], Ct));
        Assert.Empty(asked);
    }

    [Fact]
    public async Task A_reader_elsewhere_in_the_stream_asks_for_its_own_window()
    {
        await FilledAsync("big", 12);
        var asked = new List<(long From, long To)>();
        Store.Faults.ReadAhead = (from, to) => asked.Add((from, to));
        var piece = new byte[MiB];

        Assert.Equal(ReadStatus.Ok, await Store.ReadIntoAsync("big", 0, piece, Ct));
        Assert.Equal(ReadStatus.Ok, await Store.ReadIntoAsync("big", 6 * MiB, piece, Ct));

        Assert.Equal([(1L * MiB, 5L * MiB), (7L * MiB, 11L * MiB)], asked);
    }
}
