using System.Net;
using DurableStreams.Client.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>On-demand compaction from the client (issue 18): the report, the generation in metadata, and the errors.</summary>
public sealed class CompactionTests : IAsyncLifetime
{
    private ClientHarness _harness = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DurableStreamClient Client => _harness.Client;

    public async ValueTask InitializeAsync() => _harness = await ClientHarness.StartAsync(cancellationToken: Ct);

    public ValueTask DisposeAsync() => _harness.DisposeAsync();

    private static string Change(string key, string operation, int value) =>
        $$$"""{"type":"user","key":"{{{key}}}","value":{"v":{{{value}}}},"headers":{"operation":"{{{operation}}}"}}""";

    private async Task<string> StateStreamAsync()
    {
        var name = ClientHarness.NewName("state");
        await Client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json" }, Ct);
        for (var i = 0; i < 10; i++)
        {
            await Client.AppendAsync(name, "[" + Change("a", i == 0 ? "insert" : "update", i) + "," + Change("b" + i, "insert", i) + "," + Change("b" + i, "delete", i) + "]", "application/json", cancellationToken: Ct);
        }
        return name;
    }

    [Fact]
    public async Task CompactAsync_reports_the_compaction_and_metadata_shows_the_new_generation()
    {
        var name = await StateStreamAsync();
        var before = await Client.GetMetadataAsync(name, Ct);

        var report = await Client.CompactAsync(name, Ct);
        var after = await Client.GetMetadataAsync(name, Ct);
        var again = await Client.CompactAsync(name, Ct);

        Assert.True(report.Compacted, report.Outcome);
        Assert.Equal(30, report.MessagesBefore);
        Assert.Equal(1, report.LiveKeys);
        Assert.False(report.Partial);
        Assert.InRange(report.BytesAfter, 1, report.BytesBefore - 1);
        Assert.Equal(1, report.OffsetGeneration);
        Assert.Equal(0, before.Generation);
        Assert.Equal(1, after.Generation);
        Assert.Equal(report.RetainedStart, after.RetainedStart);
        Assert.Equal(after.NextOffset, report.CompactedEnd);
        Assert.Equal("notDue", again.Outcome);
    }

    [Fact]
    public async Task CompactAsync_fails_with_NotFound_for_an_unknown_stream_and_Conflict_for_a_byte_stream()
    {
        var bytes = ClientHarness.NewName();
        await Client.CreateAsync(bytes, new CreateStreamOptions { ContentType = "text/plain", Body = "abc"u8.ToArray() }, Ct);

        var unknown = await Assert.ThrowsAsync<DurableStreamException>(() => Client.CompactAsync(ClientHarness.NewName(), Ct));
        var notJson = await Assert.ThrowsAsync<DurableStreamException>(() => Client.CompactAsync(bytes, Ct));

        Assert.Equal(DurableStreamErrorCode.NotFound, unknown.ErrorCode);
        Assert.Equal(DurableStreamErrorCode.Conflict, notJson.ErrorCode);
        Assert.Equal(HttpStatusCode.Conflict, notJson.StatusCode);
    }

    [Fact]
    public async Task CompactAsync_without_the_admin_scope_fails_with_Forbidden()
    {
        await using var harness = await ClientHarness.StartAsync(
            o => { o.WriteTokens.Add("writer"); o.AdminTokens.Add("admin"); },
            configureClient: o => o with { Authorization = "Bearer writer" },
            cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json" }, Ct);

        var error = await Assert.ThrowsAsync<DurableStreamException>(() => harness.Client.CompactAsync(name, Ct));

        Assert.Equal(DurableStreamErrorCode.Forbidden, error.ErrorCode);
        Assert.Contains("admin token", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_compact_URL_is_under_the_base_URL_and_a_stream_elsewhere_is_refused()
    {
        using var client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = new Uri("http://127.0.0.1:1/v1/stream/") });

        Assert.Equal("http://127.0.0.1:1/v1/stream/__ds/compact/a/b%20c", client.CompactUrl("a/b c").AbsoluteUri);
        Assert.Equal("http://127.0.0.1:1/v1/stream/__ds/compact/x", client.CompactUrl("http://127.0.0.1:1/v1/stream/x").AbsoluteUri);
        Assert.Throws<ArgumentException>(() => client.CompactUrl("http://other.example/v1/stream/x"));
    }
}
