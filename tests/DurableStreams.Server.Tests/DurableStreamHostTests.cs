using System.Net;
using System.Net.Sockets;
using System.Reflection;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using DurableStreams.Core.Retention;
using DurableStreams.Storage.Files;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>The host composed from <see cref="DurableStreamHostOptions"/>: store selection, option mapping, failures and disposal order.</summary>
public sealed class DurableStreamHostTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task The_memory_store_is_chosen_by_default_and_serves_streams()
    {
        await using var host = await DurableStreamHost.OpenAsync(new DurableStreamHostOptions { Port = 0 }, cancellationToken: Ct);
        await host.StartAsync(Ct);
        using var client = new HttpClient();

        using var created = await client.PutAsync(new Uri(host.Server.StreamsUrl, "a"), new StringContent("x"), Ct);

        Assert.IsType<MemoryStreamStore>(host.Store);
        Assert.Null(host.SubscriptionState);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Same(host.Store, host.Server.Store);
    }

    [Fact]
    public async Task The_file_store_opens_in_the_data_directory_with_its_subscription_state_beside_it()
    {
        var directory = _directory.Combine("data");
        var options = new DurableStreamHostOptions { Port = 0, Store = HostedStoreKind.File, DataDirectory = directory, Durability = DurabilityMode.None };
        await using (var host = await DurableStreamHost.OpenAsync(options, cancellationToken: Ct))
        {
            await host.StartAsync(Ct);
            Assert.IsType<FileStreamStore>(host.Store);
            Assert.NotNull(host.SubscriptionState);
            await host.Store.CreateAsync("kept", new CreateStreamRequest { ContentType = "text/plain" }, Ct);
        }

        // Disposal closed the subscription state and the store and released the directory lock.
        await using var reopened = FileStreamStore.Open(options.ToFileStoreOptions());
        await using var state = FileSubscriptionStateStore.Open(directory);
        Assert.Contains("kept", reopened.ListStreamNames());
    }

    [Fact]
    public async Task Without_subscriptions_the_file_store_opens_no_subscription_state()
    {
        var options = new DurableStreamHostOptions { Port = 0, Store = HostedStoreKind.File, DataDirectory = _directory.Path, Subscriptions = false };
        await using var host = await DurableStreamHost.OpenAsync(options, cancellationToken: Ct);
        await host.StartAsync(Ct);

        Assert.Null(host.SubscriptionState);
        Assert.False(host.Server.StreamsUrl is null);
    }

    [Fact]
    public async Task A_data_directory_held_by_another_host_is_StoreInUse_with_the_store_s_message()
    {
        var options = new DurableStreamHostOptions { Store = HostedStoreKind.File, DataDirectory = _directory.Path };
        await using var first = await DurableStreamHost.OpenAsync(options, cancellationToken: Ct);

        var ex = await Assert.ThrowsAsync<DurableStreamHostException>(() => DurableStreamHost.OpenAsync(options, cancellationToken: Ct));

        Assert.Equal(DurableStreamHostFailure.StoreInUse, ex.Failure);
        Assert.Equal($"The data directory '{_directory.Path}' is in use by another process.", ex.Message);
    }

    [Fact]
    public async Task A_data_directory_that_is_a_file_is_StoreUnavailable()
    {
        var file = _directory.Combine("file");
        await File.WriteAllTextAsync(file, "x", Ct);

        var ex = await Assert.ThrowsAsync<DurableStreamHostException>(() =>
            DurableStreamHost.OpenAsync(new DurableStreamHostOptions { Store = HostedStoreKind.File, DataDirectory = file }, cancellationToken: Ct));

        Assert.Equal(DurableStreamHostFailure.StoreUnavailable, ex.Failure);
        Assert.StartsWith($"Could not open the data directory '{file}': ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_database_is_StoreUnavailable()
    {
        // Port 1 on loopback refuses at once.
        var options = new DurableStreamHostOptions { Store = HostedStoreKind.Postgres, PostgresConnectionString = "Host=127.0.0.1;Port=1;Username=x;Password=x;Timeout=2" };

        var ex = await Assert.ThrowsAsync<DurableStreamHostException>(() => DurableStreamHost.OpenAsync(options, cancellationToken: Ct));

        Assert.Equal(DurableStreamHostFailure.StoreUnavailable, ex.Failure);
        Assert.StartsWith("Could not open the PostgreSQL store: ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_setting_fails_before_the_store_is_opened()
    {
        var directory = _directory.Combine("never");
        var options = new DurableStreamHostOptions { Store = HostedStoreKind.File, DataDirectory = directory, MaxAppendBytes = 10, MaxBufferedBodyBytes = 5 };

        var ex = await Assert.ThrowsAsync<DurableStreamHostException>(() => DurableStreamHost.OpenAsync(options, cancellationToken: Ct));

        Assert.Equal(DurableStreamHostFailure.InvalidOption, ex.Failure);
        Assert.StartsWith("Could not start the server on 127.0.0.1:4437: ", ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task A_taken_port_is_ServerStartFailed_and_the_store_still_closes()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var options = new DurableStreamHostOptions { Port = port, Store = HostedStoreKind.File, DataDirectory = _directory.Path };
        var host = await DurableStreamHost.OpenAsync(options, cancellationToken: Ct);

        var ex = await Assert.ThrowsAsync<DurableStreamHostException>(() => host.StartAsync(Ct));
        await host.DisposeAsync();

        Assert.Equal(DurableStreamHostFailure.ServerStartFailed, ex.Failure);
        Assert.StartsWith($"Could not start the server on 127.0.0.1:{port}: ", ex.Message, StringComparison.Ordinal);
        await using var reopened = FileStreamStore.Open(options.ToFileStoreOptions());
    }

    [Fact]
    public async Task The_store_is_disposed_only_after_the_web_host_has_stopped_listening()
    {
        var store = new ObservedStore(new MemoryStreamStore());
        bool? listeningAtStoreDisposal = null;
        var host = await DurableStreamHost.OpenWithAsync(
            new DurableStreamHostOptions { Port = 0 },
            loggerFactory: null,
            (_, _, _) => Task.FromResult<(IStreamStore, ISubscriptionRepository?)>((store, null)),
            Ct);
        await host.StartAsync(Ct);
        var port = host.Server.Port;
        store.Disposing = async () => listeningAtStoreDisposal = await AcceptsConnectionsAsync(port);
        Assert.True(await AcceptsConnectionsAsync(port));

        await host.DisposeAsync();

        Assert.False(listeningAtStoreDisposal);
    }

    [Fact]
    public async Task StopAsync_then_DisposeAsync_closes_the_store_once()
    {
        var disposals = 0;
        var store = new ObservedStore(new MemoryStreamStore()) { Disposing = () => { disposals++; return ValueTask.CompletedTask; } };
        var host = await DurableStreamHost.OpenWithAsync(
            new DurableStreamHostOptions { Port = 0 }, null, (_, _, _) => Task.FromResult<(IStreamStore, ISubscriptionRepository?)>((store, null)), Ct);
        await host.StartAsync(Ct);

        Assert.True(await host.StopAsync(TimeSpan.FromSeconds(5)));
        await host.DisposeAsync();
        await host.DisposeAsync();

        Assert.Equal(1, disposals);
    }

    /// <summary>Every setting, each different from its default, so a setting added without a mapping fails a test below.</summary>
    private static DurableStreamHostOptions Sample() => new()
    {
        Store = HostedStoreKind.File,
        DataDirectory = "/data",
        PostgresConnectionString = "Host=db",
        Durability = DurabilityMode.Interval,
        SyncInterval = TimeSpan.FromMilliseconds(250),
        ProducerRetention = TimeSpan.FromHours(3),
        MaxForkDepth = 7,
        MaxMessagesPerAppend = 11,
        Retention = new RetentionPolicies([new RetentionRule("logs/**", new RetentionPolicy(TimeSpan.FromDays(7), 1000))], new RetentionPolicy(null, 2000)),
        RetentionInterval = TimeSpan.FromSeconds(17),
        Subscriptions = false,
        AllowLocalWebhooks = true,
        Registry = true,
        Inspector = false,
        Metrics = true,
        Compression = true,
        CachePolicy = CachePolicy.Private,
        Host = "0.0.0.0",
        Port = 8080,
        TlsCertificatePath = "/cert.pem",
        TlsKeyPath = "/key.pem",
        CleartextHttp2 = true,
        MaxHttp2StreamsPerConnection = 12,
        CorsOrigins = ["https://a.example", "https://b.example"],
        ReadTokens = ["r"],
        WriteTokens = ["w"],
        AdminTokens = ["a"],
        LongPollTimeout = TimeSpan.FromSeconds(3),
        SseReconnectInterval = TimeSpan.FromSeconds(4),
        MaxAppendBytes = 1000,
        MaxBufferedBodyBytes = 2000,
        MaxReadChunkBytes = 300,
        MaxLiveReaders = 5,
        RateLimitPermits = 6,
        RateLimitWindow = TimeSpan.FromSeconds(9),
        RequestHeadersTimeout = TimeSpan.FromSeconds(8),
        MinRequestBodyDataRate = 100,
        MaxStreamNameBytes = 200,
        MaxStreamNameSegments = 9,
    };

    [Fact]
    public void The_sample_sets_every_setting_to_something_other_than_its_default()
    {
        var sample = Sample();
        var defaults = new DurableStreamHostOptions();
        foreach (var property in typeof(DurableStreamHostOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.Name != "EqualityContract"))
        {
            Assert.False(Same(property.GetValue(defaults), property.GetValue(sample)), $"Sample() leaves {property.Name} at its default.");
        }
    }

    [Fact]
    public void Every_setting_reaches_the_server_options()
    {
        var sample = Sample();
        var server = sample.ToServerOptions();
        var serverProperties = typeof(DurableStreamServerOptions).GetProperties().ToDictionary(p => p.Name);
        // Settings that the server options name differently, or that belong to the stores (and the host's retention job) only.
        var elsewhere = new Dictionary<string, object?>
        {
            [nameof(DurableStreamHostOptions.Subscriptions)] = server.EnableSubscriptions,
            [nameof(DurableStreamHostOptions.AllowLocalWebhooks)] = server.Subscriptions.AllowLocalhostHttp,
            [nameof(DurableStreamHostOptions.ProducerRetention)] = server.MemoryProducerRetention,
        };
        string[] storeOnly = [nameof(sample.Store), nameof(sample.DataDirectory), nameof(sample.PostgresConnectionString), nameof(sample.Durability),
            nameof(sample.SyncInterval), nameof(sample.MaxForkDepth), nameof(sample.MaxMessagesPerAppend), nameof(sample.Retention), nameof(sample.RetentionInterval)];

        foreach (var property in typeof(DurableStreamHostOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.Name != "EqualityContract"))
        {
            if (storeOnly.Contains(property.Name))
            {
                continue;
            }
            var expected = property.GetValue(sample);
            var actual = elsewhere.TryGetValue(property.Name, out var value) ? value
                : serverProperties.TryGetValue(property.Name, out var target) ? target.GetValue(server)
                : throw new Xunit.Sdk.XunitException($"{property.Name} has no counterpart in DurableStreamServerOptions; map it and list it here.");
            Assert.True(Same(expected, actual), $"{property.Name}: expected {Format(expected)}, got {Format(actual)}.");
        }
    }

    [Fact]
    public void The_store_settings_reach_each_store()
    {
        var sample = Sample();
        var file = sample.ToFileStoreOptions();
        var memory = sample.ToMemoryStoreOptions();
        var postgres = sample.ToPostgresStoreOptions();

        Assert.Equal(("/data", DurabilityMode.Interval, TimeSpan.FromMilliseconds(250)), (file.DataDirectory, file.Durability, file.SyncInterval));
        Assert.Equal((7, 11, TimeSpan.FromHours(3)), (file.MaxForkDepth, file.MaxMessagesPerAppend, file.ProducerRetention));
        Assert.Equal((7, 11, TimeSpan.FromHours(3)), (memory.MaxForkDepth, memory.MaxMessagesPerAppend, memory.ProducerRetention));
        Assert.Equal(("Host=db", 7, 11, TimeSpan.FromHours(3)), (postgres.ConnectionString, postgres.MaxForkDepth, postgres.MaxMessagesPerAppend, postgres.ProducerRetention));
        Assert.All([file.Retention, memory.Retention, postgres.Retention], retention => Assert.Same(sample.Retention, retention));
    }

    [Fact]
    public void Without_a_producer_retention_each_store_keeps_its_own_default()
    {
        var options = new DurableStreamHostOptions { DataDirectory = "/data", PostgresConnectionString = "Host=db" };

        Assert.Equal(ProducerRules.DefaultPersistentRetention, options.ToFileStoreOptions().ProducerRetention);
        Assert.Equal(ProducerRules.DefaultPersistentRetention, options.ToPostgresStoreOptions().ProducerRetention);
        Assert.Equal(ProducerRules.DefaultMemoryRetention, options.ToMemoryStoreOptions().ProducerRetention);
        Assert.Equal(ProducerRules.DefaultMemoryRetention, options.ToServerOptions().MemoryProducerRetention);
    }

    [Fact]
    public void The_defaults_are_the_engine_s_defaults()
    {
        var options = new DurableStreamHostOptions();
        var server = new DurableStreamServerOptions();
        var file = new FileStreamStoreOptions { DataDirectory = "." };

        Assert.Equal((server.Host, server.Port, server.LongPollTimeout, server.MaxAppendBytes), (options.Host, options.Port, options.LongPollTimeout, options.MaxAppendBytes));
        Assert.Equal((file.Durability, file.SyncInterval), (options.Durability, options.SyncInterval));
        Assert.Equal(server.CorsOrigins, options.CorsOrigins);
        Assert.True(options.Subscriptions);
        Assert.True(options.Inspector);
    }

    private static bool Same(object? a, object? b) => a is System.Collections.IEnumerable x and not string && b is System.Collections.IEnumerable y and not string
        ? x.Cast<object>().SequenceEqual(y.Cast<object>())
        : Equals(a, b);

    private static string Format(object? value) => value is System.Collections.IEnumerable e and not string ? string.Join(",", e.Cast<object>()) : value?.ToString() ?? "null";

    private static async Task<bool> AcceptsConnectionsAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
