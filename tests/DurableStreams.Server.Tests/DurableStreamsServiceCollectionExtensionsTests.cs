using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>Hosting the endpoints in an application's own WebApplication under its own prefix.</summary>
public sealed class DurableStreamsServiceCollectionExtensionsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Streams_work_under_a_custom_prefix_of_a_slim_web_application()
    {
        await using var app = await StartAsync(services => services.AddDurableStreams());
        using var client = ClientFor(app);

        using var created = await client.PutAsync(new Uri("streams/x/y", UriKind.Relative), ServerHarness.Body("text/plain", "hello"), Ct);
        using var read = await client.GetAsync(new Uri("streams/x/y?offset=-1", UriKind.Relative), Ct);
        using var unmapped = await client.GetAsync(new Uri("v1/stream/x/y", UriKind.Relative), Ct);

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(new Uri(client.BaseAddress!, "streams/x/y"), created.Headers.Location);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal("hello", await read.Content.ReadAsStringAsync(Ct));
        Assert.Equal(HttpStatusCode.NotFound, unmapped.StatusCode);
    }

    [Fact]
    public async Task A_store_registered_before_AddDurableStreams_is_the_one_used()
    {
        var store = new MemoryStreamStore();
        try
        {
            await using var app = await StartAsync(services =>
            {
                services.AddSingleton<IStreamStore>(store);
                services.AddDurableStreams();
            });
            using var client = ClientFor(app);

            using var created = await client.PutAsync(new Uri("streams/mine", UriKind.Relative), ServerHarness.Body("text/plain", "abc"), Ct);

            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var metadata = await store.GetMetadataAsync("mine", Ct);
            Assert.Equal(ReadStatus.Ok, metadata.Status);
            Assert.Equal(3, metadata.Info!.Tail.Position);
        }
        finally
        {
            await store.DisposeAsync();
        }
    }

    [Fact]
    public async Task Options_from_AddDurableStreams_apply()
    {
        await using var app = await StartAsync(services => services.AddDurableStreams(o =>
        {
            o.MaxAppendBytes = 4;
            o.CachePolicy = CachePolicy.Private;
        }));
        using var client = ClientFor(app);

        using var tooLarge = await client.PutAsync(new Uri("streams/big", UriKind.Relative), ServerHarness.Body("text/plain", "12345"), Ct);
        using var created = await client.PutAsync(new Uri("streams/small", UriKind.Relative), ServerHarness.Body("text/plain", "1234"), Ct);
        using var read = await client.GetAsync(new Uri("streams/small", UriKind.Relative), Ct);

        await Http.ErrorAsync(tooLarge, HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.StartsWith("private,", Http.Header(read, "Cache-Control"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_fork_source_is_resolved_under_the_custom_prefix()
    {
        await using var app = await StartAsync(services => services.AddDurableStreams());
        using var client = ClientFor(app);
        using (var source = await client.PutAsync(new Uri("streams/src", UriKind.Relative), ServerHarness.Body("text/plain", "abc"), Ct))
        {
            Assert.Equal(HttpStatusCode.Created, source.StatusCode);
        }

        using var request = new HttpRequestMessage(HttpMethod.Put, new Uri("streams/fork", UriKind.Relative));
        request.Headers.Add("Stream-Forked-From", "/streams/src");
        using var fork = await client.SendAsync(request, Ct);
        using var read = await client.GetAsync(new Uri("streams/fork", UriKind.Relative), Ct);

        Assert.Equal(HttpStatusCode.Created, fork.StatusCode);
        Assert.Equal("abc", await read.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Invalid_options_from_AddDurableStreams_fail_at_mapping_with_an_ArgumentException()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddDurableStreams(o => o.LongPollTimeout = TimeSpan.Zero);
        await using var app = builder.Build();

        var exception = Assert.ThrowsAny<Exception>(() => app.MapDurableStreams("/streams"));

        Assert.Contains("LongPollTimeout", exception.ToString(), StringComparison.Ordinal);
    }

    private static async Task<WebApplication> StartAsync(Action<IServiceCollection> configure)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        configure(builder.Services);
        var app = builder.Build();
        app.MapDurableStreams("/streams");
        await app.StartAsync(Ct);
        return app;
    }

    private static HttpClient ClientFor(WebApplication app) =>
        new() { BaseAddress = new Uri(app.Urls.Single().TrimEnd('/') + "/"), Timeout = ServerHarness.RequestTimeout };
}
