using DurableStreams.Subscriptions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace DurableStreams.Server.Internal.Subscriptions;

/// <summary>Runs the <see cref="SubscriptionEngine"/> with the host, when <see cref="DurableStreamsOptions.EnableSubscriptions"/> is set.</summary>
internal sealed class SubscriptionHost(SubscriptionEngine engine, IOptions<DurableStreamsOptions> options) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        options.Value.EnableSubscriptions ? engine.StartAsync(cancellationToken) : Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => engine.StopAsync(cancellationToken);
}
