using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>Cache-Control per response kind, ETags and conditional GETs.</summary>
public sealed class StreamEndpointsCachingTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string PublicCatchUp = "public, max-age=60, stale-while-revalidate=300";

    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_catch_up_read_is_publicly_cacheable_with_an_ETag()
    {
        var name = await NewStreamAsync("abc");

        using var response = await _server.GetAsync($"{name}?offset=-1", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(PublicCatchUp, Http.Header(response, "Cache-Control"));
        Assert.NotNull(response.Headers.ETag);
        Assert.False(response.Headers.ETag.IsWeak);
    }

    [Fact]
    public async Task With_PrivateCaching_a_catch_up_read_is_private()
    {
        await using var server = await ServerHarness.StartAsync(o => o.CachePolicy = CachePolicy.Private, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct);

        using var response = await server.GetAsync($"{name}?offset=-1", Ct);

        Assert.Equal("private, max-age=60, stale-while-revalidate=300", Http.Header(response, "Cache-Control"));
    }

    [Theory]
    [InlineData(CachePolicy.Auto, true, true)]
    [InlineData(CachePolicy.Auto, false, false)]
    [InlineData(CachePolicy.Private, true, true)]
    [InlineData(CachePolicy.Private, false, true)]
    [InlineData(CachePolicy.Public, true, false)]
    [InlineData(CachePolicy.Public, false, false)]
    public async Task The_cache_policy_decides_private_or_public_and_private_varies_by_Authorization(CachePolicy policy, bool tokens, bool isPrivate)
    {
        await using var server = await ServerHarness.StartAsync(o =>
        {
            o.CachePolicy = policy;
            o.Compression = true;
            o.CorsOrigins.Clear();
            o.CorsOrigins.Add("https://app.example");
            if (tokens)
            {
                o.ReadTokens.Add("reader");
                o.WriteTokens.Add("writer");
            }
        }, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        var auth = ("Authorization", "Bearer writer");
        var tail = await server.CreateAsync(name, "text/plain", "abc", Ct, auth);

        using var catchUp = await server.GetAsync($"{name}?offset=-1", Ct, auth, ("Accept-Encoding", "gzip"));
        using var notModified = await server.GetAsync($"{name}?offset=-1", Ct, auth, ("If-None-Match", catchUp.Headers.ETag!.ToString()));
        var longPollTask = server.GetAsync($"{name}?offset={tail}&live=long-poll", Ct, auth);
        await server.AppendAsync(name, "text/plain", "d", Ct, auth);
        using var longPoll = await longPollTask;

        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Equal(HttpStatusCode.OK, longPoll.StatusCode);
        foreach (var response in new[] { catchUp, notModified, longPoll })
        {
            var expected = isPrivate ? "private, max-age=60, stale-while-revalidate=300" : PublicCatchUp;
            Assert.Equal(expected, Http.Header(response, "Cache-Control"));
            var vary = Http.HeaderList(response, "Vary");
            Assert.Contains("Origin", vary);
            Assert.Equal(isPrivate, vary.Contains("Authorization"));
        }
        Assert.Contains("Accept-Encoding", Http.HeaderList(catchUp, "Vary"));
    }

    [Fact]
    public void An_undefined_cache_policy_is_refused_at_start_up()
    {
        var options = new DurableStreamsOptions { CachePolicy = (CachePolicy)7 };

        var error = Assert.Throws<ArgumentOutOfRangeException>(options.Validate);

        Assert.Equal(nameof(DurableStreamsOptions.CachePolicy), error.ParamName);
    }

    [Fact]
    public async Task HEAD_is_not_cacheable()
    {
        var name = await NewStreamAsync("abc");

        using var response = await _server.SendAsync(HttpMethod.Head, name, null, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", Http.Header(response, "Cache-Control"));
    }

    [Fact]
    public async Task A_read_at_offset_now_is_not_cacheable_and_has_no_ETag()
    {
        var name = await NewStreamAsync("abc");

        using var response = await _server.GetAsync($"{name}?offset=now", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", Http.Header(response, "Cache-Control"));
        Assert.Null(response.Headers.ETag);
        Assert.Equal(Http.Offset(3), Http.Header(response, "Stream-Next-Offset"));
        Assert.Empty(await response.Content.ReadAsByteArrayAsync(Ct));
    }

    [Fact]
    public async Task The_ETag_changes_after_an_append()
    {
        var name = await NewStreamAsync("abc");
        var before = await ETagAsync(name);

        await _server.AppendAsync(name, "text/plain", "d", Ct);

        Assert.NotEqual(before, await ETagAsync(name));
    }

    [Fact]
    public async Task The_ETag_changes_when_the_stream_closes_without_new_data()
    {
        var name = await NewStreamAsync("abc");
        var before = await ETagAsync(name);

        await _server.CloseAsync(name, Ct);

        var after = await ETagAsync(name);
        Assert.NotEqual(before, after);
        using var stale = await _server.GetAsync($"{name}?offset=-1", Ct, ("If-None-Match", before));
        Assert.Equal(HttpStatusCode.OK, stale.StatusCode);
        Assert.Equal("true", Http.Header(stale, "Stream-Closed"));
    }

    [Fact]
    public async Task The_ETag_differs_between_ranges_of_the_same_stream()
    {
        var name = await NewStreamAsync("abc");

        Assert.NotEqual(await ETagAsync(name), await ETagAsync(name, Http.Offset(1)));
    }

    [Fact]
    public async Task A_recreated_stream_with_the_same_data_gets_a_new_ETag()
    {
        var name = await NewStreamAsync("abc");
        var before = await ETagAsync(name);
        using (var delete = await _server.SendAsync(HttpMethod.Delete, name, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }
        await _server.CreateAsync(name, "text/plain", "abc", Ct);

        Assert.NotEqual(before, await ETagAsync(name));
    }

    [Fact]
    public async Task A_matching_If_None_Match_answers_304_without_a_body()
    {
        var name = await NewStreamAsync("abc");
        var etag = await ETagAsync(name);

        using var response = await _server.GetAsync($"{name}?offset=-1", Ct, ("If-None-Match", etag));

        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal(etag, response.Headers.ETag?.ToString());
        Assert.Equal(Http.Offset(3), Http.Header(response, "Stream-Next-Offset"));
        Http.SecurityHeaders(response);
    }

    [Fact]
    public async Task An_ETag_listed_among_others_in_If_None_Match_answers_304()
    {
        var name = await NewStreamAsync("abc");
        var etag = await ETagAsync(name);

        using var response = await _server.GetAsync($"{name}?offset=-1", Ct, ("If-None-Match", $"\"other\", {etag}"));

        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
    }

    [Fact]
    public async Task A_non_matching_If_None_Match_answers_200_with_the_data()
    {
        var name = await NewStreamAsync("abc");
        var etag = await ETagAsync(name);
        await _server.AppendAsync(name, "text/plain", "d", Ct);

        using var response = await _server.GetAsync($"{name}?offset=-1", Ct, ("If-None-Match", etag));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("abcd", await response.Content.ReadAsStringAsync(Ct));
    }

    private async Task<string> NewStreamAsync(string body)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", body, Ct);
        return name;
    }

    private async Task<string> ETagAsync(string name, string offset = "-1")
    {
        using var response = await _server.GetAsync($"{name}?offset={offset}", Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var etag = Http.Header(response, "ETag");
        Assert.NotNull(etag);
        return etag;
    }
}
