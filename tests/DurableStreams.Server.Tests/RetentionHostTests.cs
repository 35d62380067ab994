using System.Net;
using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>The host starts the retention job when a policy drops data, and stops it before the store closes.</summary>
public sealed class RetentionHostTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal static RetentionPolicies KeepFourOfLogs { get; } = new([new RetentionRule("logs/**", new RetentionPolicy(null, 4))]);

    internal static async Task AppendThreeAsync(IStreamStore store, string name)
    {
        await store.CreateAsync(name, new CreateStreamRequest { ContentType = "text/plain" }, Ct);
        foreach (var body in new[] { "aaaa", "bbbb", "cccc" })
        {
            await store.AppendAsync(name, new AppendRequest { ContentType = "text/plain", Body = System.Text.Encoding.UTF8.GetBytes(body) }, Ct);
        }
    }

    [Fact]
    public async Task The_host_starts_the_retention_job_for_its_store_and_stops_it_on_disposal()
    {
        var host = await DurableStreamHost.OpenAsync(new DurableStreamHostOptions { Port = 0, Retention = KeepFourOfLogs, RetentionInterval = TimeSpan.FromHours(1) }, cancellationToken: Ct);
        await host.StartAsync(Ct);
        var job = host.Retention;
        Assert.NotNull(job);
        await AppendThreeAsync(host.Store, "logs/a");
        await AppendThreeAsync(host.Store, "other");

        var pass = await job.RunPassAsync();

        Assert.Equal(1, pass.Trimmed);
        using (var client = new HttpClient())
        {
            using var below = await client.GetAsync(new Uri(host.Server.StreamsUrl, "logs/a?offset=0000000000000000_0000000000000000"), Ct);
            Assert.Equal(HttpStatusCode.Gone, below.StatusCode);
        }
        Assert.Equal(new StreamOffset(8), (await host.Store.GetMetadataAsync("logs/a", Ct)).Info!.RetainedStart);
        Assert.Equal(StreamOffset.Zero, (await host.Store.GetMetadataAsync("other", Ct)).Info!.RetainedStart);

        await host.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => { _ = job.RunPassAsync(); });
    }

    [Fact]
    public async Task A_retention_interval_that_is_not_positive_is_an_invalid_option_when_a_policy_drops_data()
    {
        var options = new DurableStreamHostOptions { Port = 0, Retention = KeepFourOfLogs, RetentionInterval = TimeSpan.Zero };

        var ex = await Assert.ThrowsAsync<DurableStreamHostException>(() => DurableStreamHost.OpenAsync(options, cancellationToken: Ct));

        Assert.Equal(DurableStreamHostFailure.InvalidOption, ex.Failure);
        Assert.Contains(nameof(DurableStreamHostOptions.RetentionInterval), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_policy_that_drops_data_no_job_runs()
    {
        await using var none = await DurableStreamHost.OpenAsync(new DurableStreamHostOptions { Port = 0 }, cancellationToken: Ct);
        await none.StartAsync(Ct);
        var keepAll = new RetentionPolicies([new RetentionRule("**", RetentionPolicy.KeepAll)]);
        await using var keeping = await DurableStreamHost.OpenAsync(new DurableStreamHostOptions { Port = 0, Retention = keepAll }, cancellationToken: Ct);
        await keeping.StartAsync(Ct);

        Assert.Null(none.Retention);
        Assert.Null(keeping.Retention);
    }
}

public sealed partial class ServerMetricsTests
{
    [Fact]
    public async Task Retention_instruments_are_served_on_metrics()
    {
        await using var host = await DurableStreamHost.OpenAsync(
            new DurableStreamHostOptions { Port = 0, Metrics = true, Retention = RetentionHostTests.KeepFourOfLogs, RetentionInterval = TimeSpan.FromHours(1) },
            cancellationToken: Ct);
        await host.StartAsync(Ct);
        await RetentionHostTests.AppendThreeAsync(host.Store, "logs/a");

        await host.Retention!.RunPassAsync();
        using var client = new HttpClient();
        var text = await client.GetStringAsync(new Uri(host.Server.BaseUrl, "/metrics"), Ct);

        Assert.True(Value(text, "durable_streams_retention_passes_total") >= 1, text);
        Assert.True(Value(text, "durable_streams_retention_streams_trimmed_total") >= 1, text);
        Assert.True(Value(text, "durable_streams_retention_dropped_bytes_total") >= 8, text);
        Assert.Contains("durable_streams_retention_freed_bytes_total", text, StringComparison.Ordinal);
        Assert.Contains("durable_streams_retention_lag_seconds", text, StringComparison.Ordinal);
    }
}
