using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// One stream, one URL (issue 22 items 9 and 10): the raw path is decoded exactly once into the name; encoded
/// slashes, double encoding, malformed escapes, invalid UTF-8, dot segments and control characters are refused with 400
/// and a message saying which; request header values with control characters are refused too.
/// </summary>
public sealed class StreamNameCanonicalTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Mount => _server.Server.StreamsUrl.AbsolutePath;

    [Theory]
    [InlineData("a%2Fb", "%2F")]
    [InlineData("a%2fb", "%2F")]
    [InlineData("a%5Cb", "%5C")]
    [InlineData("a%5cb", "%5C")]
    [InlineData("a%252Fb", "double-encoded")]
    [InlineData("a%252fb", "double-encoded")]
    [InlineData("a%2541", "double-encoded")]
    [InlineData("a%FF", "UTF-8")]
    [InlineData("a%C3", "UTF-8")]
    [InlineData("a%C0%AF", "UTF-8")]
    [InlineData("a%ED%A0%80", "UTF-8")]
    [InlineData("a%zz", "two hex digits")]
    [InlineData("a%4", "two hex digits")]
    [InlineData("a%", "two hex digits")]
    [InlineData("a/./b", "'.' or '..'")]
    [InlineData("a/../b", "'.' or '..'")]
    [InlineData("a/%2E%2E/b", "'.' or '..'")]
    [InlineData("a/%2e/b", "'.' or '..'")]
    [InlineData("x/..", "'.' or '..'")]
    [InlineData("../stream/x", "'.' or '..'")]
    [InlineData("a%0Ab", "control character")]
    [InlineData("a%0D%0AX-Injected:%201", "control character")]
    [InlineData("a%1B%5B31mred", "control character")]
    [InlineData("a%09b", "control character")]
    [InlineData("a%00b", "400 Bad Request")] // Kestrel itself refuses a decoded NUL
    [InlineData("a%7Fb", "control character")]
    [InlineData("a%C2%85b", "control character")]
    [InlineData("a%C2%9Bb", "control character")]
    public async Task A_name_that_is_not_canonical_answers_400_saying_why(string rawName, string why)
    {
        var (status, response) = await RawHttp.SendAsync(_server.Server.StreamsUrl, "PUT", Mount + rawName, Ct, body: "x");

        Assert.True(status == 400, response);
        Assert.Contains(why, response, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_encoded_slash_and_its_double_encoding_no_longer_reach_the_stream_with_a_literal_slash()
    {
        await RawHttp.SendAsync(_server.Server.StreamsUrl, "PUT", Mount + "canon/a/b", Ct, body: "data");

        foreach (var spelling in new[] { "canon/a%2Fb", "canon/a%252Fb", "canon/a%2fb" })
        {
            var (status, response) = await RawHttp.SendAsync(_server.Server.StreamsUrl, "GET", Mount + spelling + "?offset=-1", Ct);
            Assert.True(status == 400, $"{spelling}: {response}");
        }
        var (ok, body) = await RawHttp.SendAsync(_server.Server.StreamsUrl, "GET", Mount + "canon/a/b?offset=-1", Ct);
        Assert.Equal(200, ok);
        Assert.EndsWith("data", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("hello%20world", "hello world")]
    [InlineData("caf%C3%A9", "café")]
    [InlineData("caf\u00e9-literal", "café-literal")]
    [InlineData("emoji-%F0%9F%98%80", "emoji-😀")]
    [InlineData("100%25", "100%")]
    [InlineData("100%25-zz", "100%-zz")]
    [InlineData("a+b", "a+b")]
    [InlineData("%41BC", "ABC")]
    [InlineData("dir/sub/leaf", "dir/sub/leaf")]
    [InlineData("x..y/.hidden/...", "x..y/.hidden/...")]
    public async Task A_canonical_name_is_decoded_once_and_reached_again_through_HttpClient(string rawName, string name)
    {
        var unique = ServerHarness.NewName() + "-";
        if (rawName.Any(c => c > 0x7F))
        {
            // Kestrel refuses non-ASCII bytes in a request target: HttpClient sends the UTF-8 percent-encoded.
            await _server.CreateAsync(unique + rawName, "text/plain", "v", Ct);
        }
        else
        {
            var (status, response) = await RawHttp.SendAsync(_server.Server.StreamsUrl, "PUT", Mount + unique + rawName, Ct, body: "v");
            Assert.True(status == 201, response);
        }

        Assert.Equal(DurableStreams.Core.ReadStatus.Ok, (await _server.Store.Inner.GetMetadataAsync(unique + name, Ct)).Status);
        var escaped = string.Join('/', (unique + name).Split('/').Select(Uri.EscapeDataString));
        Assert.Equal("v", (await _server.ReadAllAsync(escaped, Ct)).Body);
    }

    [Theory]
    [InlineData("a\u0001b")]
    [InlineData("a\u001bb")]
    [InlineData("a\u007fb")]
    [InlineData("\u000b")]
    public async Task A_request_header_value_with_a_control_character_answers_400(string value)
    {
        var name = ServerHarness.NewName();

        var (status, response) = await RawHttp.SendAsync(_server.Server.StreamsUrl, "PUT", Mount + name, Ct, body: "x", "X-A: " + value);

        Assert.True(status == 400, response);
        Assert.Contains("X-A", response, StringComparison.Ordinal);
        Assert.Contains("control character", response, StringComparison.Ordinal);
        Assert.NotEqual(DurableStreams.Core.ReadStatus.Ok, (await _server.Store.Inner.GetMetadataAsync(name, Ct)).Status);
    }

    [Fact]
    public async Task A_tab_in_a_header_value_is_allowed()
    {
        var (status, response) = await RawHttp.SendAsync(_server.Server.StreamsUrl, "PUT", Mount + ServerHarness.NewName(), Ct, body: "x", "X-A: a\tb");

        Assert.True(status == 201, response);
    }
}
