using System.CommandLine;
using DurableStreams.Server;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Cli.Tests;

public sealed class ServeCommandTests
{
    [Fact]
    public void Defaults_match_the_server_defaults()
    {
        var options = Parse("serve");
        var defaults = new DurableStreamServerOptions();

        Assert.Equal(defaults.Host, options.Host);
        Assert.Equal(defaults.Port, options.Port);
        Assert.Equal(HostedStoreKind.File, options.Store);
        Assert.Equal(ServeOptions.DefaultDataDirectory, options.DataDirectory);
        Assert.Equal(DurabilityMode.Always, options.Durability);
        Assert.Equal(TimeSpan.FromMilliseconds(100), options.SyncInterval);
        Assert.Equal(defaults.LongPollTimeout, options.LongPollTimeout);
        Assert.Equal(defaults.SseReconnectInterval, options.SseReconnectInterval);
        Assert.Equal(defaults.CorsOrigins, options.CorsOrigins);
        Assert.Equal(defaults.MaxAppendBytes, options.MaxAppendBytes);
        Assert.Equal(defaults.MaxReadChunkBytes, options.MaxReadChunkBytes);
    }

    [Fact]
    public void Reads_every_option_into_the_server_options()
    {
        var options = Parse(
            "serve", "--memory", "--host", "127.0.0.2", "--port", "0",
            "--long-poll-timeout", "500ms", "--sse-reconnect-interval", "2m",
            "--cors-origin", "https://a.example", "--cors-origin", "https://b.example",
            "--max-append-bytes", "1024", "--max-read-chunk-bytes", "4096", "--max-buffered-body-bytes", "8192");

        var server = options.ToServerOptions();

        Assert.Equal("127.0.0.2", server.Host);
        Assert.Equal(0, server.Port);
        Assert.Null(server.Store);
        Assert.Equal(TimeSpan.FromMilliseconds(500), server.LongPollTimeout);
        Assert.Equal(TimeSpan.FromMinutes(2), server.SseReconnectInterval);
        Assert.Equal(["https://a.example", "https://b.example"], server.CorsOrigins);
        Assert.Equal(1024, server.MaxAppendBytes);
        Assert.Equal(4096, server.MaxReadChunkBytes);
        Assert.Equal(8192, server.MaxBufferedBodyBytes);
    }

    [Fact]
    public void The_buffered_body_budget_defaults_to_256_MiB()
    {
        Assert.Equal(256L * 1024 * 1024, Parse("serve", "--memory").ToServerOptions().MaxBufferedBodyBytes);
    }

    [Fact]
    public async Task A_buffered_body_budget_below_the_largest_append_exits_2_naming_both_options()
    {
        var run = await RunAsync("serve", "--memory", "--max-append-bytes", "2048", "--max-buffered-body-bytes", "1024");

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        var line = Assert.Single(Lines(run.Error));
        Assert.Contains("--max-buffered-body-bytes (1024) must be at least --max-append-bytes (2048)", line, StringComparison.Ordinal);
    }

    [Fact]
    public void Reads_the_operations_options_into_the_server_options()
    {
        var options = Parse(
            "serve", "--memory", "--registry", "--metrics", "--compression", "--log-level", "debug", "--log-format", "json",
            "--max-live-readers", "10", "--rate-limit", "100", "--rate-limit-window", "10s", "--request-headers-timeout", "5s",
            "--min-request-body-rate", "100", "--max-stream-name-bytes", "512", "--max-stream-name-segments", "8",
            "--tls-cert", "cert.pem", "--tls-key", "key.pem");

        var server = options.ToServerOptions();

        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Debug, options.LogLevel);
        Assert.Equal("json", options.LogFormat);
        Assert.True(server.Registry);
        Assert.True(server.Metrics);
        Assert.True(server.Compression);
        Assert.Equal(10, server.MaxLiveReaders);
        Assert.Equal(100, server.RateLimitPermits);
        Assert.Equal(TimeSpan.FromSeconds(10), server.RateLimitWindow);
        Assert.Equal(TimeSpan.FromSeconds(5), server.RequestHeadersTimeout);
        Assert.Equal(100, server.MinRequestBodyDataRate);
        Assert.Equal(512, server.MaxStreamNameBytes);
        Assert.Equal(8, server.MaxStreamNameSegments);
        Assert.Equal(Path.GetFullPath("cert.pem"), server.TlsCertificatePath);
        Assert.Equal(Path.GetFullPath("key.pem"), server.TlsKeyPath);

