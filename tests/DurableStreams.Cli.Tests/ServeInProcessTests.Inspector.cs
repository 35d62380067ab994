using System.Net;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary><c>serve</c> serves the inspector page at <c>/</c> unless <c>--no-ui</c>.</summary>
public sealed partial class ServeInProcessTests
{
    [Fact]
    public async Task Serve_serves_the_inspector_at_the_root_and_prints_its_url()
    {
        await using var serve = await RunningServe.StartAsync(["serve", "--memory", "--port", "0"], Token);

        Assert.Equal($"Inspector: {serve.BaseUrl}", await serve.ReadLineAsync(Token));
        using var page = await _client.GetAsync(serve.BaseUrl, Token);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<meta name=\"ds-streams-path\" content=\"/v1/stream\">", await page.Content.ReadAsStringAsync(Token), StringComparison.Ordinal);
        using var script = await _client.GetAsync(new Uri(serve.BaseUrl, "inspector/app.js"), Token);
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Equal(0, await serve.StopAsync(Token));
    }

    [Fact]
    public async Task Serve_with_no_ui_answers_404_at_the_root()
    {
        await using var serve = await RunningServe.StartAsync(["serve", "--memory", "--port", "0", "--no-ui"], Token);

        using var page = await _client.GetAsync(serve.BaseUrl, Token);
        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        using var script = await _client.GetAsync(new Uri(serve.BaseUrl, "inspector/app.js"), Token);
        Assert.Equal(HttpStatusCode.NotFound, script.StatusCode);
        Assert.Equal(0, await serve.StopAsync(Token));
    }
}
