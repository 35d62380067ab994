using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>PUT: every create outcome mapped to its status and headers, forks included.</summary>
public sealed class StreamEndpointsCreateTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_new_stream_answers_201_with_an_absolute_Location_its_content_type_and_tail()
    {
        var name = ServerHarness.NewName();

        using var response = await _server.PutAsync(name, "text/plain", "hello", Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.NotNull(response.Headers.Location);
        Assert.True(response.Headers.Location.IsAbsoluteUri, $"Location '{response.Headers.Location}' is not absolute.");
        Assert.Equal(_server.Url(name), response.Headers.Location);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Http.Offset(5), Http.Header(response, "Stream-Next-Offset"));
        Assert.Null(Http.Header(response, "Stream-Closed"));
        Http.SecurityHeaders(response);
    }

    [Theory]
    [InlineData("/orders/2025")]
    [InlineData("/with space")]
    [InlineData("/caf\u00e9")]
    public async Task A_nested_or_escaped_name_gets_a_Location_with_its_full_escaped_path(string suffix)
    {
        var name = ServerHarness.NewName("tenant") + suffix;

        using var response = await _server.PutAsync(name, "application/json", null, Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(_server.Url(name), response.Headers.Location);
    }

    [Fact]
    public async Task The_same_PUT_again_answers_200_with_the_current_tail_and_no_Location()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", null, Ct);
        await _server.AppendAsync(name, "text/plain", "abc", Ct);

        using var response = await _server.PutAsync(name, "text/plain", null, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Equal(Http.Offset(3), Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_PUT_with_a_different_content_type_answers_409()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", null, Ct);

        using var response = await _server.PutAsync(name, "application/json", null, Ct);

        await Http.ErrorAsync(response, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_PUT_without_Stream_Closed_on_a_closed_stream_answers_409()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", null, Ct, ("Stream-Closed", "true"));

        using var response = await _server.PutAsync(name, "text/plain", null, Ct);

        await Http.ErrorAsync(response, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_stream_created_closed_reports_Stream_Closed_on_201_and_on_the_idempotent_200()
    {
        var name = ServerHarness.NewName();

        using var created = await _server.PutAsync(name, "text/plain", "final", Ct, ("Stream-Closed", "true"));
        using var again = await _server.PutAsync(name, "text/plain", "final", Ct, ("Stream-Closed", "true"));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("true", Http.Header(created, "Stream-Closed"));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("true", Http.Header(again, "Stream-Closed"));
        Assert.Equal(Http.Offset(5), Http.Header(again, "Stream-Next-Offset"));
    }

    [Theory]
    [InlineData("text")]
    [InlineData("text/plain/extra")]
    [InlineData("/plain")]
    public async Task An_invalid_Content_Type_answers_400(string contentType)
    {
        var name = ServerHarness.NewName();
        using var request = ServerHarness.Request(HttpMethod.Put, name, new ByteArrayContent([]));
        Assert.True(request.Content!.Headers.TryAddWithoutValidation("Content-Type", contentType));

        using var response = await _server.SendAsync(request, Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertMissingAsync(name);
    }

    [Fact]
    public async Task Invalid_JSON_in_the_initial_body_answers_400_and_creates_nothing()
    {
        var name = ServerHarness.NewName();

        using var response = await _server.PutAsync(name, "application/json", "{\"a\":", Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertMissingAsync(name);
    }

    [Fact]
    public async Task JSON_nested_far_deeper_than_64_levels_in_the_initial_body_answers_400_not_500()
    {
        var name = ServerHarness.NewName();

        using var response = await _server.PutAsync(name, "application/json", new string('[', 100_000), Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertMissingAsync(name);
    }

    [Theory]
    [InlineData("__ds")]
    [InlineData("__ds/subscriptions/x")]
    public async Task The_reserved_ds_path_is_never_a_stream(string name)
    {
        using var put = await _server.PutAsync(name, "text/plain", "x", Ct);
        using var get = await _server.GetAsync(name, Ct);

        await Http.ErrorAsync(put, HttpStatusCode.NotFound);
        await Http.ErrorAsync(get, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_name_that_only_starts_like_the_reserved_path_is_an_ordinary_stream()
    {
        var name = "__dsx-" + Guid.NewGuid().ToString("N");

        using var response = await _server.PutAsync(name, "text/plain", null, Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Fact]
    public async Task A_fork_answers_201_inherits_the_content_type_and_starts_at_the_source_tail()
    {
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(source, "text/plain", "abcdef", Ct);

        using var response = await _server.PutAsync(fork, null, null, Ct, ("Stream-Forked-From", ForkSource(source)));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(_server.Url(fork), response.Headers.Location);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(Http.Offset(6), Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal("abcdef", (await _server.ReadAllAsync(fork, Ct)).Body);
    }

    [Fact]
    public async Task A_fork_source_may_be_given_as_an_absolute_URL_of_this_server()
    {
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);

        using var response = await _server.PutAsync(fork, null, null, Ct, ("Stream-Forked-From", _server.Url(source).ToString()));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Theory]
    [InlineData("with space")]
    [InlineData("caf\u00e9")]
    [InlineData("a+b=c&d")]
    public async Task A_fork_source_given_as_a_percent_encoded_path_is_found(string sourceName)
    {
        var source = ServerHarness.NewName("src") + "/" + sourceName;
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);
        var encodedPath = _server.Url(source).AbsolutePath;

        using var response = await _server.PutAsync(fork, null, null, Ct, ("Stream-Forked-From", encodedPath));

        Assert.True(HttpStatusCode.Created == response.StatusCode,
            $"Forking from '{encodedPath}' answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(Ct)}");
        Assert.Equal("abc", (await _server.ReadAllAsync(fork, Ct)).Body);
    }

    [Fact]
    public async Task A_JSON_stream_created_with_an_empty_array_is_empty()
    {
        var name = ServerHarness.NewName();

        using var response = await _server.PutAsync(name, "application/json", "[]", Ct);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(Http.Offset(0), Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal("[]", (await _server.ReadAllAsync(name, Ct)).Body);
    }

    [Fact]
    public async Task A_fork_of_a_missing_source_answers_404()
    {
        using var response = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct, ("Stream-Forked-From", ForkSource(ServerHarness.NewName("missing"))));

        await Http.ErrorAsync(response, HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("/elsewhere/stream")]
    [InlineData("relative-name")]
    [InlineData("/v1/stream/")]
    [InlineData("/v1/stream/__ds")]
    public async Task A_fork_source_outside_the_streams_mount_answers_400(string source)
    {
        using var response = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct, ("Stream-Forked-From", source));

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_fork_of_a_soft_deleted_source_answers_409_and_so_does_recreating_the_source()
    {
        var source = ServerHarness.NewName("src");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);
        using (var first = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct, ("Stream-Forked-From", ForkSource(source))))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }
        using (var delete = await _server.SendAsync(HttpMethod.Delete, source, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        using var fork = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct, ("Stream-Forked-From", ForkSource(source)));
        using var recreate = await _server.PutAsync(source, "text/plain", null, Ct);

        await Http.ErrorAsync(fork, HttpStatusCode.Conflict);
        await Http.ErrorAsync(recreate, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_fork_with_a_different_content_type_than_its_source_answers_409()
    {
        var source = ServerHarness.NewName("src");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);

        using var response = await _server.PutAsync(ServerHarness.NewName("fork"), "application/json", null, Ct, ("Stream-Forked-From", ForkSource(source)));

        await Http.ErrorAsync(response, HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_fork_offset_beyond_the_source_tail_answers_400()
    {
        var source = ServerHarness.NewName("src");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);

        using var response = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct,
            ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Offset", Http.Offset(4)));

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("now")]
    [InlineData("0000000000000000_000000000000000x")]
    [InlineData("0000000000000001_0000000000000000")]
    [InlineData("0000000000000000-0000000000000000")]
    [InlineData("0000000000000000_00000000000000000")]
    public async Task A_malformed_fork_offset_answers_400(string offset)
    {
        var source = ServerHarness.NewName("src");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);

        using var response = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct,
            ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Offset", offset));

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("01")]
    [InlineData("+1")]
    [InlineData("1.0")]
    [InlineData("x")]
    [InlineData("")]
    [InlineData("99999999999999999999")]
    public async Task A_malformed_fork_sub_offset_answers_400(string subOffset)
    {
        var source = ServerHarness.NewName("src");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);

        using var response = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct,
            ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Offset", Http.Offset(0)), ("Stream-Fork-Sub-Offset", subOffset));

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_sub_offset_without_a_fork_offset_answers_400()
    {
        var source = ServerHarness.NewName("src");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);

        using var response = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct,
            ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Sub-Offset", "1"));

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_sub_offset_of_zero_without_a_fork_offset_is_the_same_as_none()
    {
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);

        using var response = await _server.PutAsync(fork, null, null, Ct,
            ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Sub-Offset", "0"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(Http.Offset(3), Http.Header(response, "Stream-Next-Offset"));
    }

    [Theory]
    [InlineData("Stream-Fork-Offset", "0000000000000000_0000000000000000")]
    [InlineData("Stream-Fork-Sub-Offset", "1")]
    public async Task Fork_positioning_headers_without_Stream_Forked_From_answer_400(string header, string value)
    {
        var name = ServerHarness.NewName();

        using var response = await _server.PutAsync(name, "text/plain", null, Ct, (header, value));

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertMissingAsync(name);
    }

    [Fact]
    public async Task A_byte_sub_offset_inside_the_anchor_message_forks_there_and_one_past_it_answers_400()
    {
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);
        await _server.AppendAsync(source, "text/plain", "def", Ct);

        using var inside = await _server.PutAsync(fork, null, null, Ct,
            ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Offset", Http.Offset(0)), ("Stream-Fork-Sub-Offset", "2"));
        using var past = await _server.PutAsync(ServerHarness.NewName("fork"), null, null, Ct,
            ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Offset", Http.Offset(0)), ("Stream-Fork-Sub-Offset", "4"));

        Assert.Equal(HttpStatusCode.Created, inside.StatusCode);
        Assert.Equal(Http.Offset(2), Http.Header(inside, "Stream-Next-Offset"));
        Assert.Equal("ab", (await _server.ReadAllAsync(fork, Ct)).Body);
        await Http.ErrorAsync(past, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Repeating_a_fork_PUT_answers_200_and_a_different_fork_offset_answers_409()
    {
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(source, "text/plain", "abcdef", Ct);
        await _server.CreateAsync(fork, "text/plain", null, Ct, ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Offset", Http.Offset(3)));

        using var same = await _server.PutAsync(fork, null, null, Ct, ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Offset", Http.Offset(3)));
        using var different = await _server.PutAsync(fork, null, null, Ct, ("Stream-Forked-From", ForkSource(source)), ("Stream-Fork-Offset", Http.Offset(2)));

        Assert.Equal(HttpStatusCode.OK, same.StatusCode);
        await Http.ErrorAsync(different, HttpStatusCode.Conflict);
    }

    private string ForkSource(string name) => _server.Server.StreamsUrl.AbsolutePath + name;

    private async Task AssertMissingAsync(string name)
    {
        using var head = await _server.SendAsync(HttpMethod.Head, name, null, Ct);
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
    }
}
