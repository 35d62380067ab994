using System.Net;
using System.Security.Cryptography.X509Certificates;
using DurableStreams.Server.Internal;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace DurableStreams.Server;

/// <summary>
/// An embeddable Kestrel host for streams: the same endpoints <c>durable-streams serve</c> runs, startable from tests,
/// tools and PowerShell. It installs no console lifetime, so the hosting process keeps its Ctrl+C and SIGTERM.
/// </summary>
public sealed class DurableStreamServer : IAsyncDisposable
{
    private readonly DurableStreamServerOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly bool _ownsStore;
    private readonly IStreamStore _store;
    private WebApplication? _app;
    private Uri? _baseUrl;

    /// <summary>Creates a server from <paramref name="options"/>; nothing listens until <see cref="StartAsync"/>.</summary>
    public DurableStreamServer(DurableStreamServerOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _ownsStore = options.Store is null;
        _store = options.Store ?? new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = options.TimeProvider, ProducerRetention = options.MemoryProducerRetention });
    }

    /// <summary>The store behind the endpoints.</summary>
    public IStreamStore Store => _store;

    /// <summary>The port actually bound (useful with port 0).</summary>
    public int Port => BaseUrl.Port;

    /// <summary>The server root, e.g. <c>http://127.0.0.1:4437/</c>.</summary>
    public Uri BaseUrl => _baseUrl ?? throw new InvalidOperationException("The server has not been started.");

    /// <summary>Where streams live, e.g. <c>http://127.0.0.1:4437/v1/stream/</c>.</summary>
    public Uri StreamsUrl => new(BaseUrl, _options.StreamsPath.Trim('/') + "/");

    /// <summary>Opens the store and starts listening; <see cref="BaseUrl"/> is known once this completes.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_app is not null)
        {
            throw new InvalidOperationException("The server is already started.");
        }
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddSingleton(_loggerFactory);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        // The embedding process owns signals; never install a console lifetime here.
        builder.Services.AddSingleton<IHostLifetime, EmbeddedHostLifetime>();
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.RequestHeadersTimeout = _options.RequestHeadersTimeout;
            // Every live read holds an HTTP/2 stream for its whole life; Kestrel's default of 100 would refuse the 101st.
            kestrel.Limits.Http2.MaxStreamsPerConnection = _options.MaxHttp2StreamsPerConnection;
            // Kestrel averages the rate over the whole request; the endpoints also hold every 5 s window of the bodies
            // they buffer to it (RequestBodyReader), so a fast start cannot buy hours of stalling.
            kestrel.Limits.MinRequestBodyDataRate = _options.MinRequestBodyDataRate > 0
                ? new MinDataRate(_options.MinRequestBodyDataRate, TimeSpan.FromSeconds(5))
                : null;
            var port = _options.Port;
            if (string.Equals(_options.Host, "localhost", StringComparison.OrdinalIgnoreCase))
            {
                kestrel.Listen(IPAddress.Loopback, port, ConfigureListener);
            }
            else if (IPAddress.TryParse(_options.Host, out var address))
            {
                kestrel.Listen(address, port, ConfigureListener);
            }
            else
            {
                throw new ArgumentException($"Host '{_options.Host}' is not an IP address or 'localhost'.");
            }
        });
        builder.Services.AddRoutingCore();
        if (_options.Metrics)
        {
            builder.Services.AddMetrics();
            // Our meters next to the built-in ones of ASP.NET Core (HTTP server, Kestrel) and the runtime (GC, heap,
            // thread pool, CPU, working set): no instrumentation package, only their names.
            builder.Services.AddOpenTelemetry()
                .ConfigureResource(resource => resource.AddService(_options.MetricsServiceName))
                .WithMetrics(metrics => metrics
                    .AddMeter(
                        DurableStreamsServiceCollectionExtensions.MeterName,
                        DurableStreamsServiceCollectionExtensions.FileStoreMeterName,
                        DurableStreamsServiceCollectionExtensions.RetentionMeterName,
                        "Microsoft.AspNetCore.Hosting",
                        "Microsoft.AspNetCore.Server.Kestrel",
                        "System.Runtime")
                    .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));
        }
        if (_options.Compression)
        {
            CatchUpCompression.AddServices(builder.Services);
        }
        if (_options.RateLimitPermits is { } permits)
        {
            builder.Services.AddRateLimiter(limiter => RateLimiting.Configure(limiter, permits, _options.RateLimitWindow));
        }
        builder.Services.AddSingleton(_store);
        StreamRegistryHooks? registry = null;
        if (_options.Registry)
        {
            registry = new StreamRegistryHooks(_store);
            await registry.EnsureCreatedAsync(cancellationToken);
        }
        builder.Services.AddDurableStreams(o =>
        {
            CopyEndpointOptions(_options, o);
            if (registry is not null)
            {
                o.Hooks.Add(registry);
            }
        });

        var app = builder.Build();
        if (_options.Compression)
        {
            app.UseResponseCompression();
        }
        app.UseRouting();
        if (_options.RateLimitPermits is not null)
        {
            app.UseRateLimiter();
        }
        app.MapDurableStreams(_options.StreamsPath);
        app.MapDurableStreamsHealth();
        if (_options.Inspector)
        {
            app.MapDurableStreamsInspector(_options.StreamsPath);
        }
        if (_options.Metrics)
        {
            app.MapPrometheusScrapingEndpoint("/metrics");
        }
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var bound = new Uri(address);
        var host = bound.Host is "[::]" or "0.0.0.0" or "+" or "*" ? "127.0.0.1" : bound.Host;
        _baseUrl = new UriBuilder(bound.Scheme, host, bound.Port, "/").Uri;
        _app = app;
    }

    /// <summary>
    /// HTTPS with HTTP/1.1 and HTTP/2 (negotiated by ALPN) when a certificate is configured; otherwise plain HTTP/1.1, or
    /// plain HTTP/2 with prior knowledge only (h2c) when <see cref="DurableStreamServerOptions.CleartextHttp2"/> is set.
    /// </summary>
    private void ConfigureListener(ListenOptions listen)
    {
        if (_options.TlsCertificatePath is { } certificatePath)
        {
            listen.Protocols = HttpProtocols.Http1AndHttp2;
            listen.UseHttps(LoadCertificate(certificatePath, _options.TlsKeyPath!));
        }
        else
        {
            listen.Protocols = _options.CleartextHttp2 ? HttpProtocols.Http2 : HttpProtocols.Http1;
        }
    }

    private static X509Certificate2 LoadCertificate(string certificatePath, string keyPath)
    {
        using var pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        // An ephemeral key from PEM cannot be used by SslStream on every platform; a PKCS#12 round trip makes it persistent.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Stops listening and disposes the host; does nothing when the server is not running.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var app = Interlocked.Exchange(ref _app, null);
        if (app is null)
        {
            return;
        }
        await app.StopAsync(cancellationToken);
        await app.DisposeAsync();
    }

    /// <summary>Stops the server (<see cref="StopAsync"/>) and releases what it owns.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_ownsStore)
        {
            await _store.DisposeAsync();
        }
    }

    private static void CopyEndpointOptions(DurableStreamsOptions from, DurableStreamsOptions to)
    {
        to.LongPollTimeout = from.LongPollTimeout;
        to.SseReconnectInterval = from.SseReconnectInterval;
        to.MaxAppendBytes = from.MaxAppendBytes;
        to.MaxBufferedBodyBytes = from.MaxBufferedBodyBytes;
        to.MinRequestBodyDataRate = from.MinRequestBodyDataRate;
        to.MaxReadChunkBytes = from.MaxReadChunkBytes;
        to.CursorOptions = from.CursorOptions;
        to.CachePolicy = from.CachePolicy;
        to.TimeProvider = from.TimeProvider;
        to.EnableSubscriptions = from.EnableSubscriptions;
        to.Subscriptions = from.Subscriptions;
        to.MaxStreamNameBytes = from.MaxStreamNameBytes;
        to.MaxStreamNameSegments = from.MaxStreamNameSegments;
        to.MaxLiveReaders = from.MaxLiveReaders;
        to.Compression = from.Compression;
        to.ReadTokens.Clear();
        foreach (var token in from.ReadTokens)
        {
            to.ReadTokens.Add(token);
        }
        to.WriteTokens.Clear();
        foreach (var token in from.WriteTokens)
        {
            to.WriteTokens.Add(token);
        }
        to.AdminTokens.Clear();
        foreach (var token in from.AdminTokens)
        {
            to.AdminTokens.Add(token);
        }
        to.Retention = from.Retention;
        to.Hooks.Clear();
        foreach (var hook in from.Hooks)
        {
            to.Hooks.Add(hook);
        }
        to.CorsOrigins.Clear();
        foreach (var origin in from.CorsOrigins)
        {
            to.CorsOrigins.Add(origin);
        }
    }

    /// <summary>A host lifetime that neither waits for nor listens to anything.</summary>
    private sealed class EmbeddedHostLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
