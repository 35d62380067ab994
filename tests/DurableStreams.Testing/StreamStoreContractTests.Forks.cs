using DurableStreams.Protocol;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

public abstract partial class StreamStoreContractTests
{
    [Fact]
    public async Task Fork_without_an_offset_starts_at_the_source_tail()
    {
        await CreatedAsync("src", body: "abc");

        var info = await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));

        Assert.Equal(At(3), info.Tail);
        Assert.Equal(TextPlain, info.ContentType);
        Assert.False(info.Closed);
        Assert.Equal("abc", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_at_an_explicit_offset_inherits_data_before_it()
    {
        await CreatedAsync("src", body: "abc");
        await AppendedAsync("src", "def");

        var info = await CreatedAsync("fork", fork: ForkOf("src", 3));

        Assert.Equal(At(3), info.Tail);
        Assert.Equal("abc", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_at_offset_zero_inherits_nothing()
    {
        await CreatedAsync("src", body: "abc");

        var info = await CreatedAsync("fork", fork: ForkOf("src", 0));
        await AppendedAsync("fork", "xy");

        Assert.Equal(StreamOffset.Zero, info.Tail);
        Assert.Equal("xy", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_of_an_empty_source_is_empty()
    {
        await CreatedAsync("src");

        var info = await CreatedAsync("fork", fork: ForkOf("src"));

        Assert.Equal(StreamOffset.Zero, info.Tail);
        Assert.Equal("", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_reads_stitch_source_and_own_data_in_one_read()
    {
        await CreatedAsync("src", body: "abc");
        await AppendedAsync("src", "def");
        await CreatedAsync("fork", fork: ForkOf("src", 6));

        await AppendedAsync("fork", "XYZ");
        var read = await ReadFromStartAsync("fork");

        Assert.Equal("abcdefXYZ", TextOf(read));
        Assert.Equal(At(9), read.Next);
        Assert.True(read.UpToDate);
        Assert.Equal("cdefX", TextOf(await ReadAsync("fork", 2, maxBytes: 5)));
        Assert.Equal("fXYZ", TextOf(await ReadAsync("fork", 5)));
        Assert.Equal("YZ", TextOf(await ReadAsync("fork", 7)));
    }

    [Fact]
    public async Task Fork_reads_in_small_pieces_cross_the_fork_point()
    {
        await CreatedAsync("src", body: "abcde");
        await CreatedAsync("fork", fork: ForkOf("src"));
        await AppendedAsync("fork", "fgh");
        var text = "";
        var position = 0L;

        while (true)
        {
            var read = await ReadAsync("fork", position, maxBytes: 3);
            Assert.InRange(read.Length, 1, 3);
            text += TextOf(read);
            position = read.Next.Position;
            if (read.UpToDate)
            {
                break;
            }
        }

        Assert.Equal("abcdefgh", text);
    }

    [Fact]
    public async Task Source_appends_after_the_fork_are_invisible_to_it()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("fork", fork: ForkOf("src"));

        await AppendedAsync("src", "SOURCE");
        await AppendedAsync("fork", "fork");

        Assert.Equal("abcfork", await ReadTextAsync("fork"));
        Assert.Equal("abcSOURCE", await ReadTextAsync("src"));
        Assert.Equal(At(7), (await InfoAsync("fork")).Tail);
    }

    [Fact]
    public async Task Fork_appends_are_invisible_to_the_source()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("fork", fork: ForkOf("src"));

        await AppendedAsync("fork", "fork");

        Assert.Equal("abc", await ReadTextAsync("src"));
        Assert.Equal(At(3), (await InfoAsync("src")).Tail);
    }

    [Fact]
    public async Task Fork_with_a_body_appends_it_after_the_inherited_data()
    {
        await CreatedAsync("src", body: "abc");

        var info = await CreatedAsync("fork", body: "XY", fork: ForkOf("src"));

        Assert.Equal(At(5), info.Tail);
        Assert.Equal("abcXY", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_at_a_binary_sub_offset_takes_part_of_a_message()
    {
        await CreatedAsync("src", body: "hello");

        var info = await CreatedAsync("fork", fork: ForkOf("src", 0, subOffset: 3));

        Assert.Equal(At(3), info.Tail);
        Assert.Equal("hel", await ReadTextAsync("fork"));
        await AppendedAsync("fork", "p!");
        Assert.Equal("help!", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_at_a_binary_sub_offset_equal_to_the_message_length_takes_it_all()
    {
        await CreatedAsync("src", body: "hello");
        await AppendedAsync("src", "world");

        await CreatedAsync("fork", fork: ForkOf("src", 0, subOffset: 5));

        Assert.Equal("hello", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_at_a_binary_sub_offset_anchored_mid_stream()
    {
        await CreatedAsync("src", body: "first");
        await AppendedAsync("src", "second");

        await CreatedAsync("fork", fork: ForkOf("src", 5, subOffset: 3));

        Assert.Equal("firstsec", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_sub_offset_in_inherited_data_stops_where_the_fork_begins()
    {
        // "mid" inherits "abcd" of the one append "abcdefghij" and adds "XY": in its view that append ends at 4.
        await CreatedAsync("src", body: "abcdefghij");
        await CreatedAsync("mid", fork: ForkOf("src", 4));
        await AppendedAsync("mid", "XY");

        Assert.Equal(CreateStatus.SubOffsetOutOfRange, (await CreateAsync("fork", fork: ForkOf("mid", 2, subOffset: 3))).Status);
        await CreatedAsync("fork", fork: ForkOf("mid", 2, subOffset: 2));
        Assert.Equal("abcd", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_sub_offset_with_a_body_appends_after_the_prefix()
    {
        await CreatedAsync("src", body: "hello");

        await CreatedAsync("fork", body: "XY", fork: ForkOf("src", 0, subOffset: 3));

        Assert.Equal("helXY", await ReadTextAsync("fork"));
    }

    [Theory]
    [InlineData(0, 6)]
    [InlineData(0, 3 + 5)]
    [InlineData(2, 4)]
    public async Task Fork_binary_sub_offset_past_the_next_data_boundary_is_refused(long offset, long subOffset)
    {
        await CreatedAsync("src", body: "hello");
        await AppendedAsync("src", "world");

        var result = await CreateAsync("fork", fork: ForkOf("src", offset, subOffset));

        Assert.Equal(CreateStatus.SubOffsetOutOfRange, result.Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork"));
    }

    [Fact]
    public async Task Fork_sub_offset_on_an_empty_source_is_refused()
    {
        await CreatedAsync("src");

        Assert.Equal(CreateStatus.SubOffsetOutOfRange, (await CreateAsync("fork", fork: ForkOf("src", 0, subOffset: 1))).Status);
    }

    [Fact]
    public async Task Fork_sub_offset_at_the_default_tail_is_refused()
    {
        await CreatedAsync("src", body: "abc");

        Assert.Equal(CreateStatus.SubOffsetOutOfRange, (await CreateAsync("fork", fork: ForkOf("src", subOffset: 1))).Status);
    }

    [Fact]
    public async Task Fork_at_a_json_sub_offset_takes_whole_messages()
    {
        await CreatedAsync("src", Json, body: """[{"a":1},{"b":2},{"c":3},{"d":4}]""");

        var two = await CreatedAsync("two", Json, fork: ForkOf("src", 0, subOffset: 2));
        var anchored = await CreatedAsync("anchored", Json, fork: ForkOf("src", 8, subOffset: 1));
        var all = await CreatedAsync("all", Json, fork: ForkOf("src", 0, subOffset: 4));

        Assert.Equal(At(16), two.Tail);
        Assert.Equal("""[{"a":1},{"b":2}]""", await ReadJsonAsync("two"));
        Assert.Equal("""[{"a":1},{"b":2}]""", await ReadJsonAsync("anchored"));
        Assert.Equal(At(32), all.Tail);
        Assert.Equal("""[{"a":1},{"b":2},{"c":3},{"d":4}]""", await ReadJsonAsync("all"));
        Assert.Equal(At(16), anchored.Tail);
    }

    [Fact]
    public async Task Fork_json_sub_offset_past_the_last_message_is_refused()
    {
        await CreatedAsync("src", Json, body: """[{"a":1},{"b":2},{"c":3}]""");

        Assert.Equal(CreateStatus.SubOffsetOutOfRange, (await CreateAsync("fork", Json, fork: ForkOf("src", 0, subOffset: 4))).Status);
        Assert.Equal(CreateStatus.SubOffsetOutOfRange, (await CreateAsync("fork", Json, fork: ForkOf("src", 16, subOffset: 2))).Status);
    }

    [Fact]
    public async Task Json_forks_stitch_whole_messages()
    {
        await CreatedAsync("src", Json, body: """[{"a":1},{"b":2}]""");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));

        await AppendedAsync("fork", """[{"c":3},{"d":4}]""", Json);

        Assert.Equal(Json, (await InfoAsync("fork")).ContentType);
        Assert.Equal("""[{"a":1},{"b":2},{"c":3},{"d":4}]""", await ReadJsonAsync("fork"));
        Assert.Equal("""[{"b":2},{"c":3}]""", await ReadJsonAsync("fork", 8, maxBytes: 16));
        Assert.Equal("""[{"a":1}]""", await ReadJsonAsync("fork", 0, maxBytes: 1));
        Assert.Equal(ReadStatus.OffsetUnaligned, (await ReadAsync("fork", 3)).Status);
        Assert.Equal(ReadStatus.OffsetUnaligned, (await ReadAsync("fork", 20)).Status);
    }

    [Fact]
    public async Task Fork_at_an_offset_inside_a_json_message_is_refused()
    {
        await CreatedAsync("src", Json, body: """[{"a":1},{"b":2}]""");

        Assert.Equal(CreateStatus.ForkOffsetUnaligned, (await CreateAsync("fork", Json, fork: ForkOf("src", 3))).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork"));
    }

    [Fact]
    public async Task Fork_with_an_invalid_json_body_is_refused()
    {
        await CreatedAsync("src", Json, body: """{"a":1}""");

        Assert.Equal(CreateStatus.InvalidJson, (await CreateAsync("fork", Json, body: "{nope", fork: ForkOf("src"))).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork"));
    }

    [Fact]
    public async Task Fork_beyond_the_source_tail_is_refused()
    {
        await CreatedAsync("src", body: "abc");

        Assert.Equal(CreateStatus.ForkOffsetBeyondTail, (await CreateAsync("fork", fork: ForkOf("src", 4))).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork"));
    }

    [Fact]
    public async Task Fork_content_type_must_match_the_source()
    {
        await CreatedAsync("src", TextPlain, body: "abc");

        Assert.Equal(CreateStatus.SourceContentTypeMismatch, (await CreateAsync("fork", Json, fork: ForkOf("src"))).Status);
        Assert.Equal(CreateStatus.SourceContentTypeMismatch, (await CreateAsync("fork2", Binary, fork: ForkOf("src"))).Status);
        Assert.Equal(TextPlain, (await CreatedAsync("fork3", "TEXT/PLAIN", fork: ForkOf("src"))).ContentType);
    }

    [Fact]
    public async Task Fork_of_a_missing_source_is_SourceNotFound()
    {
        Assert.Equal(CreateStatus.SourceNotFound, (await CreateAsync("fork", fork: ForkOf("missing"))).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork"));
    }

    [Fact]
    public async Task Fork_of_a_closed_source_starts_open()
    {
        await CreatedAsync("src", body: "abc", closed: true);

        var info = await CreatedAsync("fork", fork: ForkOf("src"));
        var read = await ReadFromStartAsync("fork");

        Assert.False(info.Closed);
        Assert.False(read.Closed);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("fork", "d")).Status);
        Assert.Equal("abcd", await ReadTextAsync("fork"));
        Assert.True((await InfoAsync("src")).Closed);
    }

    [Fact]
    public async Task Fork_does_not_inherit_producer_or_stream_seq_state()
    {
        await CreatedAsync("src");
        await AppendedAsync("src", "a", producer: Producer(3, 0));
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("src", "b", streamSeq: "5", producer: Producer(3, 1))).Status);
        await CreatedAsync("fork", fork: ForkOf("src"));

        var fresh = await AppendAsync("fork", "c", producer: Producer(0, 0));
        var seq = await AppendAsync("fork", "d", streamSeq: "1");

        Assert.Equal(AppendStatus.Appended, fresh.Status);
        Assert.Equal(AppendStatus.Appended, seq.Status);
        Assert.Equal("abcd", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Forks_of_forks_stitch_three_levels()
    {
        await CreatedAsync("l0", body: "abc");
        await CreatedAsync("l1", fork: ForkOf("l0"));
        await AppendedAsync("l1", "def");
        await CreatedAsync("l2", fork: ForkOf("l1"));
        await AppendedAsync("l2", "ghi");

        await AppendedAsync("l0", "000");
        await AppendedAsync("l1", "111");

        Assert.Equal("abcdefghi", await ReadTextAsync("l2"));
        Assert.Equal("abcdef111", await ReadTextAsync("l1"));
        Assert.Equal("abc000", await ReadTextAsync("l0"));
        Assert.Equal("bcdefgh", TextOf(await ReadAsync("l2", 1, maxBytes: 7)));
    }

    [Fact]
    public async Task Fork_of_a_fork_at_an_offset_inside_the_inherited_range()
    {
        await CreatedAsync("l0", body: "abc");
        await CreatedAsync("l1", fork: ForkOf("l0"));
        await AppendedAsync("l1", "def");

        await CreatedAsync("l2", fork: ForkOf("l1", 2));
        await AppendedAsync("l2", "Z");

        Assert.Equal("abZ", await ReadTextAsync("l2"));
    }

    [Fact]
    public async Task Sub_offsets_compose_across_chained_forks()
    {
        await CreatedAsync("l0", body: "abcdef");
        await CreatedAsync("l1", fork: ForkOf("l0", 0, subOffset: 4));
        Assert.Equal("abcd", await ReadTextAsync("l1"));

        await CreatedAsync("l2", fork: ForkOf("l1", 0, subOffset: 2));
        Assert.Equal("ab", await ReadTextAsync("l2"));

        await AppendedAsync("l2", "Z");
        Assert.Equal("abZ", await ReadTextAsync("l2"));
        Assert.Equal("abcd", await ReadTextAsync("l1"));
        Assert.Equal(CreateStatus.SubOffsetOutOfRange, (await CreateAsync("l3", fork: ForkOf("l1", 0, subOffset: 5))).Status);
    }

    [Fact]
    public async Task Fork_created_again_with_the_same_configuration_is_AlreadyExists()
    {
        await CreatedAsync("src", body: "hello");
        await CreatedAsync("fork", TextPlain, fork: ForkOf("src", 0, subOffset: 3));

        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("fork", TextPlain, fork: ForkOf("src", 0, subOffset: 3))).Status);
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("fork", contentType: null, fork: ForkOf("src", 0, subOffset: 3))).Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("fork", TextPlain, fork: ForkOf("src", 0, subOffset: 2))).Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("fork", TextPlain, fork: ForkOf("src", 1, subOffset: 2))).Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("fork", TextPlain)).Status);
        Assert.Equal("hel", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task Fork_sub_offset_zero_is_the_same_as_none()
    {
        await CreatedAsync("src", body: "data");
        await CreatedAsync("fork", fork: ForkOf("src", 0));

        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("fork", fork: ForkOf("src", 0, subOffset: 0))).Status);
    }

    [Fact]
    public async Task Fork_created_again_without_an_offset_matches()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("implicit", fork: ForkOf("src"));
        await CreatedAsync("explicit", fork: ForkOf("src", 3));
        await AppendedAsync("src", "def");

        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("implicit", fork: ForkOf("src"))).Status);
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("explicit", fork: ForkOf("src"))).Status);
        Assert.Equal("abc", await ReadTextAsync("implicit"));
    }

    [Fact]
    public async Task Fork_created_again_with_the_offset_an_omitted_offset_resolved_to_matches()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("fork", fork: ForkOf("src"));

        // Symmetric with the case above: the resolved divergence point is the fork's configuration.
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("fork", fork: ForkOf("src", 3))).Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("fork", fork: ForkOf("src", 2))).Status);
    }

    [Theory]
    [InlineData("none", "none", "none")]
    [InlineData("none", "ttl", "requested-ttl")]
    [InlineData("none", "expires-at", "requested-expires-at")]
    [InlineData("ttl", "none", "source-ttl")]
    [InlineData("ttl", "ttl", "requested-ttl")]
    [InlineData("ttl", "expires-at", "requested-expires-at")]
    [InlineData("expires-at", "none", "source-expires-at")]
    [InlineData("expires-at", "ttl", "requested-ttl")]
    [InlineData("expires-at", "expires-at", "requested-expires-at")]
    public async Task Fork_expiry_follows_the_inheritance_table(string source, string request, string expected)
    {
        const long sourceTtl = 600;
        const long requestedTtl = 300;
        var sourceExpiresAt = StartTime.AddHours(1);
        var requestedExpiresAt = StartTime.AddHours(2);
        await CreatedAsync(
            "src",
            body: "abc",
            ttl: source == "ttl" ? sourceTtl : null,
            expiresAt: source == "expires-at" ? sourceExpiresAt : null);

        var info = await CreatedAsync(
            "fork",
            fork: ForkOf("src"),
            ttl: request == "ttl" ? requestedTtl : null,
            expiresAt: request == "expires-at" ? requestedExpiresAt : null);

        (long? Ttl, DateTimeOffset? ExpiresAt) wanted = expected switch
        {
            "none" => (null, null),
            "requested-ttl" => (requestedTtl, null),
            "requested-expires-at" => (null, requestedExpiresAt),
            "source-ttl" => (sourceTtl, null),
            "source-expires-at" => (null, sourceExpiresAt),
            _ => throw new ArgumentOutOfRangeException(nameof(expected)),
        };
        Assert.Equal(wanted, (info.TtlSeconds, info.ExpiresAt));
        var metadata = await InfoAsync("fork");
        Assert.Equal(wanted, (metadata.TtlSeconds, metadata.ExpiresAt));
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync(
            "fork",
            fork: ForkOf("src"),
            ttl: request == "ttl" ? requestedTtl : null,
            expiresAt: request == "expires-at" ? requestedExpiresAt : null)).Status);
    }

    [Fact]
    public async Task Fork_with_an_inherited_ttl_slides_independently_of_its_source()
    {
        await CreatedAsync("src", body: "abc", ttl: 10);
        await CreatedAsync("fork", fork: ForkOf("src"));

        for (var i = 0; i < 3; i++)
        {
            Time.Advance(TimeSpan.FromSeconds(6));
            Assert.Equal("abc", await ReadTextAsync("fork"));
        }

        Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(ReadStatus.NotFound, (await ReadFromStartAsync("fork")).Status);
    }
}
