using DurableStreams.Protocol;
using DurableStreams.Server.Internal;
using DurableStreams.Server.Internal.Subscriptions;
using DurableStreams.Subscriptions;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DurableStreams.Server;

/// <summary>Hosting Durable Streams in any ASP.NET Core application.</summary>
public static class DurableStreamsServiceCollectionExtensions
{
    /// <summary>The meter of the endpoints' instruments (recorded when an <see cref="System.Diagnostics.Metrics.IMeterFactory"/> is registered, e.g. by AddMetrics).</summary>
    public const string MeterName = "DurableStreams.Server";

    /// <summary>The file store's meter (group commits: batches, their size and latency).</summary>
    public const string FileStoreMeterName = DurableStreams.Storage.Files.FileStoreMetrics.MeterName;

    /// <summary>The retention job's meter (passes, streams trimmed, bytes dropped and freed, failures, lag).</summary>
    public const string RetentionMeterName = DurableStreams.Core.Retention.RetentionJob.MeterName;

    /// <summary>
    /// Registers the endpoints' services. An <see cref="IStreamStore"/> registered before this call is used; otherwise
    /// an in-memory store is added.
    /// </summary>
    public static IServiceCollection AddDurableStreams(this IServiceCollection services, Action<DurableStreamsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<DurableStreamsOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }
        builder.Validate(o =>
        {
            o.Validate();
            return true;
        });
        services.TryAddSingleton<IStreamStore>(sp => new MemoryStreamStore(new MemoryStreamStoreOptions
        {
            TimeProvider = sp.GetRequiredService<IOptions<DurableStreamsOptions>>().Value.TimeProvider,
            ProducerRetention = sp.GetRequiredService<IOptions<DurableStreamsOptions>>().Value.MemoryProducerRetention,
        }));
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<DurableStreamsOptions>>().Value;
            return new CursorPolicy(options.CursorOptions, options.TimeProvider);
        });
        if (!services.Any(d => d.ServiceType == typeof(SubscriptionEngine)))
        {
            // Always registered; it does nothing unless DurableStreamsOptions.EnableSubscriptions is set.
            services.AddSingleton(sp =>
            {
                var options = sp.GetRequiredService<IOptions<DurableStreamsOptions>>().Value;
                return new SubscriptionEngine(sp.GetRequiredService<IStreamStore>(), options.Subscriptions, options.TimeProvider, sp.GetRequiredService<ILogger<SubscriptionEngine>>());
            });
            services.AddSingleton<IHostedService, SubscriptionHost>();
            // Lifecycle hooks (and the registry) hear creations and deletions from the store's change feed.
            services.AddSingleton<IHostedService, LifecycleHookRunner>();
        }
        services.TryAddSingleton(sp => new ServerMetrics(
            sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(),
            new LiveReaderGate(sp.GetRequiredService<IOptions<DurableStreamsOptions>>().Value.MaxLiveReaders),
            sp.GetRequiredService<IStreamStore>()));
        services.TryAddSingleton(sp => new RequestBodyReader(sp.GetRequiredService<IOptions<DurableStreamsOptions>>().Value));
        services.TryAddSingleton<StreamEndpoints>();
        return services;
    }
}

/// <summary>Mapping the stream endpoints.</summary>
public static class DurableStreamsEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves streams under <paramref name="prefix"/> (default <c>/v1/stream</c>): PUT, POST, GET, HEAD, DELETE and
    /// CORS preflight on <c>{prefix}/{**name}</c>.
    /// </summary>
    public static IEndpointConventionBuilder MapDurableStreams(this IEndpointRouteBuilder endpoints, string prefix = "/v1/stream")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var handler = endpoints.ServiceProvider.GetRequiredService<StreamEndpoints>();
        var mount = "/" + prefix.Trim('/');
        handler.StreamsPath = mount;
        return endpoints.Map(mount + "/{**path}", (HttpContext context) => handler.HandleAsync(context));
    }

    /// <summary>
    /// Maps <c>GET /healthz</c> (200 while the process serves requests) and <c>GET /readyz</c> (200 when the store is
    /// open and writable and the host is not stopping, else 503), both answering a one-word plain-text body.
    /// </summary>
    public static IEndpointRouteBuilder MapDurableStreamsHealth(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var store = endpoints.ServiceProvider.GetRequiredService<IStreamStore>();
        var lifetime = endpoints.ServiceProvider.GetService<Microsoft.Extensions.Hosting.IHostApplicationLifetime>();
        endpoints.MapGet("/healthz", (HttpContext context) => HealthChecks.WriteAsync(context.Response, healthy: true));
        endpoints.MapGet("/readyz", async (HttpContext context) =>
        {
            var ready = lifetime?.ApplicationStopping.IsCancellationRequested != true
                && await HealthChecks.IsStoreReadyAsync(store, context.RequestAborted);
            await HealthChecks.WriteAsync(context.Response, ready);
        });
        return endpoints;
    }
}
