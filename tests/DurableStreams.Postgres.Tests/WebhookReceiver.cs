using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// A real webhook endpoint on 127.0.0.1:0 (Kestrel): records every request in arrival order and answers with what
/// the test's responder returns (which may wait, to hold a delivery in flight).
/// </summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Channel<WebhookDelivery> _deliveries = Channel.CreateUnbounded<WebhookDelivery>();

    private WebhookReceiver(WebApplication app, Func<WebhookDelivery, CancellationToken, Task<(int Status, string Body)>> respond)
    {
        _app = app;
        _app.Run(async context =>
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            var delivery = new WebhookDelivery(body, context.Request.Headers["Webhook-Signature"].ToString(), JsonDocument.Parse(body).RootElement.Clone());
            await _deliveries.Writer.WriteAsync(delivery, context.RequestAborted);
            var (status, answer) = await respond(delivery, context.RequestAborted);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(answer, context.RequestAborted);
        });
    }

    /// <summary>The URL to register as <c>webhook.url</c>.</summary>
    public Uri Url { get; private set; } = null!;

    public static async Task<WebhookReceiver> StartAsync(Func<WebhookDelivery, CancellationToken, Task<(int Status, string Body)>> respond, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(options => options.Listen(IPAddress.Loopback, 0));
        var receiver = new WebhookReceiver(builder.Build(), respond);
        await receiver._app.StartAsync(cancellationToken);
        var address = receiver._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Url = new Uri(new Uri(address), "/hook");
        return receiver;
    }

    /// <summary>The next request received (waits up to 30 s).</summary>
    public async Task<WebhookDelivery> NextAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        return await _deliveries.Reader.ReadAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}

/// <summary>One received webhook: raw body, <c>Webhook-Signature</c> header and the parsed payload.</summary>
internal sealed record WebhookDelivery(string Body, string Signature, JsonElement Payload)
{
    public long Generation => Payload.GetProperty("generation").GetInt64();

    public string WakeId => Payload.GetProperty("wake_id").GetString()!;

    public string CallbackToken => Payload.GetProperty("callback_token").GetString()!;
}
