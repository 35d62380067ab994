using System.Net;
using DurableStreams.Server.Inspector;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>The inspector's embedded assets: types, caching, the page's Content-Security-Policy, and opt-in mapping.</summary>
public sealed class InspectorEndpointsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("", "text/html")]
    [InlineData("inspector/app.js", "text/javascript")]
    [InlineData("inspector/app.css", "text/css")]
    [InlineData("inspector/icon.svg", "image/svg+xml")]
    public async Task Each_asset_has_its_type_an_etag_and_revalidates(string path, string mediaType)
    {
        await using var server = await ServerHarness.StartAsync(o => o.Inspector = true, cancellationToken: Ct);
        var url = new Uri(server.Server.BaseUrl, path);

        using var first = await server.Client.GetAsync(url, Ct);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(mediaType, first.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", first.Headers.CacheControl?.ToString());
        Assert.Equal("nosniff", first.Headers.GetValues("X-Content-Type-Options").Single());
        var etag = Assert.IsType<System.Net.Http.Headers.EntityTagHeaderValue>(first.Headers.ETag);
        Assert.True(first.Content.Headers.ContentLength > 0);

        using var again = new HttpRequestMessage(HttpMethod.Get, url);
        again.Headers.IfNoneMatch.Add(etag);
        using var second = await server.Client.SendAsync(again, Ct);
        Assert.Equal(HttpStatusCode.NotModified, second.StatusCode);
    }

    [Fact]
    public async Task The_page_has_a_strict_content_security_policy_and_no_inline_script()
    {
        await using var server = await ServerHarness.StartAsync(o => o.Inspector = true, cancellationToken: Ct);

        using var page = await server.Client.GetAsync(server.Server.BaseUrl, Ct);
        var html = await page.Content.ReadAsStringAsync(Ct);

        var policy = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Equal(InspectorAsset.ContentSecurityPolicy, policy);
        Assert.StartsWith("default-src 'self'; script-src 'self';", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", policy, StringComparison.Ordinal);
        Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());
        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("style=", html, StringComparison.Ordinal);
        Assert.Contains("<script type=\"module\" src=\"/inspector/app.js\"></script>", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_page_names_the_streams_mount_and_needs_no_token()
    {
        await using var server = await ServerHarness.StartAsync(
            o =>
            {
                o.Inspector = true;
                o.StreamsPath = "/custom/root/";
                o.ReadTokens.Add("secret");
            },
            cancellationToken: Ct);

        using var page = await server.Client.GetAsync(server.Server.BaseUrl, Ct);
        using var stream = await server.Client.GetAsync(new Uri(server.Server.StreamsUrl, "any"), Ct);

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("<meta name=\"ds-streams-path\" content=\"/custom/root\">", await page.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, stream.StatusCode);
    }

    [Fact]
    public async Task Head_answers_the_headers_without_a_body()
    {
        await using var server = await ServerHarness.StartAsync(o => o.Inspector = true, cancellationToken: Ct);

        using var request = new HttpRequestMessage(HttpMethod.Head, new Uri(server.Server.BaseUrl, "inspector/app.js"));
        using var response = await server.Client.SendAsync(request, Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(response.Content.Headers.ContentLength > 0);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync(Ct));
    }

    [Fact]
    public async Task Without_the_option_the_root_is_not_served()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);

        using var page = await server.Client.GetAsync(server.Server.BaseUrl, Ct);

        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
    }
}
