using System.Buffers.Text;
using System.Net;
using System.Text;
using System.Text.Json;
using DurableStreams.Core.Memory;
using Microsoft.Extensions.Time.Testing;
using NSec.Cryptography;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

public sealed class WebhookDeliveryTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_failed_delivery_is_retried_on_the_backoff_schedule_and_reports_failed_until_it_succeeds()
    {
        var time = new FakeTimeProvider(Start);
        var state = new ObservedStateStore(new MemorySubscriptionStateStore());
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = time });
        await using var harness = await SubscriptionHarness.StartAsync(store, state, time, jitter: 0.5);
        harness.Webhooks.Enqueue(HttpStatusCode.InternalServerError, "{}");
        harness.Webhooks.Enqueue(HttpStatusCode.BadGateway, "{}");
        harness.Webhooks.Enqueue(HttpStatusCode.OK, "{\"done\":true}");

        using (var created = await harness.PutJsonAsync("__ds/subscriptions/retry", """{"type":"webhook","pattern":"events/*","webhook":{"url":"https://hooks.example/h"},"lease_ttl_ms":60000}"""))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        using (await harness.PutJsonAsync("events/a", "{\"n\":1}"))
        {
        }

        var first = await harness.Webhooks.NextRequestAsync();
        var failed = await state.WaitForSaveAsync(s => s.NextAttemptAt is not null);
        Assert.Equal(1, failed.RetryCount);
        Assert.Equal(Start + TimeSpan.FromSeconds(1), failed.NextAttemptAt); // jitter 0.5 = exactly the base delay
        Assert.Null(failed.WakeId);
        Assert.Equal("failed", (await harness.GetJsonAsync("__ds/subscriptions/retry")).GetProperty("status").GetString());

        time.Advance(TimeSpan.FromSeconds(1));
        var second = await harness.Webhooks.NextRequestAsync();
        var failedAgain = await state.WaitForSaveAsync(s => s.RetryCount == 2);
        Assert.Equal(Start + TimeSpan.FromSeconds(1) + TimeSpan.FromSeconds(2), failedAgain.NextAttemptAt);

        time.Advance(TimeSpan.FromSeconds(2));
        var third = await harness.Webhooks.NextRequestAsync();
        var done = await state.WaitForSaveAsync(s => s.NextAttemptAt is null && s.WakeId is null);

        // Each attempt is a new wake with a higher generation; the last one's done acked the stream's tail.
        var generations = new[] { first, second, third }.Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("generation").GetInt64()).ToArray();
        Assert.Equal([1L, 2L, 3L], generations);
        var tail = JsonDocument.Parse(third.Body).RootElement.GetProperty("streams")[0].GetProperty("tail_offset").GetString();
        Assert.Equal(tail, done.Links["events/a"].AckedOffset);
        var view = await harness.GetJsonAsync("__ds/subscriptions/retry");
        Assert.Equal("active", view.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_webhook_carries_a_signature_that_verifies_against_the_served_JWKS()
    {
        var time = TimeProvider.System;
        var state = new ObservedStateStore(new MemorySubscriptionStateStore());
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = time });
        await using var harness = await SubscriptionHarness.StartAsync(store, state, time);

        using (var created = await harness.PutJsonAsync("__ds/subscriptions/signed", """{"type":"webhook","streams":["orders/1"],"webhook":{"url":"https://hooks.example/h"}}"""))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        using (await harness.PutJsonAsync("orders/1", "{\"n\":1}"))
        {
        }
        var (body, signature) = await harness.Webhooks.NextRequestAsync();
        using var jwksResponse = await harness.Client.GetAsync("__ds/jwks.json", TestContext.Current.CancellationToken);
        var jwks = JsonDocument.Parse(await jwksResponse.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;

        Assert.Equal("application/jwk-set+json", jwksResponse.Content.Headers.ContentType?.MediaType);
        var parts = signature!.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var jwk = jwks.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("kid").GetString() == parts["kid"]);
        var key = PublicKey.Import(SignatureAlgorithm.Ed25519, Base64Url.DecodeFromChars(jwk.GetProperty("x").GetString()), KeyBlobFormat.RawPublicKey);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(key, Encoding.UTF8.GetBytes(parts["t"] + "." + body), Base64Url.DecodeFromChars(parts["ed25519"])));
        var payload = JsonDocument.Parse(body).RootElement;
        Assert.Equal("signed", payload.GetProperty("subscription_id").GetString());
        Assert.Equal(new Uri(harness.Server.StreamsUrl, "__ds/subscriptions/signed/callback").ToString(), payload.GetProperty("callback_url").GetString());
    }

    [Fact]
    public async Task A_deleted_subscription_fails_its_in_flight_callback_without_moving_the_cursor()
    {
        var time = TimeProvider.System;
        var state = new ObservedStateStore(new MemorySubscriptionStateStore());
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = time });
        await using var harness = await SubscriptionHarness.StartAsync(store, state, time);
        using (await harness.PutJsonAsync("__ds/subscriptions/gone", """{"type":"webhook","streams":["jobs/1"],"webhook":{"url":"https://hooks.example/h"}}"""))
        {
        }
        using (await harness.PutJsonAsync("jobs/1", "{\"n\":1}"))
        {
        }
        var wake = JsonDocument.Parse((await harness.Webhooks.NextRequestAsync()).Body).RootElement;

        using (var deleted = await harness.Client.DeleteAsync("__ds/subscriptions/gone", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        var ack = $$"""{"wake_id":"{{wake.GetProperty("wake_id").GetString()}}","generation":{{wake.GetProperty("generation").GetInt64()}},"acks":[{"stream":"jobs/1","offset":"{{wake.GetProperty("streams")[0].GetProperty("tail_offset").GetString()}}"}],"done":true}""";
        using var callback = await harness.PostJsonAsync("__ds/subscriptions/gone/callback", ack, wake.GetProperty("callback_token").GetString());

        Assert.Equal(HttpStatusCode.NotFound, callback.StatusCode);
        using var get = await harness.Client.GetAsync("__ds/subscriptions/gone", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
    }
}
