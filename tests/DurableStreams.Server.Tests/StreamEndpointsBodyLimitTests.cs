using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>A server whose appends are limited to 1 KiB.</summary>
public sealed class SmallBodyLimitFixture : ServerFixture
{
    public const int Limit = 1024;

    protected override void Configure(DurableStreamServerOptions options) => options.MaxAppendBytes = Limit;
}

/// <summary>MaxAppendBytes: 413 before anything is stored, with or without Content-Length.</summary>
public sealed class StreamEndpointsBodyLimitTests(SmallBodyLimitFixture fixture) : IClassFixture<SmallBodyLimitFixture>
{
    private const int Limit = SmallBodyLimitFixture.Limit;

    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<bool> Chunking => [false, true];

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task An_append_over_the_limit_answers_413_and_leaves_the_stream_unchanged(bool chunked)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "before", Ct);

        var content = Content(new string('x', 4 * Limit), chunked);
        Assert.Equal(chunked, content.Headers.ContentLength is null);

        using var response = await _server.SendAsync(HttpMethod.Post, name, content, Ct);

        await Http.ErrorAsync(response, HttpStatusCode.RequestEntityTooLarge);
        var (body, next) = await _server.ReadAllAsync(name, Ct);
        Assert.Equal("before", body);
        Assert.Equal(Http.Offset(6), next);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task An_append_one_byte_over_the_limit_answers_413(bool chunked)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", null, Ct);

        using var response = await _server.SendAsync(HttpMethod.Post, name, Content(new string('x', Limit + 1), chunked), Ct);

        await Http.ErrorAsync(response, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(string.Empty, (await _server.ReadAllAsync(name, Ct)).Body);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task An_append_of_exactly_the_limit_is_accepted(bool chunked)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", null, Ct);

        using var response = await _server.SendAsync(HttpMethod.Post, name, Content(new string('x', Limit), chunked), Ct);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(Http.Offset(Limit), Http.Header(response, "Stream-Next-Offset"));
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task A_create_with_an_initial_body_over_the_limit_answers_413_and_creates_nothing(bool chunked)
    {
        var name = ServerHarness.NewName();

        using var response = await _server.SendAsync(HttpMethod.Put, name, Content(new string('x', 4 * Limit), chunked), Ct);

        await Http.ErrorAsync(response, HttpStatusCode.RequestEntityTooLarge);
        using var head = await _server.SendAsync(HttpMethod.Head, name, null, Ct);
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task A_413_states_the_limit_and_the_option_that_raises_it(bool chunked)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", null, Ct);

        using var append = await _server.SendAsync(HttpMethod.Post, name, Content(new string('x', 4 * Limit), chunked), Ct);
        using var create = await _server.SendAsync(HttpMethod.Put, ServerHarness.NewName(), Content(new string('x', 4 * Limit), chunked), Ct);

        foreach (var response in new[] { append, create })
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            Assert.Equal(
                "The request body exceeds the limit of 1024 bytes (MaxAppendBytes, serve --max-append-bytes); send the data in smaller appends.",
                (await response.Content.ReadAsStringAsync(Ct)).Trim());
        }
    }

    [Fact]
    public async Task The_server_keeps_answering_on_new_requests_after_a_413()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", null, Ct);
        using (var tooLarge = await _server.SendAsync(HttpMethod.Post, name, Content(new string('x', 64 * Limit), chunked: true), Ct))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        }

        var next = await _server.AppendAsync(name, "text/plain", "ok", Ct);

        Assert.Equal(Http.Offset(2), next);
    }

    private static HttpContent Content(string text, bool chunked) =>
        chunked ? new ChunkedContent(System.Text.Encoding.UTF8.GetBytes(text), "text/plain") : ServerHarness.Body("text/plain", text)!;
}
