using DurableStreams.Protocol;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

public abstract partial class StreamStoreContractTests
{
    [Fact]
    public async Task Append_then_read_round_trips_the_bytes()
    {
        await CreatedAsync("s");

        Assert.Equal(At(5), (await AppendedAsync("s", "hello")).NextOffset);
        Assert.Equal(At(11), (await AppendedAsync("s", " world")).NextOffset);
        var read = await ReadFromStartAsync("s");

        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Equal("hello world", TextOf(read));
        Assert.Equal(StreamOffset.Zero, read.Start);
        Assert.Equal(At(11), read.Next);
        Assert.True(read.UpToDate);
        Assert.False(read.Closed);
        Assert.NotNull(read.Info);
        Assert.Equal(At(11), read.Info.Tail);
        Assert.Equal(TextPlain, read.Info.ContentType);
    }

    [Fact]
    public async Task Binary_data_round_trips_every_byte_value()
    {
        await CreatedAsync("b", Binary);
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();

        await Store.AppendAsync("b", new AppendRequest { ContentType = Binary, Body = bytes }, Ct);

        Assert.Equal(bytes, BytesOf(await ReadFromStartAsync("b")));
    }

    [Fact]
    public async Task Read_from_an_offset_returns_the_rest()
    {
        await CreatedAsync("s", body: "hello");
        await AppendedAsync("s", " world");

        var read = await ReadAsync("s", 3);

        Assert.Equal("lo world", TextOf(read));
        Assert.Equal(At(3), read.Start);
        Assert.Equal(At(11), read.Next);
        Assert.True(read.UpToDate);
    }

    [Fact]
    public async Task Read_from_the_tail_returns_nothing_and_is_up_to_date()
    {
        await CreatedAsync("s", body: "abc");

        var read = await ReadAsync("s", 3);

        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Empty(read.Chunks);
        Assert.Equal(0, read.Length);
        Assert.Equal(At(3), read.Start);
        Assert.Equal(At(3), read.Next);
        Assert.True(read.UpToDate);
    }

    [Fact]
    public async Task Read_of_an_empty_stream_is_empty_and_up_to_date()
    {
        await CreatedAsync("s");

        var read = await ReadFromStartAsync("s");

        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Empty(read.Chunks);
        Assert.Equal(StreamOffset.Zero, read.Next);
        Assert.True(read.UpToDate);
        Assert.False(read.Closed);
    }

    [Fact]
    public async Task Read_now_returns_no_data_and_the_tail()
    {
        await CreatedAsync("s", body: "abc");

        var read = await ReadAsync("s", OffsetQuery.Now);

        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Empty(read.Chunks);
        Assert.Equal(At(3), read.Start);
        Assert.Equal(At(3), read.Next);
        Assert.True(read.UpToDate);
        Assert.False(read.Closed);
    }

    [Fact]
    public async Task Read_now_of_a_closed_stream_reports_closure()
    {
        await CreatedAsync("s", body: "abc", closed: true);

        var read = await ReadAsync("s", OffsetQuery.Now);

        Assert.Equal(At(3), read.Next);
        Assert.True(read.Closed);
    }

    [Fact]
    public async Task Read_beyond_the_tail_is_refused()
    {
        await CreatedAsync("s", body: "abc");

        Assert.Equal(ReadStatus.OffsetBeyondTail, (await ReadAsync("s", 4)).Status);
        Assert.Equal(ReadStatus.OffsetBeyondTail, (await ReadAsync("s", StreamOffset.MaxPosition)).Status);
    }

    [Fact]
    public async Task Operations_on_a_missing_stream_are_NotFound()
    {
        Assert.Equal(ReadStatus.NotFound, (await ReadFromStartAsync("missing")).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("missing"));
        Assert.Equal(AppendStatus.NotFound, (await AppendAsync("missing", "x")).Status);
        Assert.Equal(AppendStatus.NotFound, (await AppendAsync("missing", null, close: true)).Status);
        Assert.Equal(DeleteStatus.NotFound, await DeleteAsync("missing"));
    }

    [Fact]
    public async Task Binary_reads_are_split_at_max_bytes_anywhere()
    {
        await CreatedAsync("s", body: "hello");
        await AppendedAsync("s", "world");
        await AppendedAsync("s", "!");

        var first = await ReadFromStartAsync("s", maxBytes: 3);
        var spanning = await ReadAsync("s", 3, maxBytes: 4);

        Assert.Equal("hel", TextOf(first));
        Assert.Equal(At(3), first.Next);
        Assert.False(first.UpToDate);
        Assert.Equal("lowo", TextOf(spanning));
        Assert.Equal(At(7), spanning.Next);
        Assert.False(spanning.UpToDate);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(7)]
    public async Task Binary_reads_in_small_pieces_reassemble_the_stream(int maxBytes)
    {
        await CreatedAsync("s", body: "hello");
        await AppendedAsync("s", "world");
        await AppendedAsync("s", "!");
        var text = "";
        var position = 0L;

        while (true)
        {
            var read = await ReadAsync("s", position, maxBytes);
            Assert.InRange(read.Length, 1, maxBytes);
            Assert.Equal(At(position), read.Start);
            text += TextOf(read);
            position = read.Next.Position;
            Assert.Equal(position == 11, read.UpToDate);
            if (read.UpToDate)
            {
                break;
            }
        }

        Assert.Equal("helloworld!", text);
    }

