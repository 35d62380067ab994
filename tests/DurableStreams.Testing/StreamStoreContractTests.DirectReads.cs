using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

/// <summary>
/// Positioned reads of an exact committed range (<see cref="DirectReads.ReadIntoAsync"/>), as the server uses them for
/// the later pieces of a long catch-up response: straight through <see cref="IDirectReadStore"/> where the store has
/// it, and through the generic fallback (a wrapper that hides it) — both must give the same bytes and statuses.
/// </summary>
public abstract partial class StreamStoreContractTests
{
    private static byte[] Pattern(int length, int seed) =>
        [.. Enumerable.Range(0, length).Select(i => (byte)((i * 7) + seed))];

    /// <summary>The store itself, and the same store seen without <see cref="IDirectReadStore"/>.</summary>
    private IStreamStore[] DirectAndFallback => [Store, new WithoutDirectReads(Store)];

    private async Task<byte[]> AppendPiecesAsync(string name, params int[] lengths)
    {
        var all = new List<byte>();
        foreach (var length in lengths)
        {
            var bytes = Pattern(length, all.Count);
            Assert.Equal(AppendStatus.Appended, (await Store.AppendAsync(name, new AppendRequest { ContentType = Binary, Body = bytes }, Ct)).Status);
            all.AddRange(bytes);
        }
        return [.. all];
    }

    [Fact]
    public async Task ReadInto_copies_exactly_the_range_whether_or_not_it_lines_up_with_appends()
    {
        await CreatedAsync("d", Binary);
        var data = await AppendPiecesAsync("d", 5, 300, 1, 4000, 77, 2048);
        (int Start, int Length)[] ranges =
        [
            (0, data.Length), // everything
            (0, 5), (5, 300), (305, 1), // exactly one append
            (10, 20), // inside one append
            (3, 303), // cut at both ends, whole appends between
            (304, 4078), // from the last byte of one append to inside a later one
            (306, 4000), // exactly one whole append in the middle
            (data.Length - 1, 1), // the last byte
            (100, 0), (data.Length, 0), // nothing
        ];
        foreach (var store in DirectAndFallback)
        {
            foreach (var (start, length) in ranges)
            {
                var destination = new byte[length + 2];
                destination[0] = 0xEE;
                destination[^1] = 0xEE;

                var status = await store.ReadIntoAsync("d", start, destination.AsMemory(1, length), Ct);

                Assert.Equal(ReadStatus.Ok, status);
                Assert.Equal(data.AsSpan(start, length).ToArray(), destination.AsSpan(1, length).ToArray());
                // Nothing written outside the destination.
                Assert.Equal(0xEE, destination[0]);
                Assert.Equal(0xEE, destination[^1]);
            }
        }
    }

    [Fact]
    public async Task ReadInto_a_range_past_the_tail_is_OffsetBeyondTail_and_a_missing_stream_not_found()
    {
        await CreatedAsync("d", Binary);
        var data = await AppendPiecesAsync("d", 100, 50);
        foreach (var store in DirectAndFallback)
        {
            Assert.Equal(ReadStatus.OffsetBeyondTail, await store.ReadIntoAsync("d", 100, new byte[51], Ct));
            Assert.Equal(ReadStatus.OffsetBeyondTail, await store.ReadIntoAsync("d", data.Length + 1, new byte[1], Ct));
            Assert.Equal(ReadStatus.NotFound, await store.ReadIntoAsync("nope", 0, new byte[1], Ct));
        }

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("d"));

        foreach (var store in DirectAndFallback)
        {
            Assert.Equal(ReadStatus.NotFound, await store.ReadIntoAsync("d", 0, new byte[10], Ct));
        }
    }

    [Fact]
    public async Task ReadInto_a_fork_reads_the_inherited_range_from_its_source_and_the_rest_from_the_fork()
    {
        await CreatedAsync("src", Binary);
        var source = await AppendPiecesAsync("src", 40, 60, 30);
        await CreatedAsync("fork", Binary, fork: ForkOf("src", 70));
        var own = await AppendPiecesAsync("fork", 25, 5);
        byte[] expected = [.. source.AsSpan(0, 70).ToArray(), .. own];
        foreach (var store in DirectAndFallback)
        {
            foreach (var (start, length) in new[] { (0, expected.Length), (50, 40), (69, 2), (70, 30), (10, 60) })
            {
                var destination = new byte[length];

                Assert.Equal(ReadStatus.Ok, await store.ReadIntoAsync("fork", start, destination, Ct));
                Assert.Equal(expected.AsSpan(start, length).ToArray(), destination);
            }
        }
    }

    /// <summary>
    /// The store seen without <see cref="IDirectReadStore"/>, on purpose, so the generic fallback is tested; the
    /// wrappers the server tests use pass it through (ObservedStore). The contract test disposes the real store itself.
    /// </summary>
    private sealed class WithoutDirectReads(IStreamStore inner) : ForwardingStore(inner, ownsInner: false);
}