        var defaults = Parse("serve", "--memory").ToServerOptions();
        Assert.False(defaults.Registry || defaults.Metrics || defaults.Compression);
        Assert.Null(defaults.MaxLiveReaders);
        Assert.Null(defaults.RateLimitPermits);
        Assert.Null(defaults.TlsCertificatePath);
    }

    [Fact]
    public void H2c_and_max_http2_streams_reach_the_server_options_and_default_to_off_and_1000()
    {
        var server = Parse("serve", "--memory", "--h2c", "--max-http2-streams", "250").ToServerOptions();
        var defaults = Parse("serve", "--memory").ToServerOptions();

        Assert.True(server.CleartextHttp2);
        Assert.Equal(250, server.MaxHttp2StreamsPerConnection);
        Assert.False(defaults.CleartextHttp2);
        Assert.Equal(1000, defaults.MaxHttp2StreamsPerConnection);
    }

    [Fact]
    public async Task H2c_with_tls_exits_2_explaining_that_tls_offers_http2_by_alpn()
    {
        var run = await RunAsync("serve", "--memory", "--h2c", "--tls-cert", "cert.pem", "--tls-key", "key.pem");

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        var line = Assert.Single(Lines(run.Error));
        Assert.Contains("--h2c cannot be combined with --tls-cert", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("100001")]
    public async Task Max_http2_streams_out_of_range_exits_2(string value)
    {
        var run = await RunAsync("serve", "--memory", "--max-http2-streams", value);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.Contains("--max-http2-streams", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("auto", CachePolicy.Auto)]
    [InlineData("private", CachePolicy.Private)]
    [InlineData("PUBLIC", CachePolicy.Public)]
    public void Cache_control_sets_the_cache_policy_and_defaults_to_auto(string value, CachePolicy expected)
    {
        Assert.Equal(expected, Parse("serve", "--memory", "--cache-control", value).ToServerOptions().CachePolicy);
        Assert.Equal(CachePolicy.Auto, Parse("serve", "--memory").ToServerOptions().CachePolicy);
    }

    [Fact]
    public void Reads_the_store_limits_into_every_store_s_options()
    {
        var memory = Parse("serve", "--memory", "--max-fork-depth", "7", "--max-messages-per-append", "500");
        var file = Parse("serve", "--data-dir", "data", "--max-fork-depth", "8", "--max-messages-per-append", "600");
        var postgres = Parse("serve", "--postgres", "Host=localhost", "--max-fork-depth", "9", "--max-messages-per-append", "700");

        Assert.Equal((7, 500), (memory.ToMemoryStoreOptions().MaxForkDepth, memory.ToMemoryStoreOptions().MaxMessagesPerAppend));
        Assert.Equal((8, 600), (file.ToFileStoreOptions().MaxForkDepth, file.ToFileStoreOptions().MaxMessagesPerAppend));
        Assert.Equal((9, 700), (postgres.ToPostgresStoreOptions().MaxForkDepth, postgres.ToPostgresStoreOptions().MaxMessagesPerAppend));
        var defaults = Parse("serve", "--memory").ToMemoryStoreOptions();
        Assert.Equal((100, 100_000), (defaults.MaxForkDepth, defaults.MaxMessagesPerAppend));
    }

    [Fact]
    public void The_default_data_directory_is_durable_streams_under_local_application_data()
    {
        var localData = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
        Assert.SkipWhen(string.IsNullOrEmpty(localData), "This system reports no local application data folder.");

        Assert.Equal(Path.Combine(localData, "durable-streams"), ServeOptions.DefaultDataDirectory);
        if (OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("XDG_DATA_HOME") is null or "")
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            Assert.Equal(Path.Combine(home, ".local", "share", "durable-streams"), ServeOptions.DefaultDataDirectory);
        }
    }

    [Theory]
    [InlineData("--data-dir")]
    [InlineData("-d")]
    public void Reads_the_file_store_options_into_the_store_options(string dataDirOption)
    {
        var options = Parse("serve", dataDirOption, "some/data", "--durability", "interval", "--sync-interval", "250ms");

        var store = options.ToFileStoreOptions();

        Assert.Equal(HostedStoreKind.File, options.Store);
        Assert.Equal(Path.GetFullPath("some/data"), options.DataDirectory);
        Assert.True(Path.IsPathFullyQualified(store.DataDirectory));
        Assert.Equal(options.DataDirectory, store.DataDirectory);
        Assert.Equal(DurabilityMode.Interval, store.Durability);
        Assert.Equal(TimeSpan.FromMilliseconds(250), store.SyncInterval);
    }

    [Fact]
    public void Producer_retention_reaches_every_store_and_defaults_per_store()
    {
        var given = Parse("serve", "--data-dir", "some/data", "--producer-retention", "48h");
        var defaults = Parse("serve", "--data-dir", "some/data");

        Assert.Equal(TimeSpan.FromHours(48), given.ToFileStoreOptions().ProducerRetention);
        Assert.Equal(TimeSpan.FromHours(48), given.ToServerOptions().MemoryProducerRetention);
        Assert.Equal(TimeSpan.FromDays(30), defaults.ToFileStoreOptions().ProducerRetention);
        Assert.Equal(TimeSpan.FromDays(7), defaults.ToServerOptions().MemoryProducerRetention);
        Assert.Equal(TimeSpan.FromDays(30), Parse("serve", "--postgres", "Host=x", "--producer-retention", "720h").ToPostgresStoreOptions().ProducerRetention);
        // serve --memory builds its memory store itself (so the store limits apply): the retention must reach it too.
        Assert.Equal(TimeSpan.FromHours(48), Parse("serve", "--memory", "--producer-retention", "48h").ToMemoryStoreOptions().ProducerRetention);
        Assert.Equal(TimeSpan.FromDays(7), Parse("serve", "--memory").ToMemoryStoreOptions().ProducerRetention);
    }

    [Theory]
    [InlineData("always", DurabilityMode.Always)]
    [InlineData("interval", DurabilityMode.Interval)]
    [InlineData("none", DurabilityMode.None)]
    [InlineData("None", DurabilityMode.None)]
    public void Reads_each_durability_mode(string text, DurabilityMode expected)
    {
        var options = Parse("serve", "--durability", text);

        Assert.Equal(expected, options.Durability);
        Assert.Equal(expected, options.ToFileStoreOptions().Durability);
        Assert.Equal(text.ToLowerInvariant(), ServeCommand.FormatDurability(expected));
    }

    [Fact]
    public void Memory_selects_the_memory_store_and_no_data_directory()
    {
        var options = Parse("serve", "--memory");

        Assert.Equal(HostedStoreKind.Memory, options.Store);
        Assert.Null(options.DataDirectory);
        Assert.Null(options.ToServerOptions().Store);
    }

    [Fact]
    public void Subscriptions_are_on_by_default_and_no_subscriptions_turns_them_off()
    {
        Assert.True(Parse("serve", "--memory").ToServerOptions().EnableSubscriptions);
        Assert.False(Parse("serve", "--memory", "--no-subscriptions").ToServerOptions().EnableSubscriptions);
    }

    [Fact]
    public void Local_webhooks_are_off_by_default_and_allow_local_webhooks_turns_them_on()
    {
        Assert.False(Parse("serve", "--memory").ToServerOptions().Subscriptions.AllowLocalhostHttp);
        Assert.True(Parse("serve", "--memory", "--allow-local-webhooks").ToServerOptions().Subscriptions.AllowLocalhostHttp);
    }

    [Fact]
    public void A_plain_number_is_read_as_seconds()
    {
        var options = Parse("serve", "--long-poll-timeout", "30", "-p", "8080");

        Assert.Equal(TimeSpan.FromSeconds(30), options.LongPollTimeout);
        Assert.Equal(8080, options.Port);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("0.0.0.0")]
    [InlineData("::1")]
    public void Accepts_ip_addresses_and_localhost_as_host(string host)
    {
        Assert.Equal(host, Parse("serve", "--host", host).Host);
    }

    [Theory]
    [InlineData("--long-poll-timeout", "5x", "Invalid value '5x' for --long-poll-timeout: expected a whole number")]
    [InlineData("--long-poll-timeout", "0s", "Invalid value '0s' for --long-poll-timeout: the duration must be greater than zero.")]
    [InlineData("--sse-reconnect-interval", "1.5s", "Invalid value '1.5s' for --sse-reconnect-interval: expected a whole number")]
    [InlineData("--port", "abc", "Invalid value 'abc' for --port: expected a whole number from 0 to 65535.")]
    [InlineData("--port", "65536", "Invalid value '65536' for --port: expected a whole number from 0 to 65535.")]
    [InlineData("--port", "-1", "Invalid value '-1' for --port: expected a whole number from 0 to 65535.")]
    [InlineData("--max-append-bytes", "0", "Invalid value '0' for --max-append-bytes: expected a whole number from 1 to ")]
    [InlineData("--max-read-chunk-bytes", "4294967296", "Invalid value '4294967296' for --max-read-chunk-bytes: expected a whole number from 0 to 2147483647.")]
    [InlineData("--host", "example.com", "Invalid value 'example.com' for --host: expected an IP address or 'localhost'.")]
    [InlineData("--host", " ", "Invalid value ' ' for --host: expected an IP address or 'localhost'.")]
    [InlineData("--cors-origin", "", "Invalid value '' for --cors-origin: an origin must not be empty.")]
    [InlineData("--durability", "sometimes", "Invalid value 'sometimes' for --durability: expected always, interval or none.")]
    [InlineData("--durability", "", "Invalid value '' for --durability: expected always, interval or none.")]
    [InlineData("--sync-interval", "fast", "Invalid value 'fast' for --sync-interval: expected a whole number")]
    [InlineData("--sync-interval", "0ms", "Invalid value '0ms' for --sync-interval: the duration must be greater than zero.")]
    [InlineData("--data-dir", "", "Invalid value '' for --data-dir: expected a directory path.")]
    [InlineData("--cache-control", "shared", "Invalid value 'shared' for --cache-control: expected auto, private or public.")]
    [InlineData("--cache-control", "1", "Invalid value '1' for --cache-control: expected auto, private or public.")]
    [InlineData("-d", " ", "Invalid value ' ' for --data-dir: expected a directory path.")]
    public async Task An_invalid_value_exits_2_with_one_line_naming_the_option(string option, string value, string expectedStart)
    {
        var run = await RunAsync("serve", option, value);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.Equal("", run.Output);
        var line = Assert.Single(Lines(run.Error));
        Assert.StartsWith(expectedStart, line, StringComparison.Ordinal);
        Assert.Contains(option == "-d" ? "--data-dir" : option, line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--data-dir", "--data-dir", "x")]
    [InlineData("--data-dir", "-d", "x")]
    [InlineData("--durability", "--durability", "none")]
    [InlineData("--sync-interval", "--sync-interval", "1s")]
    public async Task Memory_with_a_file_store_option_exits_2_naming_both(string option, params string[] args)
    {
        var run = await RunAsync(["serve", "--memory", .. args]);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.Equal("", run.Output);
        var line = Assert.Single(Lines(run.Error));
        Assert.Equal($"{option} cannot be used with --memory: the memory store keeps nothing on disk.", line);
    }

    [Fact]
    public async Task Memory_with_every_file_store_option_gets_one_line_per_option()
    {
        var run = await RunAsync("serve", "--data-dir", "x", "--memory", "--durability", "interval", "--sync-interval", "1s");

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.Collection(
            Lines(run.Error),
            line => Assert.StartsWith("--data-dir cannot be used with --memory", line, StringComparison.Ordinal),
            line => Assert.StartsWith("--durability cannot be used with --memory", line, StringComparison.Ordinal),
            line => Assert.StartsWith("--sync-interval cannot be used with --memory", line, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--sync-interval", "1s")]
    [InlineData("--durability", "always", "--sync-interval", "1s")]
    [InlineData("--sync-interval", "1s", "--durability", "none")]
    public async Task Sync_interval_without_interval_durability_exits_2(params string[] args)
    {
        var run = await RunAsync(["serve", .. args]);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.Equal("--sync-interval applies only with --durability interval.", Assert.Single(Lines(run.Error)));
    }

    [Theory]
    [InlineData("--durability", "bogus", "--sync-interval", "1s")]
    [InlineData("--durability", "none", "--sync-interval", "1x")]
    public async Task An_invalid_store_option_does_not_also_report_a_sync_interval_mismatch(params string[] args)
    {
        var run = await RunAsync(["serve", .. args]);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.StartsWith("Invalid value", Assert.Single(Lines(run.Error)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_invalid_option_gets_its_own_line()
    {
        var run = await RunAsync("serve", "--port", "x", "--long-poll-timeout", "y");

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.Collection(
            Lines(run.Error),
            line => Assert.Contains("--port", line, StringComparison.Ordinal),
            line => Assert.Contains("--long-poll-timeout", line, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("serve", "--bogus")]
    [InlineData("serve", "--long-poll-timeout")]
    [InlineData("no-such-command")]
    public async Task An_unknown_or_incomplete_command_line_exits_2(params string[] args)
    {
        var run = await RunAsync(args);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.NotEmpty(Lines(run.Error));
    }

    [Fact]
    public async Task Help_lists_every_option_with_duration_defaults_in_short_form()
    {
        var run = await RunAsync("serve", "--help");

        Assert.Equal(0, run.ExitCode);
        foreach (var option in new[] { "--host", "--port", "--data-dir", "-d", "--durability <always|interval|none>", "--sync-interval", "--memory", "--long-poll-timeout", "--sse-reconnect-interval", "--cors-origin", "--max-append-bytes", "--max-read-chunk-bytes", "--no-subscriptions" })
        {
            Assert.Contains(option, run.Output, StringComparison.Ordinal);
        }

        Assert.Contains("(default: 30s)", run.Output, StringComparison.Ordinal);
        Assert.Contains("(default: 1m)", run.Output, StringComparison.Ordinal);
        Assert.Contains("(default: 100ms)", run.Output, StringComparison.Ordinal);
        Assert.Contains("(default: always)", run.Output, StringComparison.Ordinal);
        if (ServeOptions.DefaultDataDirectory is { } dataDirectory)
        {
            Assert.Contains($"(default: {dataDirectory})", Unwrap(run.Output), StringComparison.Ordinal);
        }
    }

    private static ServeOptions Parse(params string[] args) => CliRun.ParseServe(args);

    private static Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args) =>
        CliRun.InvokeAsync(args, TestContext.Current.CancellationToken);

    // Help wraps long descriptions to the console width; a path may be split across lines.
    private static string Unwrap(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\s*\n\s*", " ");

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
