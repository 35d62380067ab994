using System.Net;
using System.Text.Json;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

public sealed class StreamRegistryHooksTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_registry_records_insert_and_delete_events_in_the_reference_shape()
    {
        await using var harness = await ServerHarness.StartWithFakeClockAsync(o => o.Registry = true, Ct);
        using (var empty = await harness.GetAsync("__registry__", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, empty.StatusCode);
            Assert.Equal("application/json", empty.Content.Headers.ContentType?.MediaType);
            Assert.Equal("[]", await empty.Content.ReadAsStringAsync(Ct));
        }

        await harness.CreateAsync("orders/eu", "application/json", null, Ct);
        await harness.CreateAsync("__internal", "text/plain", null, Ct);
        using (var deleted = await harness.SendAsync(HttpMethod.Delete, "orders/eu", null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        using var read = await harness.GetAsync("__registry__", Ct);
        var body = await read.Content.ReadAsStringAsync(Ct);
        var createdAt = ServerHarness.FakeStart.ToUnixTimeMilliseconds();
        var expected = $$$"""
            [{"type":"stream","key":"orders/eu","value":{"path":"orders/eu","contentType":"application/json","createdAt":{{{createdAt}}}},"headers":{"operation":"insert"}},{"type":"stream","key":"orders/eu","headers":{"operation":"delete"}}]
            """;
        Assert.Equal(JsonSerializer.Serialize(JsonDocument.Parse(expected)), JsonSerializer.Serialize(JsonDocument.Parse(body)));
    }

    [Fact]
    public async Task A_fork_s_insert_event_names_its_source_which_head_does_not_report()
    {
        await using var harness = await ServerHarness.StartAsync(o => o.Registry = true, cancellationToken: Ct);
        await harness.CreateAsync("orders/eu", "application/json", null, Ct);
        await harness.CreateAsync("orders/eu-copy", "application/json", null, Ct, ("Stream-Forked-From", harness.Server.StreamsUrl.AbsolutePath + "orders/eu"));

        using var read = await harness.GetAsync("__registry__", Ct);
        using var events = JsonDocument.Parse(await read.Content.ReadAsStringAsync(Ct));

        var values = events.RootElement.EnumerateArray().Select(e => e.GetProperty("value")).ToList();
        Assert.False(values[0].TryGetProperty("forkedFrom", out _));
        Assert.Equal("orders/eu", values[1].GetProperty("forkedFrom").GetString());
    }

    [Fact]
    public async Task Without_the_option_there_is_no_registry_stream()
    {
        await using var harness = await ServerHarness.StartAsync(cancellationToken: Ct);
        await harness.CreateAsync(ServerHarness.NewName(), "text/plain", null, Ct);

        using var read = await harness.GetAsync("__registry__", Ct);

        Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
    }

    [Fact]
    public async Task A_deleted_registry_is_recreated_by_the_next_change()
    {
        await using var harness = await ServerHarness.StartAsync(o => o.Registry = true, cancellationToken: Ct);
        using (var deleted = await harness.SendAsync(HttpMethod.Delete, "__registry__", null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        await harness.CreateAsync("later", "text/plain", null, Ct);

        using var read = await harness.GetAsync("__registry__", Ct);
        using var events = JsonDocument.Parse(await read.Content.ReadAsStringAsync(Ct));
        Assert.Equal("later", Assert.Single(events.RootElement.EnumerateArray()).GetProperty("key").GetString());
    }
}
