using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// The OpenTelemetry MeterProvider behind /metrics listens to every meter named <c>DurableStreams.Server</c> in the
/// process, so the metrics test runs alone: other tests' hosts (a full WebApplication registers a meter factory) would
/// otherwise add their own instruments of the same name to the scrape.
/// </summary>
[CollectionDefinition(nameof(MetricsCollection), DisableParallelization = true)]
public sealed class MetricsCollection;

/// <summary>/metrics, in the non-parallel <see cref="MetricsCollection"/>.</summary>
[Collection(nameof(MetricsCollection))]
public sealed partial class ServerMetricsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Metrics_are_served_in_Prometheus_text_and_move_after_appends()
    {
        using var directory = new TempDirectory();
        await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, Durability = DurabilityMode.Always });
        await using var harness = await ServerHarness.StartAsync(o =>
        {
            o.Store = store;
            o.Metrics = true;
        }, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "text/plain", null, Ct);
        var before = await ScrapeAsync(harness);

        for (var i = 0; i < 3; i++)
        {
            await harness.AppendAsync(name, "text/plain", "12345", Ct);
        }
        await harness.ReadAllAsync(name, Ct);
        using (var tooLong = await harness.PutAsync(new string('y', 5000), "text/plain", null, Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        }
        var after = await ScrapeAsync(harness);

        Assert.True(Value(after, "durable_streams_appends_total") - Value(before, "durable_streams_appends_total") >= 3, after);
        Assert.True(Value(after, "durable_streams_received_bytes_total") - Value(before, "durable_streams_received_bytes_total") >= 15, after);
        Assert.True(Value(after, "durable_streams_sent_bytes_total") >= 15, after);
        Assert.True(Value(after, "durable_streams_rejected_requests_total{reason=\"bad_name\"}") >= 1, after);
        Assert.True(Value(after, "durable_streams_file_commit_batches_total") - Value(before, "durable_streams_file_commit_batches_total") >= 1, after);
        Assert.Contains("durable_streams_file_commit_duration_seconds_bucket", after, StringComparison.Ordinal);
        Assert.Contains("durable_streams_live_readers", after, StringComparison.Ordinal);
        Assert.Contains("durable_streams_streams", after, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_carry_the_HTTP_server_runtime_and_process_meters_and_name_the_service()
    {
        await using var harness = await ServerHarness.StartAsync(o => o.Metrics = true, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "text/plain", null, Ct);
        await harness.AppendAsync(name, "text/plain", "12345", Ct);
        await harness.ReadAllAsync(name, Ct);
        using (var missing = await harness.GetAsync(ServerHarness.NewName(), Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        var text = await ScrapeAsync(harness);
        var families = PrometheusText.Parse(text);

        var duration = Family(families, text, "http_server_request_duration_seconds", "histogram");
        Assert.Contains(duration.Samples, s => s.Name.EndsWith("_count", StringComparison.Ordinal)
            && s.Labels.TryGetValue("http_route", out var route) && route.StartsWith("/v1/stream", StringComparison.Ordinal)
            && s.Labels.GetValueOrDefault("http_response_status_code") == "404"
            && s.Labels.GetValueOrDefault("http_request_method") == "GET");
        Assert.Contains(duration.Samples, s => s.Labels.ContainsKey("http_route") && s.Labels.GetValueOrDefault("http_response_status_code") == "201");
        Assert.Contains(Family(families, text, "http_server_active_requests", "gauge").Samples, s => s.Value >= 1);
        Family(families, text, "kestrel_active_connections", "gauge");
        Assert.Contains(Family(families, text, "dotnet_gc_heap_total_allocated_bytes_total", "counter").Samples, s => s.Value > 0);
        Assert.Contains(Family(families, text, "dotnet_thread_pool_thread_count_total", "counter").Samples, s => s.Value >= 1);
        Family(families, text, "dotnet_process_cpu_time_seconds_total", "counter");
        Assert.Contains(Family(families, text, "dotnet_process_memory_working_set_bytes", "gauge").Samples, s => s.Value > 0);
        Assert.Contains(Family(families, text, "durable_streams_appends_total", "counter").Samples, s => s.Value >= 1);
        Assert.Contains(Family(families, text, "durable_streams_streams_created_total", "counter").Samples, s => s.Value >= 1);
        var target = Assert.Single(Family(families, text, "target_info", "gauge").Samples);
        Assert.Equal("durable-streams", target.Labels["service_name"]);
    }

    [Fact]
    public async Task An_embedder_names_the_service_through_the_options_and_an_empty_name_is_refused()
    {
        await using var harness = await ServerHarness.StartAsync(o =>
        {
            o.Metrics = true;
            o.MetricsServiceName = "orders-api";
        }, cancellationToken: Ct);

        var families = PrometheusText.Parse(await ScrapeAsync(harness));

        Assert.Equal("orders-api", Assert.Single(families["target_info"].Samples).Labels["service_name"]);
        var error = Assert.Throws<ArgumentException>(() => new DurableStreamServerOptions { Metrics = true, MetricsServiceName = " " }.Validate());
        Assert.Equal(nameof(DurableStreamServerOptions.MetricsServiceName), error.ParamName);
    }

    [Fact]
    public void The_Prometheus_parser_refuses_what_the_text_format_forbids()
    {
        Assert.Equal(2.5, PrometheusText.Parse("# TYPE a counter\na_total{l=\"x\\\"y\\\\\\n\"} 2.5\n")["a_total"].Samples[0].Value);
        Assert.Equal("x\"y\\\n", PrometheusText.Parse("a{l=\"x\\\"y\\\\\\n\"} 1\n")["a"].Samples[0].Labels["l"]);
        foreach (var bad in (string[])[
            "a{l=\"x\\q\"} 1\n", // unknown escape
            "a{l=\"x} 1\n", // unterminated value
            "a{l=x} 1\n", // unquoted value
            "a 1x\n", // bad value
            "a 1\nb 1\na 2\n", // family not contiguous
            "a 1\n# TYPE a gauge\n", // TYPE after samples
            "# TYPE a rate\na 1\n", // unknown type
            "a 1\na 1\n", // duplicate series
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
            "1a 1\n", // bad name
            "a 1", // no final line feed
        ])
        {
            Assert.Throws<FormatException>(() => PrometheusText.Parse(bad));
        }
    }

    private static PrometheusFamily Family(IReadOnlyDictionary<string, PrometheusFamily> families, string text, string name, string type)
    {
        Assert.True(families.TryGetValue(name, out var family), $"{name} is missing from:\n{text}");
        Assert.Equal(type, family.Type);
        Assert.NotEmpty(family.Samples);
        return family;
    }

    [Fact]
    public async Task Without_the_option_there_is_no_metrics_endpoint()
    {
        await using var harness = await ServerHarness.StartAsync(cancellationToken: Ct);

        using var response = await harness.Client.GetAsync(new Uri(harness.Server.BaseUrl, "/metrics"), Ct);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    private static async Task<string> ScrapeAsync(ServerHarness harness)
    {
        using var response = await harness.Client.GetAsync(new Uri(harness.Server.BaseUrl, "/metrics"), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync(Ct);
    }

    /// <summary>The value of the first sample whose name (with labels, if given) matches; 0 when absent.</summary>
    private static double Value(string exposition, string sample)
    {
        var hasLabels = sample.Contains('{', StringComparison.Ordinal);
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith('#'))
            {
                continue;
            }
            var match = SampleLine().Match(line);
            if (!match.Success)
            {
                continue;
            }
            var name = match.Groups["name"].Value;
            var labels = match.Groups["labels"].Value;
            if (hasLabels ? (name + labels).Replace(",otel_scope_name=\"DurableStreams.Server\"", "", StringComparison.Ordinal) == sample || ContainsLabels(name, labels, sample) : name == sample)
            {
                return double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    private static bool ContainsLabels(string name, string labels, string sample)
    {
        var brace = sample.IndexOf('{', StringComparison.Ordinal);
        return name == sample[..brace] && labels.Contains(sample[(brace + 1)..^1], StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\{[^}]*\})?\s+(?<value>\S+)")]
    private static partial Regex SampleLine();
}

/// <summary>Health endpoints, bearer-token authentication and HTTPS with HTTP/2.</summary>
public sealed class ServerOperationsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Healthz_and_readyz_answer_200_for_a_running_server_on_the_file_store()
    {
        using var directory = new TempDirectory();
        await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, Durability = DurabilityMode.None });
        await using var harness = await ServerHarness.StartAsync(o => o.Store = store, cancellationToken: Ct);

        using var health = await harness.Client.GetAsync(new Uri(harness.Server.BaseUrl, "/healthz"), Ct);
        using var ready = await harness.Client.GetAsync(new Uri(harness.Server.BaseUrl, "/readyz"), Ct);

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("ok\n", await health.Content.ReadAsStringAsync(Ct));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Empty(Directory.GetFiles(directory.Path, ".readyz-*"));
    }

    [Fact]
    public async Task Readyz_answers_503_once_the_store_is_disposed()
    {
        using var directory = new TempDirectory();
        var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, Durability = DurabilityMode.None });
        await using var harness = await ServerHarness.StartAsync(o => o.Store = store, cancellationToken: Ct);
        await store.DisposeAsync();

        using var ready = await harness.Client.GetAsync(new Uri(harness.Server.BaseUrl, "/readyz"), Ct);
        using var health = await harness.Client.GetAsync(new Uri(harness.Server.BaseUrl, "/healthz"), Ct);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task With_tokens_requests_need_one_read_tokens_cannot_write_and_preflight_needs_none()
    {
        await using var harness = await ServerHarness.StartAsync(o =>
        {
            o.ReadTokens.Add("reader-secret");
            o.WriteTokens.Add("writer-secret");
            o.CorsOrigins.Clear();
            o.CorsOrigins.Add("https://app.example");
        }, cancellationToken: Ct);
        var name = ServerHarness.NewName();

        using var anonymous = await harness.PutAsync(name, "text/plain", null, Ct);
        using var wrong = await harness.PutAsync(name, "text/plain", null, Ct, ("Authorization", "Bearer nope"));
        using var readerWrites = await harness.PutAsync(name, "text/plain", null, Ct, ("Authorization", "Bearer reader-secret"));
        using var writer = await harness.PutAsync(name, "text/plain", "x", Ct, ("Authorization", "Bearer writer-secret"));
        using var reader = await harness.GetAsync(name, Ct, ("Authorization", "Bearer reader-secret"));
        using var writerReads = await harness.GetAsync(name, Ct, ("Authorization", "Bearer writer-secret"));
        using var preflight = await harness.SendAsync(HttpMethod.Options, name, null, Ct,
            ("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "authorization"));

        await Http.ErrorAsync(anonymous, HttpStatusCode.Unauthorized);
        Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);
        await Http.ErrorAsync(wrong, HttpStatusCode.Unauthorized);
        await Http.ErrorAsync(readerWrites, HttpStatusCode.Forbidden);
        Assert.Contains("insufficient_scope", readerWrites.Headers.WwwAuthenticate.Single().Parameter, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, writer.StatusCode);
        Assert.Equal("x", await reader.Content.ReadAsStringAsync(Ct));
        Assert.Equal(HttpStatusCode.OK, writerReads.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode);
        Assert.Equal("https://app.example", Http.Header(preflight, "Access-Control-Allow-Origin"));
        Assert.Contains("Authorization", Http.Header(preflight, "Access-Control-Allow-Headers"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Https_from_PEM_files_negotiates_HTTP_2()
    {
        using var directory = new TempDirectory();
        var (certificatePath, keyPath) = SelfSignedPem.Write(directory);
        await using var server = new DurableStreamServer(new DurableStreamServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            TlsCertificatePath = certificatePath,
            TlsKeyPath = keyPath,
        });
        await server.StartAsync(Ct);
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.Subject == "CN=127.0.0.1";
        using var client = new HttpClient(handler)
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        Assert.Equal("https", server.BaseUrl.Scheme);
        using var create = await client.PutAsync(new Uri(server.StreamsUrl, "tls"), new StringContent("over h2", new MediaTypeHeaderValue("text/plain")), Ct);
        using var read = await client.GetAsync(new Uri(server.StreamsUrl, "tls"), Ct);

        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        Assert.Equal(HttpVersion.Version20, read.Version);
        Assert.Equal("over h2", await read.Content.ReadAsStringAsync(Ct));
    }
}
