using System.Net;
using System.Text.Json;
using DurableStreams.Server;
using DurableStreams.Core.Memory;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

public sealed class ControlApiTests : IAsyncLifetime
{
    private const string Zero = "0000000000000000_0000000000000000";
    private readonly MemoryStreamStore _store = new(new MemoryStreamStoreOptions());
    private SubscriptionHarness _harness = null!;

    public async ValueTask InitializeAsync() =>
        _harness = await SubscriptionHarness.StartAsync(_store, new ObservedStateStore(new MemorySubscriptionStateStore()), TimeProvider.System);

    public async ValueTask DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task A_PUT_creates_re_confirms_an_identical_configuration_and_refuses_a_different_one()
    {
        const string Body = """{"type":"webhook","pattern":"a/*","streams":["x","y"],"webhook":{"url":"https://hooks.example/h"},"description":"d"}""";
        const string Reordered = """{"description":"d","webhook":{"url":"https://hooks.example/h"},"streams":["/y/","x","x"],"pattern":"a/*","type":"webhook","lease_ttl_ms":30000}""";

        using var created = await _harness.PutJsonAsync("__ds/subscriptions/s1", Body);
        using var confirmed = await _harness.PutJsonAsync("__ds/subscriptions/s1", Reordered);
        using var conflict = await _harness.PutJsonAsync("__ds/subscriptions/s1", Body.Replace("\"d\"", "\"other\"", StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, confirmed.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Equal("SUBSCRIPTION_ALREADY_EXISTS", await ErrorCodeAsync(conflict));
        var view = await _harness.GetJsonAsync("__ds/subscriptions/s1");
        Assert.Equal(30_000, view.GetProperty("lease_ttl_ms").GetInt32());
        Assert.Equal("active", view.GetProperty("status").GetString());
        Assert.False(view.TryGetProperty("webhook_secret", out _));
    }

    [Theory]
    [InlineData(999, HttpStatusCode.BadRequest)]
    [InlineData(1_000, HttpStatusCode.Created)]
    [InlineData(600_000, HttpStatusCode.Created)]
    [InlineData(600_001, HttpStatusCode.BadRequest)]
    public async Task The_lease_must_be_between_one_second_and_ten_minutes(int lease, HttpStatusCode expected)
    {
        using var response = await _harness.PutJsonAsync("__ds/subscriptions/lease-" + lease, $$"""{"type":"pull-wake","streams":["a"],"wake_stream":"w","lease_ttl_ms":{{lease}}}""");

        Assert.Equal(expected, response.StatusCode);
        if (expected == HttpStatusCode.BadRequest)
        {
            Assert.Equal("INVALID_REQUEST", await ErrorCodeAsync(response));
        }
    }

    [Theory]
    [InlineData("""{"type":"webhook","webhook":{"url":"https://hooks.example/h"}}""")]
    [InlineData("""{"type":"queue","streams":["a"]}""")]
    [InlineData("""{"type":"webhook","streams":["a"]}""")]
    [InlineData("""{"type":"pull-wake","streams":["a"]}""")]
    [InlineData("""[1]""")]
    [InlineData("""{"type":""")]
    public async Task Invalid_configurations_answer_400_INVALID_REQUEST(string body)
    {
        using var response = await _harness.PutJsonAsync("__ds/subscriptions/bad", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("INVALID_REQUEST", await ErrorCodeAsync(response));
    }

    [Fact]
    public async Task Existing_streams_are_back_filled_at_their_tail_and_new_ones_are_linked_before_their_first_append()
    {
        using (var old = await _harness.PutJsonAsync("feed/old", "{\"n\":1}"))
        {
            Assert.Equal(HttpStatusCode.Created, old.StatusCode);
        }
        var oldTail = (await _store.GetMetadataAsync("feed/old", TestContext.Current.CancellationToken)).Info!.Tail.ToString();
        using (await _harness.PutJsonAsync("__ds/subscriptions/fill", """{"type":"webhook","pattern":"feed/*","webhook":{"url":"https://hooks.example/h"}}"""))
        {
        }

        var view = await _harness.GetJsonAsync("__ds/subscriptions/fill");
        var link = Assert.Single(view.GetProperty("streams").EnumerateArray().ToArray());
        Assert.Equal(("feed/old", "glob", oldTail), (link.GetProperty("path").GetString(), link.GetProperty("link_type").GetString(), link.GetProperty("acked_offset").GetString()));

        using (await _harness.PutJsonAsync("feed/new", "{\"n\":1}"))
        {
        }
        var wake = JsonDocument.Parse((await _harness.Webhooks.NextRequestAsync()).Body).RootElement;
        var pending = Assert.Single(wake.GetProperty("streams").EnumerateArray().ToArray());
        Assert.Equal("feed/new", pending.GetProperty("path").GetString());
        Assert.Equal(Zero, pending.GetProperty("acked_offset").GetString());
        Assert.True(pending.GetProperty("has_pending").GetBoolean());
    }

    [Fact]
    public async Task Explicit_links_win_over_glob_links_and_removing_one_keeps_the_glob_link()
    {
        using (await _harness.PutJsonAsync("box/a", "{}"))
        {
        }
        using (await _harness.PutJsonAsync("__ds/subscriptions/mix", """{"type":"pull-wake","pattern":"box/*","wake_stream":"w"}"""))
        {
        }

        using (var add = await _harness.PostJsonAsync("__ds/subscriptions/mix/streams", """{"streams":["box/a","other/b"]}"""))
        {
            Assert.Equal(HttpStatusCode.NoContent, add.StatusCode);
        }
        Assert.Equal(["explicit", "explicit"], await LinkTypesAsync("box/a", "other/b"));

        using (var remove = await _harness.Client.DeleteAsync("__ds/subscriptions/mix/streams/box%2Fa", TestContext.Current.CancellationToken))
        using (var removeOther = await _harness.Client.DeleteAsync("__ds/subscriptions/mix/streams/other/b", TestContext.Current.CancellationToken))
        using (var removeAbsent = await _harness.Client.DeleteAsync("__ds/subscriptions/mix/streams/none", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, remove.StatusCode);
            Assert.Equal(HttpStatusCode.NoContent, removeOther.StatusCode);
            Assert.Equal(HttpStatusCode.NoContent, removeAbsent.StatusCode);
        }
        Assert.Equal(["glob", "none"], await LinkTypesAsync("box/a", "other/b"));

        using (await _harness.Client.DeleteAsync("box/a", TestContext.Current.CancellationToken))
        {
        }
        Assert.Equal(["none", "none"], await LinkTypesAsync("box/a", "other/b"));
    }

    [Fact]
    public async Task Pull_wake_claims_are_fenced_by_token_generation_and_wake_id()
    {
        using (await _harness.PutJsonAsync("wake/q", "[]"))
        {
        }
        using (await _harness.PutJsonAsync("__ds/subscriptions/q", """{"type":"pull-wake","streams":["work/1"],"wake_stream":"wake/q"}"""))
        {
        }
        using (var idle = await _harness.PostJsonAsync("__ds/subscriptions/q/claim", """{"worker":"w1"}"""))
        {
            Assert.Equal(HttpStatusCode.Conflict, idle.StatusCode);
            Assert.Equal("NO_PENDING_WORK", await ErrorCodeAsync(idle));
        }
        using (await _harness.PutJsonAsync("work/1", "{\"n\":1}"))
        {
        }
        using var claim = await _harness.PostJsonAsync("__ds/subscriptions/q/claim", """{"worker":"w1"}""");
        var claimed = JsonDocument.Parse(await claim.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        var token = claimed.GetProperty("token").GetString()!;
        var wakeId = claimed.GetProperty("wake_id").GetString();
        var generation = claimed.GetProperty("generation").GetInt64();

        using (var noToken = await _harness.PostJsonAsync("__ds/subscriptions/q/ack", $$"""{"wake_id":"{{wakeId}}","generation":{{generation}}}"""))
        using (var badToken = await _harness.PostJsonAsync("__ds/subscriptions/q/ack", $$"""{"wake_id":"{{wakeId}}","generation":{{generation}}}""", token + "x"))
        using (var staleGeneration = await _harness.PostJsonAsync("__ds/subscriptions/q/ack", $$"""{"wake_id":"{{wakeId}}","generation":{{generation - 1}}}""", token))
        using (var otherWake = await _harness.PostJsonAsync("__ds/subscriptions/q/release", $$"""{"wake_id":"w_other","generation":{{generation}}}""", token))
        using (var heartbeat = await _harness.PostJsonAsync("__ds/subscriptions/q/ack", $$"""{"wake_id":"{{wakeId}}","generation":{{generation}}}""", token))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
            Assert.Equal("TOKEN_INVALID", await ErrorCodeAsync(badToken));
            Assert.Equal("FENCED", await ErrorCodeAsync(staleGeneration));
            Assert.Equal("FENCED", await ErrorCodeAsync(otherWake));
            Assert.Equal(HttpStatusCode.OK, heartbeat.StatusCode);
        }
        using (var release = await _harness.PostJsonAsync("__ds/subscriptions/q/release", $$"""{"wake_id":"{{wakeId}}","generation":{{generation}}}""", token))
        using (var again = await _harness.PostJsonAsync("__ds/subscriptions/q/release", $$"""{"wake_id":"{{wakeId}}","generation":{{generation}}}""", token))
        {
            Assert.Equal(HttpStatusCode.NoContent, release.StatusCode);
            Assert.Equal("FENCED", await ErrorCodeAsync(again));
        }
        // Work remains after the release, so a later claim gets a new generation.
        using var reclaim = await _harness.PostJsonAsync("__ds/subscriptions/q/claim", """{"worker":"w2"}""");
        Assert.Equal(HttpStatusCode.OK, reclaim.StatusCode);
        var reclaimed = JsonDocument.Parse(await reclaim.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        Assert.True(reclaimed.GetProperty("generation").GetInt64() > generation);
    }

    [Fact]
    public async Task Unknown_subscriptions_and_control_paths_answer_404_SUBSCRIPTION_NOT_FOUND()
    {
        using var get = await _harness.Client.GetAsync("__ds/subscriptions/none", TestContext.Current.CancellationToken);
        using var other = await _harness.Client.GetAsync("__ds/elsewhere", TestContext.Current.CancellationToken);
        using var delete = await _harness.Client.DeleteAsync("__ds/subscriptions/none", TestContext.Current.CancellationToken);

        Assert.Equal("SUBSCRIPTION_NOT_FOUND", await ErrorCodeAsync(get));
        Assert.Equal("SUBSCRIPTION_NOT_FOUND", await ErrorCodeAsync(other));
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
    }

    [Fact]
    public async Task Without_EnableSubscriptions_the_reserved_prefix_stays_a_plain_404()
    {
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Port = 0 });
        await server.StartAsync(TestContext.Current.CancellationToken);
        using var client = new HttpClient { BaseAddress = server.StreamsUrl };

        using var jwks = await client.GetAsync("__ds/jwks.json", TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.NotFound, jwks.StatusCode);
        Assert.Equal("text/plain", jwks.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>Each path's link type, or <c>none</c> when it is not linked.</summary>
    private async Task<string[]> LinkTypesAsync(params string[] paths)
    {
        var links = (await _harness.GetJsonAsync("__ds/subscriptions/mix")).GetProperty("streams").EnumerateArray()
            .ToDictionary(l => l.GetProperty("path").GetString()!, l => l.GetProperty("link_type").GetString()!);
        return paths.Select(p => links.TryGetValue(p, out var type) ? type : "none").ToArray();
    }

    private static async Task<string?> ErrorCodeAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        return document.RootElement.GetProperty("error").GetProperty("code").GetString();
    }
}
