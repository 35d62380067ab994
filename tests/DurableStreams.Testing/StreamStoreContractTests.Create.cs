using DurableStreams.Protocol;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

public abstract partial class StreamStoreContractTests
{
    [Fact]
    public async Task Create_returns_Created_with_the_stream_info()
    {
        Time.Advance(TimeSpan.FromMinutes(3));

        var info = await CreatedAsync("s", TextPlain, ttl: 60);

        Assert.Equal("s", info.Name);
        Assert.Equal(TextPlain, info.ContentType);
        Assert.Equal(StreamOffset.Zero, info.Tail);
        Assert.False(info.Closed);
        Assert.Equal(60, info.TtlSeconds);
        Assert.Null(info.ExpiresAt);
        Assert.Equal(StartTime.AddMinutes(3), info.CreatedAt);
        Assert.Equal(info, await InfoAsync("s"));
    }

    [Fact]
    public async Task Create_without_a_content_type_defaults_to_octet_stream()
    {
        var info = await CreatedAsync("s", contentType: null);

        Assert.Equal(ContentTypes.Default, info.ContentType);
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("s", Binary)).Status);
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("s", contentType: null)).Status);
    }

    [Fact]
    public async Task Create_again_with_the_same_configuration_is_AlreadyExists()
    {
        var expiresAt = StartTime.AddHours(1);
        var created = await CreatedAsync("s", TextPlain, expiresAt: expiresAt);
        await AppendedAsync("s", "abc");

        var again = await CreateAsync("s", TextPlain, expiresAt: expiresAt);

        Assert.Equal(CreateStatus.AlreadyExists, again.Status);
        Assert.NotNull(again.Info);
        Assert.Equal(At(3), again.Info.Tail);
        Assert.Equal(created.Incarnation, again.Info.Incarnation);
        Assert.Equal("abc", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Create_again_compares_content_types_case_insensitively()
    {
        await CreatedAsync("s", "text/plain");

        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("s", "TEXT/PLAIN")).Status);
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("s", "Text/Plain")).Status);
    }

    [Theory]
    [InlineData("content-type")]
    [InlineData("ttl")]
    [InlineData("ttl-added")]
    [InlineData("ttl-removed")]
    [InlineData("expires-at")]
    [InlineData("ttl-instead-of-expires-at")]
    [InlineData("closed")]
    [InlineData("fork")]
    public async Task Create_again_with_a_different_configuration_is_a_conflict(string difference)
    {
        await CreatedAsync("src", TextPlain);
        var expiresAt = StartTime.AddHours(1);
        var (first, second) = difference switch
        {
            "content-type" => (await CreateAsync("s", TextPlain), await CreateAsync("s", Json)),
            "ttl" => (await CreateAsync("s", ttl: 60), await CreateAsync("s", ttl: 61)),
            "ttl-added" => (await CreateAsync("s"), await CreateAsync("s", ttl: 60)),
            "ttl-removed" => (await CreateAsync("s", ttl: 60), await CreateAsync("s")),
            "expires-at" => (await CreateAsync("s", expiresAt: expiresAt), await CreateAsync("s", expiresAt: expiresAt.AddSeconds(1))),
            "ttl-instead-of-expires-at" => (await CreateAsync("s", expiresAt: expiresAt), await CreateAsync("s", ttl: 3600)),
            "closed" => (await CreateAsync("s"), await CreateAsync("s", closed: true)),
            "fork" => (await CreateAsync("s"), await CreateAsync("s", fork: ForkOf("src"))),
            _ => throw new ArgumentOutOfRangeException(nameof(difference)),
        };

        Assert.Equal(CreateStatus.Created, first.Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, second.Status);
        Assert.Equal(first.Info, await InfoAsync("s"));
    }

    [Fact]
    public async Task Create_again_without_closed_conflicts_with_a_stream_closed_since()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", null, close: true);

        // §5.1: the request's Stream-Closed is compared with the stream's *current* closure status.
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("s")).Status);
    }

    [Fact]
    public async Task Create_again_with_closed_matches_a_stream_closed_since()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "x", close: true);

        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("s", closed: true)).Status);
    }

    [Fact]
    public async Task Create_closed_again_with_closed_is_AlreadyExists()
    {
        await CreatedAsync("s", closed: true);

        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("s", closed: true)).Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("s")).Status);
    }

    [Fact]
    public async Task Create_with_a_body_stores_it_as_the_first_content()
    {
        var info = await CreatedAsync("s", TextPlain, body: "hello");

        Assert.Equal(At(5), info.Tail);
        Assert.Equal("hello", await ReadTextAsync("s"));
        Assert.Equal(At(8), (await AppendedAsync("s", "abc")).NextOffset);
        Assert.Equal("helloabc", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Create_closed_with_a_body_makes_it_the_complete_content()
    {
        var info = await CreatedAsync("s", TextPlain, body: "final", closed: true);

        Assert.True(info.Closed);
        Assert.Equal(At(5), info.Tail);
        var read = await ReadFromStartAsync("s");
        Assert.Equal("final", TextOf(read));
        Assert.True(read.UpToDate);
        Assert.True(read.Closed);
        var append = await AppendAsync("s", "more");
        Assert.Equal(AppendStatus.StreamClosed, append.Status);
        Assert.Equal(At(5), append.NextOffset);
        Assert.True(append.Closed);
    }

    [Fact]
    public async Task Create_closed_without_a_body_is_an_empty_finished_stream()
    {
        await CreatedAsync("s", closed: true);

        var read = await ReadFromStartAsync("s");

        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Empty(read.Chunks);
        Assert.Equal(StreamOffset.Zero, read.Next);
        Assert.True(read.UpToDate);
        Assert.True(read.Closed);
        Assert.Equal(AppendStatus.AlreadyClosed, (await AppendAsync("s", null, close: true)).Status);
    }

    [Fact]
    public async Task Create_of_a_json_stream_flattens_an_array_body()
    {
        var info = await CreatedAsync("j", Json, body: """[{"a":1}, {"b":2}]""");

        Assert.Equal(At(16), info.Tail);
        Assert.Equal("""[{"a":1},{"b":2}]""", await ReadJsonAsync("j"));
    }

    [Fact]
    public async Task Create_of_a_json_stream_with_an_empty_array_creates_an_empty_stream()
    {
        var info = await CreatedAsync("j", Json, body: "[]");

        Assert.Equal(StreamOffset.Zero, info.Tail);
        Assert.Equal("[]", await ReadJsonAsync("j"));
    }

    [Fact]
    public async Task Create_of_a_json_stream_with_invalid_json_creates_nothing()
    {
        Assert.Equal(CreateStatus.InvalidJson, (await CreateAsync("j", Json, body: "{nope")).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("j"));
        Assert.Equal(CreateStatus.Created, (await CreateAsync("j", Json)).Status);
    }

    [Fact]
    public async Task Create_of_a_json_stream_nested_too_deeply_creates_nothing()
    {
        var body = new string('[', 1000) + new string(']', 1000);

        Assert.Equal(CreateStatus.JsonTooDeep, (await CreateAsync("j", Json, body: body)).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("j"));
    }

    [Fact]
    public async Task Create_after_delete_starts_a_new_incarnation()
    {
        var first = await CreatedAsync("s", body: "old");
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("s"));

        var second = await CreatedAsync("s", body: "n");

        Assert.NotEqual(first.Incarnation, second.Incarnation);
        Assert.Equal("n", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Names_are_case_sensitive()
    {
        await CreatedAsync("s", body: "lower");

        await CreatedAsync("S", body: "UPPER");

        Assert.Equal("lower", await ReadTextAsync("s"));
        Assert.Equal("UPPER", await ReadTextAsync("S"));
    }

    [Fact]
    public async Task The_store_keeps_its_own_copy_of_request_bodies()
    {
        var createBody = Bytes("abc");
        var appendBody = Bytes("def");
        await Store.CreateAsync("s", new CreateStreamRequest { ContentType = TextPlain, Body = createBody }, Ct);
        await Store.AppendAsync("s", new AppendRequest { ContentType = TextPlain, Body = appendBody }, Ct);

        createBody.AsSpan().Fill((byte)'X');
        appendBody.AsSpan().Fill((byte)'Y');

        Assert.Equal("abcdef", await ReadTextAsync("s"));
    }
}