    [Fact]
    public async Task Closed_is_reported_only_by_the_read_that_reaches_the_tail()
    {
        await CreatedAsync("s", body: "abcdef", closed: true);

        var first = await ReadFromStartAsync("s", maxBytes: 4);
        var last = await ReadAsync("s", first.Next.Position, maxBytes: 4);

        Assert.Equal("abcd", TextOf(first));
        Assert.False(first.UpToDate);
        Assert.False(first.Closed);
        Assert.Equal("ef", TextOf(last));
        Assert.True(last.UpToDate);
        Assert.True(last.Closed);
    }

    [Fact]
    public async Task Metadata_reports_tail_and_closure()
    {
        await CreatedAsync("s", TextPlain, body: "abc");
        await AppendedAsync("s", "de", close: true);

        var info = await InfoAsync("s");

        Assert.Equal(At(5), info.Tail);
        Assert.True(info.Closed);
        Assert.Equal(TextPlain, info.ContentType);
    }

    [Fact]
    public async Task Append_validates_the_request_shape()
    {
        await CreatedAsync("s", TextPlain, body: "abc");

        Assert.Equal(AppendStatus.EmptyBody, (await AppendAsync("s", null)).Status);
        Assert.Equal(AppendStatus.EmptyBody, (await AppendAsync("s", "")).Status);
        Assert.Equal(AppendStatus.MissingContentType, (await AppendAsync("s", "x", contentType: null)).Status);
        var mismatch = await AppendAsync("s", "x", contentType: Json);
        Assert.Equal(AppendStatus.ContentTypeMismatch, mismatch.Status);
        Assert.Equal("abc", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Append_accepts_the_content_type_in_any_case_with_parameters()
    {
        await CreatedAsync("s", TextPlain);

        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "x", contentType: "TEXT/plain; charset=utf-8")).Status);
    }

    [Fact]
    public async Task Json_appends_store_messages_and_reads_return_them()
    {
        await CreatedAsync("j", Json);

        Assert.Equal(At(16), (await AppendedAsync("j", """[{"a":1},{"b":2}]""", Json)).NextOffset);
        Assert.Equal(At(24), (await AppendedAsync("j", """{"c":3}""", Json)).NextOffset);
        Assert.Equal(At(30), (await AppendedAsync("j", """[[1,2]]""", Json)).NextOffset);

        Assert.Equal("""[{"a":1},{"b":2},{"c":3},[1,2]]""", await ReadJsonAsync("j"));
        Assert.Equal("""[{"c":3},[1,2]]""", await ReadJsonAsync("j", 16));
    }

    [Fact]
    public async Task Json_reads_return_whole_messages_and_at_least_one()
    {
        await CreatedAsync("j", Json, body: """[{"a":1},{"bb":22},{"c":3}]""");

        var tiny = await ReadFromStartAsync("j", maxBytes: 1);
        var two = await ReadFromStartAsync("j", maxBytes: 18);
        var almostTwo = await ReadFromStartAsync("j", maxBytes: 17);

        Assert.Equal("""[{"a":1}]""", JsonOf(tiny));
        Assert.Equal(At(8), tiny.Next);
        Assert.False(tiny.UpToDate);
        Assert.Equal("""[{"a":1},{"bb":22}]""", JsonOf(two));
        Assert.Equal(At(18), two.Next);
        Assert.Equal("""[{"a":1}]""", JsonOf(almostTwo));
    }

    [Fact]
    public async Task Json_reads_in_small_pieces_visit_every_message_once()
    {
        await CreatedAsync("j", Json, body: """[{"a":1},{"bb":22},{"c":3},{"dddd":4444}]""");
        var messages = new List<string>();
        var position = 0L;

        while (true)
        {
            var read = await ReadAsync("j", position, maxBytes: 10);
            messages.Add(JsonOf(read));
            position = read.Next.Position;
            if (read.UpToDate)
            {
                break;
            }
        }

        Assert.Equal(["""[{"a":1}]""", """[{"bb":22}]""", """[{"c":3}]""", """[{"dddd":4444}]"""], messages);
    }

    [Fact]
    public async Task Json_reads_inside_a_message_are_refused()
    {
        await CreatedAsync("j", Json, body: """[{"a":1},{"b":2}]""");

        Assert.Equal(ReadStatus.OffsetUnaligned, (await ReadAsync("j", 1)).Status);
        Assert.Equal(ReadStatus.OffsetUnaligned, (await ReadAsync("j", 9)).Status);
        Assert.Equal(ReadStatus.Ok, (await ReadAsync("j", 8)).Status);
        Assert.Equal(ReadStatus.Ok, (await ReadAsync("j", 16)).Status);
    }

    [Fact]
    public async Task Json_appends_are_validated()
    {
        await CreatedAsync("j", Json, body: """{"a":1}""");

        Assert.Equal(AppendStatus.InvalidJson, (await AppendAsync("j", "{nope", Json)).Status);
        Assert.Equal(AppendStatus.InvalidJson, (await AppendAsync("j", "{} {}", Json)).Status);
        Assert.Equal(AppendStatus.EmptyJsonArray, (await AppendAsync("j", "[]", Json)).Status);
        Assert.Equal(AppendStatus.JsonTooDeep, (await AppendAsync("j", new string('[', 1000) + new string(']', 1000), Json)).Status);
        Assert.Equal(At(8), (await InfoAsync("j")).Tail);
        Assert.Equal("""[{"a":1}]""", await ReadJsonAsync("j"));
    }

    [Fact]
    public async Task Text_streams_do_not_validate_json()
    {
        await CreatedAsync("s", TextPlain);

        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "{nope")).Status);
    }

    // Append sizes around the places a store may cut its storage (small, 64 B, 4 KiB, 64 KiB, larger than 64 KiB), so
    // reads cross every kind of internal boundary.
    private static readonly int[] MixedAppendSizes = [1, 63, 64, 65, 100, 4096, 65_535, 65_536, 65_537, 200_000, 3, 70_000, 1];

    [Theory]
    [InlineData(1_000)]
    [InlineData(65_536)]
    [InlineData(100_000)]
    [InlineData(Unlimited)]
    public async Task Binary_reads_return_exactly_the_appended_bytes_across_appends_of_every_size(int maxBytes)
    {
        await CreatedAsync("s", Binary);
        var random = new Random(maxBytes);
        var expected = new List<byte>();
        foreach (var size in MixedAppendSizes)
        {
            var bytes = new byte[size];
            random.NextBytes(bytes);
            Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("s", bytes, Binary)).Status);
            expected.AddRange(bytes);
        }
        var pieces = await ReadPiecesAsync("s", maxBytes, maxReads: expected.Count);

        Assert.All(pieces, read => Assert.InRange(read.Length, 1, maxBytes));
        Assert.Equal(At(expected.Count), pieces[^1].Next);
        var actual = pieces.SelectMany(BytesOf).ToList();
        Assert.Equal(expected.Count, actual.Count);
        Assert.True(expected.SequenceEqual(actual), "the bytes read back differ from the bytes appended");
        foreach (var start in new[] { 1, 64, 128, 65_535, 65_600, 131_072, 300_000, expected.Count - 1 })
        {
            var read = await ReadAsync("s", start, 70_000);
            var bytes = BytesOf(read);
            Assert.InRange(bytes.Length, 1, 70_000);
            Assert.True(expected.Skip(start).Take(bytes.Length).SequenceEqual(bytes), $"the read from {start} differs from the bytes appended");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(50)]
    [InlineData(70_000)]
    [InlineData(200_000)]
    [InlineData(Unlimited)]
    public async Task Json_reads_under_any_budget_return_whole_messages_in_order_across_small_and_large_ones(int maxBytes)
    {
        await CreatedAsync("j", Json);
        var expected = new List<string>();
        foreach (var (posts, size) in new[] { (3, 10), (1, 70_000), (2, 60), (1, 140_000), (4, 1), (1, 65_530) })
        {
            for (var post = 0; post < posts; post++)
            {
                // A POST of one to three messages of about `size` bytes.
                var batch = Enumerable.Range(0, 1 + (post % 3))
                    .Select(m => $$"""{"i":{{expected.Count + m}},"p":"{{new string((char)('a' + (m % 26)), size)}}"}""").ToList();
                Assert.Equal(AppendStatus.Appended, (await AppendAsync("j", "[" + string.Join(",", batch) + "]", Json)).Status);
                expected.AddRange(batch);
            }
        }
        var pieces = await ReadPiecesAsync("j", maxBytes, maxReads: expected.Count);

        var actual = new List<string>();
        foreach (var read in pieces)
        {
            using var array = System.Text.Json.JsonDocument.Parse(JsonOf(read));
            var messages = array.RootElement.EnumerateArray().Select(m => m.GetRawText()).ToList();
            Assert.NotEmpty(messages);
            if (messages.Count > 1)
            {
                Assert.InRange(read.Length, 1, maxBytes);
            }
            actual.AddRange(messages);
        }
        Assert.Equal(expected, actual);
    }

    /// <summary>Reads from the start, following each read's next offset, until a read is up to date; every read must succeed.</summary>
    private async Task<List<ReadResult>> ReadPiecesAsync(string name, int maxBytes, int maxReads)
    {
        var pieces = new List<ReadResult>();
        var position = 0L;
        while (pieces.Count == 0 || !pieces[^1].UpToDate)
        {
            Assert.True(pieces.Count < maxReads, $"{maxReads} reads did not reach the tail");
            var read = await ReadAsync(name, position, maxBytes);
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.Equal(At(position), read.Start);
            pieces.Add(read);
            position = read.Next.Position;
        }
        return pieces;
    }
}
