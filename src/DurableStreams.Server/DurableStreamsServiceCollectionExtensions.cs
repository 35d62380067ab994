using DurableStreams.Protocol;
using DurableStreams.Server.Internal;
using DurableStreams.Server.Internal.Subscriptions;
using DurableStreams.Storage;
using DurableStreams.Storage.Memory;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace DurableStreams.Server;

/// <summary>Hosting Durable Streams in any ASP.NET Core application.</summary>
public static class DurableStreamsServiceCollectionExtensions
{
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
        }));
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<DurableStreamsOptions>>().Value;
            return new CursorPolicy(options.CursorOptions, options.TimeProvider);
        });
        if (!services.Any(d => d.ServiceType == typeof(SubscriptionManager)))
        {
            // Always registered; it does nothing unless DurableStreamsOptions.EnableSubscriptions is set.
            services.AddSingleton<SubscriptionManager>();
            services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<SubscriptionManager>());
        }
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
        return endpoints.Map(mount + "/{**path}", (HttpContext context) => handler.HandleAsync(context, context.GetRouteValue("path") as string));
    }
}
