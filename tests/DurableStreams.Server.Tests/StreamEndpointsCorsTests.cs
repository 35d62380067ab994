using System.Net;
using System.Reflection;
using DurableStreams.Protocol;
using DurableStreams.Server.Internal;
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
        "Stream-Retained-Start", "ETag", "Location",
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
    public void Every_protocol_header_is_a_request_or_a_response_header_and_CORS_lists_them_all()
    {
        var constants = typeof(ProtocolHeaders).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral)
            .Select(f => (string)f.GetRawConstantValue()!)
            .ToArray();
        var allowed = StreamEndpoints.AllowedHeaders.Split(", ");
        var exposed = StreamEndpoints.ExposedHeaders.Split(", ");

        foreach (var header in constants)
        {
            Assert.True(ProtocolHeaders.RequestHeaders.Contains(header) || ProtocolHeaders.ResponseHeaders.Contains(header),
                $"{header} is in neither ProtocolHeaders.RequestHeaders nor ProtocolHeaders.ResponseHeaders.");
        }
        Assert.All(ProtocolHeaders.RequestHeaders, header => Assert.Contains(header, allowed));
        Assert.All(ProtocolHeaders.ResponseHeaders, header => Assert.Contains(header, exposed));
    }

    [Fact]
    public async Task Every_protocol_header_a_response_carries_is_exposed()
    {
        var origin = ("Origin", "https://anything.example");
        var text = ServerHarness.NewName("text");
        var binary = ServerHarness.NewName("binary");
        var responses = new List<HttpResponseMessage>();
        try
        {
            responses.Add(await _server.PutAsync(text, "text/plain", "abc", Ct, origin, ("Stream-TTL", "3600")));
            responses.Add(await _server.PutAsync(binary, "application/octet-stream", "abc", Ct, origin, ("Stream-Closed", "true")));
            responses.Add(await _server.PostAsync(text, "text/plain", "d", Ct, origin, ("Producer-Id", "p"), ("Producer-Epoch", "0"), ("Producer-Seq", "0")));
            responses.Add(await _server.PostAsync(text, "text/plain", "e", Ct, origin, ("Producer-Id", "p"), ("Producer-Epoch", "0"), ("Producer-Seq", "5")));
            responses.Add(await _server.SendAsync(HttpMethod.Head, text, null, Ct, origin));
            responses.Add(await _server.GetAsync(text + "?offset=-1", Ct, origin));
            responses.Add(await _server.GetAsync(binary + "?offset=-1&live=long-poll", Ct, origin));
            responses.Add(await _server.GetAsync(text + "?offset=-1&live=long-poll", Ct, origin));
            using var sse = ServerHarness.Request(HttpMethod.Get, binary + "?offset=-1&live=sse");
            sse.Headers.Add(origin.Item1, origin.Item2);
            responses.Add(await _server.Client.SendAsync(sse, HttpCompletionOption.ResponseHeadersRead, Ct));

            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var response in responses)
            {
                var exposed = Http.HeaderList(response, "Access-Control-Expose-Headers");
                foreach (var (name, _) in response.Headers.Concat(response.Content.Headers))
                {
                    if (name.StartsWith("Stream-", StringComparison.OrdinalIgnoreCase) || name.StartsWith("Producer-", StringComparison.OrdinalIgnoreCase))
                    {
                        seen.Add(name);
                        Assert.Contains(name, exposed, StringComparer.OrdinalIgnoreCase);
                    }
                }
            }
            // The requests above did produce the protocol's response headers, so the check covered them.
            Assert.Superset(new HashSet<string>(StringComparer.OrdinalIgnoreCase)
            {
                "Stream-Next-Offset", "Stream-Up-To-Date", "Stream-Closed", "Stream-Cursor", "Stream-SSE-Data-Encoding",
                "Producer-Epoch", "Producer-Seq", "Producer-Expected-Seq", "Producer-Received-Seq",
            }, seen);
        }
        finally
        {
            foreach (var response in responses)
            {
                response.Dispose();
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
