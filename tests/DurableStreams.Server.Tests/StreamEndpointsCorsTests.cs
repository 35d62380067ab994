using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>CORS: the default allows any origin; preflights list every protocol header; responses expose them.</summary>
public sealed class StreamEndpointsCorsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string AllowedOrigin = "https://a.example";

    private static readonly string[] ProtocolRequestHeaders =
    [
        "Content-Type", "If-None-Match", "Stream-Seq", "Stream-TTL", "Stream-Expires-At", "Stream-Closed",
        "Stream-Forked-From", "Stream-Fork-Offset", "Stream-Fork-Sub-Offset", "Producer-Id", "Producer-Epoch", "Producer-Seq",
    ];

    private static readonly string[] ProtocolResponseHeaders =
    [
        "Stream-Next-Offset", "Stream-Cursor", "Stream-Up-To-Date", "Stream-Closed", "Stream-TTL", "Stream-Expires-At",
        "Stream-SSE-Data-Encoding", "Producer-Epoch", "Producer-Seq", "Producer-Expected-Seq", "Producer-Received-Seq",
        "ETag", "Location",
    ];

    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task By_default_any_origin_is_allowed_with_a_wildcard()
    {
        var name = ServerHarness.NewName();

        using var response = await _server.PutAsync(name, "text/plain", null, Ct, ("Origin", "https://anything.example"));

        Assert.Equal("*", Http.Header(response, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task A_preflight_answers_204_allowing_every_protocol_method_and_request_header_for_a_day()
    {
        using var response = await _server.SendAsync(HttpMethod.Options, ServerHarness.NewName(), null, Ct,
            ("Origin", "https://anything.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "producer-id, producer-epoch, producer-seq, content-type"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("*", Http.Header(response, "Access-Control-Allow-Origin"));
        var methods = Http.HeaderList(response, "Access-Control-Allow-Methods");
        foreach (var method in new[] { "GET", "HEAD", "POST", "PUT", "DELETE" })
        {
            Assert.Contains(method, methods);
        }
        var headers = Http.HeaderList(response, "Access-Control-Allow-Headers");
        foreach (var header in ProtocolRequestHeaders)
        {
            Assert.Contains(header, headers, StringComparer.OrdinalIgnoreCase);
        }
        Assert.True(int.TryParse(Http.Header(response, "Access-Control-Max-Age"), out var maxAge) && maxAge > 0,
            $"Access-Control-Max-Age '{Http.Header(response, "Access-Control-Max-Age")}' is not a positive number of seconds.");
        Http.SecurityHeaders(response);
    }

    [Fact]
    public async Task Success_and_error_responses_expose_every_protocol_response_header()
    {
        var name = ServerHarness.NewName();
        using var created = await _server.PutAsync(name, "text/plain", "abc", Ct, ("Origin", "https://anything.example"));
        using var read = await _server.GetAsync(name, Ct, ("Origin", "https://anything.example"));
        using var missing = await _server.GetAsync(ServerHarness.NewName("missing"), Ct, ("Origin", "https://anything.example"));

        foreach (var response in new[] { created, read, missing })
        {
            var exposed = Http.HeaderList(response, "Access-Control-Expose-Headers");
            foreach (var header in ProtocolResponseHeaders)
            {
                Assert.Contains(header, exposed, StringComparer.OrdinalIgnoreCase);
            }
        }
    }

    [Fact]
    public async Task With_a_configured_origin_that_origin_is_echoed_with_Vary_Origin()
    {
        await using var server = await RestrictedServerAsync();
        var name = ServerHarness.NewName();

        using var created = await server.PutAsync(name, "text/plain", "abc", Ct, ("Origin", AllowedOrigin));
        using var missing = await server.GetAsync(ServerHarness.NewName("missing"), Ct, ("Origin", AllowedOrigin));

        foreach (var response in new[] { created, missing })
        {
            Assert.Equal(AllowedOrigin, Http.Header(response, "Access-Control-Allow-Origin"));
            Assert.Contains("Origin", Http.HeaderList(response, "Vary"), StringComparer.OrdinalIgnoreCase);
        }
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task With_a_configured_origin_a_preflight_from_it_is_allowed()
    {
        await using var server = await RestrictedServerAsync();

        using var response = await server.SendAsync(HttpMethod.Options, ServerHarness.NewName(), null, Ct,
            ("Origin", AllowedOrigin), ("Access-Control-Request-Method", "PUT"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(AllowedOrigin, Http.Header(response, "Access-Control-Allow-Origin"));
        Assert.Contains("Origin", Http.HeaderList(response, "Vary"), StringComparer.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("https://b.example")]
    [InlineData("https://a.example.evil")]
    [InlineData("http://a.example")]
    [InlineData(null)]
    public async Task With_a_configured_origin_other_origins_get_no_Access_Control_Allow_Origin(string? origin)
    {
        await using var server = await RestrictedServerAsync();
        var headers = origin is null ? Array.Empty<(string, string)>() : [("Origin", origin)];

        using var response = await server.PutAsync(ServerHarness.NewName(), "text/plain", null, Ct, headers);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Null(Http.Header(response, "Access-Control-Allow-Origin"));
        Assert.Contains("Origin", Http.HeaderList(response, "Vary"), StringComparer.OrdinalIgnoreCase);
    }

    private static Task<ServerHarness> RestrictedServerAsync() => ServerHarness.StartAsync(o =>
    {
        o.CorsOrigins.Clear();
        o.CorsOrigins.Add(AllowedOrigin);
    }, cancellationToken: Ct);
}
