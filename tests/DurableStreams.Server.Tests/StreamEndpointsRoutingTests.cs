using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>Missing, deleted and soft-deleted streams, unsupported methods and malformed read parameters.</summary>
public sealed class StreamEndpointsRoutingTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> ReadWriteDeleteMethods => ["GET", "HEAD", "POST", "DELETE"];

    [Theory]
    [MemberData(nameof(ReadWriteDeleteMethods))]
    public async Task A_missing_stream_answers_404(string method)
    {
        using var response = await SendAsync(method, ServerHarness.NewName("missing"));

        await Http.ErrorAsync(response, HttpStatusCode.NotFound);
    }

    [Theory]
    [MemberData(nameof(ReadWriteDeleteMethods))]
    public async Task A_deleted_stream_without_forks_answers_404(string method)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "abc", Ct);
        using (var delete = await _server.SendAsync(HttpMethod.Delete, name, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
            Assert.Empty(await delete.Content.ReadAsByteArrayAsync(Ct));
        }

        using var response = await SendAsync(method, name);

        await Http.ErrorAsync(response, HttpStatusCode.NotFound);
    }

    [Theory]
    [MemberData(nameof(ReadWriteDeleteMethods))]
    public async Task A_soft_deleted_stream_answers_410_while_its_fork_still_reads_the_inherited_data(string method)
    {
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(source, "text/plain", "abc", Ct);
        await _server.CreateAsync(fork, "text/plain", null, Ct, ("Stream-Forked-From", _server.Server.StreamsUrl.AbsolutePath + source));
        using (var delete = await _server.SendAsync(HttpMethod.Delete, source, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        using var response = await SendAsync(method, source);

        await Http.ErrorAsync(response, HttpStatusCode.Gone);
        Assert.Equal("abc", (await _server.ReadAllAsync(fork, Ct)).Body);
    }

    [Theory]
    [InlineData("PATCH")]
    [InlineData("TRACE")]
    [InlineData("PROPFIND")]
    public async Task An_unsupported_method_answers_405_with_an_Allow_header(string method)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "abc", Ct);

        using var response = await _server.SendAsync(new HttpMethod(method), name, ServerHarness.Body("text/plain", "x"), Ct);

        await Http.ErrorAsync(response, HttpStatusCode.MethodNotAllowed);
        var allow = response.Content.Headers.Allow;
        foreach (var expected in new[] { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS" })
        {
            Assert.Contains(expected, allow);
        }
        Assert.DoesNotContain(method, allow);
        Assert.Equal("abc", (await _server.ReadAllAsync(name, Ct)).Body);
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("PUT")]
    [InlineData("POST")]
    public async Task The_streams_root_itself_is_not_a_stream(string method)
    {
        using var response = await SendAsync(method, string.Empty);

        await Http.ErrorAsync(response, HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("offset=abc")]
    [InlineData("offset=0000000000000000_000000000000000x")]
    [InlineData("offset=-2")]
    [InlineData("offset=-1&offset=-1")]
    [InlineData("offset=-1&live=poll")]
    [InlineData("offset=-1&live=sse&live=sse")]
    [InlineData("live=long-poll")]
    [InlineData("live=sse")]
    [InlineData("offset=0000000000000000_0000000000000004")]
    [InlineData("offset=0000000000000000_0000000000000004&live=long-poll")]
    [InlineData("offset=0000000000000000_0000000000000004&live=sse")]
    public async Task Malformed_or_out_of_range_read_parameters_answer_400(string query)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "abc", Ct);

        using var response = await _server.GetAsync($"{name}?{query}", Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task An_offset_inside_a_JSON_message_answers_400()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "application/json", "[{\"a\":1},{\"b\":2}]", Ct);

        using var response = await _server.GetAsync($"{name}?offset={Http.Offset(2)}", Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
    }

    private async Task<HttpResponseMessage> SendAsync(string method, string name)
    {
        var content = method is "POST" or "PUT" ? ServerHarness.Body("text/plain", "x") : null;
        return await _server.SendAsync(new HttpMethod(method), name, content, Ct);
    }
}
