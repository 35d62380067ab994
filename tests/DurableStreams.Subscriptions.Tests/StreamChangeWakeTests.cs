using System.Net;
using System.Text.Json;
using DurableStreams.Core.Memory;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

/// <summary>
/// Subscriptions hear every change a store commits, whoever made it: the endpoints, the registry hook or the
/// subscription engine itself.
/// </summary>
public sealed class StreamChangeWakeTests
{
    [Fact]
    public async Task An_append_the_registry_hook_makes_to___registry___wakes_a_subscription_whose_pattern_matches_it()
    {
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions());
        await using var harness = await SubscriptionHarness.StartAsync(
            store, new ObservedStateStore(new MemorySubscriptionStateStore()), TimeProvider.System, configure: o => o.Registry = true);
        using (var created = await harness.PutJsonAsync("__ds/subscriptions/registry", """{"type":"webhook","pattern":"__registry__","webhook":{"url":"https://hooks.example/h"}}"""))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        // Not matched by the pattern: only the registry's insert event (appended by the hook, not by a request) is new.
        using (var stream = await harness.PutJsonAsync("orders/1", "{\"n\":1}"))
        {
            Assert.Equal(HttpStatusCode.Created, stream.StatusCode);
        }

        var wake = JsonDocument.Parse((await harness.Webhooks.NextRequestAsync()).Body).RootElement;
        var pending = Assert.Single(wake.GetProperty("streams").EnumerateArray().ToArray());
        Assert.Equal("__registry__", pending.GetProperty("path").GetString());
        Assert.True(pending.GetProperty("has_pending").GetBoolean());
    }
}
