using DurableStreams.Protocol.Diagnostics;
using DurableStreams.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DurableStreams.Server.Internal;

/// <summary>
/// Calls the configured <see cref="IStreamLifecycleHooks"/> (the stream registry among them) from the store's change
/// feed: each creation and deletion committed through this node, in commit order, every hook in registration order.
/// A failing hook is logged and the next one still runs.
/// </summary>
internal sealed partial class LifecycleHookRunner(IStreamStore store, IOptions<DurableStreamsOptions> options, ILogger<LifecycleHookRunner> logger) : IHostedService, IAsyncDisposable
{
    private IAsyncDisposable? _subscription;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.Hooks.Count > 0)
        {
            _subscription ??= store.Changes.Subscribe(OnChangedAsync, static c => c.Kind is StreamChangeKind.Created or StreamChangeKind.Deleted);
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _subscription, null) is { } subscription)
        {
            await subscription.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None);

    private async ValueTask OnChangedAsync(StreamChanged change, CancellationToken cancellationToken)
    {
        if (change.Kind == StreamChangeKind.Created)
        {
            var created = new StreamCreatedEvent(change.Name, change.ContentType!, change.At) { ForkedFrom = change.ForkedFrom };
            await RunAsync(change.Name, (hook, ct) => hook.OnStreamCreatedAsync(created, ct), cancellationToken);
        }
        else if (change.Kind == StreamChangeKind.Deleted)
        {
            var deleted = new StreamDeletedEvent(change.Name, change.At);
            await RunAsync(change.Name, (hook, ct) => hook.OnStreamDeletedAsync(deleted, ct), cancellationToken);
        }
    }

    private async Task RunAsync(string name, Func<IStreamLifecycleHooks, CancellationToken, Task> call, CancellationToken cancellationToken)
    {
        foreach (var hook in options.Value.Hooks)
        {
            try
            {
                await call(hook, cancellationToken);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                LogHookFailed(logger, ex, hook.GetType().Name, name);
            }
        }
    }

    [LoggerMessage(EventId = LogEvents.LifecycleHookFailed, Level = LogLevel.Warning, Message = "Lifecycle hook {Hook} failed for stream {Name}")]
    private static partial void LogHookFailed(ILogger logger, Exception exception, string hook, string name);
}
