using System.Net;
using System.Text.Json;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

public sealed class FileSubscriptionStateTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task The_file_keeps_every_field_across_a_reopen_and_a_left_over_temp_file_is_ignored()
    {
        using var directory = new TempDirectory();
        var subscription = SubscriptionState.Create("s1", new SubscriptionConfig
        {
            Type = SubscriptionType.Webhook,
            Pattern = "events/**",
            Streams = ["x"],
            WebhookUrl = "https://hooks.example/h",
            LeaseTtlMs = 5_000,
            Description = "d",
        }, Start, "http://127.0.0.1:1/v1/stream");
        subscription.Links["x"] = new SubscriptionLink { Explicit = true, AckedOffset = "0000000000000000_0000000000000007" };
        subscription.Generation = 9;
        subscription.WakeId = "w_1";
        subscription.WakeSnapshot["x"] = "0000000000000000_0000000000000010";
        subscription.LeaseHolder = "webhook";
        subscription.LeaseExpiresAt = Start.AddSeconds(5);
        subscription.RetryCount = 3;
        subscription.NextAttemptAt = Start.AddSeconds(4);
        var key = Webhooks.WebhookSigner.NewKeyState(Start);

        await using (var state = FileSubscriptionStateStore.Open(directory.Path))
        {
            await state.SaveAsync(subscription, TestContext.Current.CancellationToken);
            await state.SaveSigningKeysAsync([key], TestContext.Current.CancellationToken);
            await state.SaveAsync(SubscriptionState.Create("s2", new SubscriptionConfig { Type = SubscriptionType.PullWake, Streams = ["y"], WakeStream = "w" }, Start, null), TestContext.Current.CancellationToken);
            await state.DeleteAsync("s2", TestContext.Current.CancellationToken);
        }
        await File.WriteAllTextAsync(directory.Combine(FileSubscriptionStateStore.FileName + ".tmp"), "{ torn", TestContext.Current.CancellationToken);

        await using var reopened = FileSubscriptionStateStore.Open(directory.Path);
        var snapshot = await reopened.LoadAsync(TestContext.Current.CancellationToken);

        var loaded = Assert.Single(snapshot.Subscriptions);
        Assert.Equal(JsonSerializer.Serialize(subscription), JsonSerializer.Serialize(loaded));
        Assert.Equal(key.Kid, Assert.Single(snapshot.SigningKeys).Kid);
        Assert.False(File.Exists(directory.Combine(FileSubscriptionStateStore.FileName + ".tmp")));
    }

    [Fact]
    public async Task After_a_restart_on_the_file_store_the_subscription_cursor_lease_pending_wake_and_key_survive()
    {
        using var directory = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        string kid;
        string ackedOffset;
        string firstTail;

        // First life: a pull-wake subscription, two messages, a claim and an ack of the first message (lease kept).
        {
            await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, TimeProvider = time });
            var state = new ObservedStateStore(FileSubscriptionStateStore.Open(directory.Path));
            await using var harness = await SubscriptionHarness.StartAsync(store, state, time);
            using (await harness.PutJsonAsync("wake/pool", "[]"))
            {
            }
            using (var created = await harness.PutJsonAsync("__ds/subscriptions/p1", """{"type":"pull-wake","pattern":"jobs/*","wake_stream":"wake/pool","lease_ttl_ms":10000}"""))
            {
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }
            using (var first = await harness.PutJsonAsync("jobs/a", "{\"n\":1}"))
            {
                firstTail = first.Headers.GetValues("Stream-Next-Offset").Single();
            }
            await state.WaitForSaveAsync(s => s.WakeId is not null);
            using (await harness.PostJsonAsync("jobs/a", "{\"n\":2}"))
            {
            }
            using var claim = await harness.PostJsonAsync("__ds/subscriptions/p1/claim", """{"worker":"worker-1"}""");
            Assert.Equal(HttpStatusCode.OK, claim.StatusCode);
            var claimed = JsonDocument.Parse(await claim.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
            var ack = $$"""{"wake_id":"{{claimed.GetProperty("wake_id").GetString()}}","generation":{{claimed.GetProperty("generation").GetInt64()}},"acks":[{"stream":"jobs/a","offset":"{{firstTail}}"}]}""";
            using var acked = await harness.PostJsonAsync("__ds/subscriptions/p1/ack", ack, claimed.GetProperty("token").GetString());
            Assert.Equal(HttpStatusCode.OK, acked.StatusCode);
            Assert.Equal(1, claimed.GetProperty("generation").GetInt64());
            kid = (await harness.GetJsonAsync("__ds/jwks.json")).GetProperty("keys")[0].GetProperty("kid").GetString()!;
            ackedOffset = firstTail;
        }

        // Second life: same directory, same clock.
        {
            await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, TimeProvider = time });
            var state = new ObservedStateStore(FileSubscriptionStateStore.Open(directory.Path));
            await using var harness = await SubscriptionHarness.StartAsync(store, state, time);

            var jwks = await harness.GetJsonAsync("__ds/jwks.json");
            Assert.Equal(kid, Assert.Single(jwks.GetProperty("keys").EnumerateArray().ToArray()).GetProperty("kid").GetString());
            var view = await harness.GetJsonAsync("__ds/subscriptions/p1");
            Assert.Equal(1, view.GetProperty("generation").GetInt64());
            var link = Assert.Single(view.GetProperty("streams").EnumerateArray().ToArray());
            Assert.Equal(("jobs/a", "glob", ackedOffset), (link.GetProperty("path").GetString(), link.GetProperty("link_type").GetString(), link.GetProperty("acked_offset").GetString()));

            // The lease survived: another worker is refused until it expires.
            using (var busy = await harness.PostJsonAsync("__ds/subscriptions/p1/claim", """{"worker":"worker-2"}"""))
            {
                Assert.Equal(HttpStatusCode.Conflict, busy.StatusCode);
                var error = JsonDocument.Parse(await busy.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.GetProperty("error");
                Assert.Equal("ALREADY_CLAIMED", error.GetProperty("code").GetString());
                Assert.Equal("worker-1", error.GetProperty("current_holder").GetString());
            }

            // When it expires, the pending second message is woken again: a wake event with a new generation.
            time.Advance(TimeSpan.FromSeconds(10));
            var rewoken = await state.WaitForSaveAsync(s => s.Generation == 2 && s.WakeId is not null);
            Assert.Null(rewoken.LeaseHolder);
            using var claim = await harness.PostJsonAsync("__ds/subscriptions/p1/claim", """{"worker":"worker-2"}""");
            Assert.Equal(HttpStatusCode.OK, claim.StatusCode);
            var claimed = JsonDocument.Parse(await claim.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
            Assert.Equal(2, claimed.GetProperty("generation").GetInt64());
            var pending = Assert.Single(claimed.GetProperty("streams").EnumerateArray().ToArray());
            Assert.Equal(ackedOffset, pending.GetProperty("acked_offset").GetString());
            Assert.True(pending.GetProperty("has_pending").GetBoolean());
        }
    }

    [Fact]
    public async Task A_scheduled_webhook_retry_survives_a_restart_and_runs_at_next_attempt_at()
    {
        using var directory = new TempDirectory();
        var time = new FakeTimeProvider(Start);

        {
            await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, TimeProvider = time });
            var state = new ObservedStateStore(FileSubscriptionStateStore.Open(directory.Path));
            await using var harness = await SubscriptionHarness.StartAsync(store, state, time);
            harness.Webhooks.Enqueue(HttpStatusCode.ServiceUnavailable, "{}");
            using (await harness.PutJsonAsync("__ds/subscriptions/hook", """{"type":"webhook","streams":["orders/1"],"webhook":{"url":"https://hooks.example/h"},"lease_ttl_ms":60000}"""))
            {
            }
            using (await harness.PutJsonAsync("orders/1", "{\"n\":1}"))
            {
            }
            await harness.Webhooks.NextRequestAsync();
            var failed = await state.WaitForSaveAsync(s => s.NextAttemptAt is not null);
            Assert.Equal(Start.AddSeconds(1), failed.NextAttemptAt);
        }

        {
            await using var store = FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = directory.Path, TimeProvider = time });
            var state = new ObservedStateStore(FileSubscriptionStateStore.Open(directory.Path));
            await using var harness = await SubscriptionHarness.StartAsync(store, state, time);
            harness.Webhooks.Enqueue(HttpStatusCode.OK, "{\"done\":true}");

            var view = await harness.GetJsonAsync("__ds/subscriptions/hook");
            Assert.Equal("failed", view.GetProperty("status").GetString());
            Assert.Equal(Start.AddSeconds(1).ToUnixTimeMilliseconds(), view.GetProperty("next_attempt_at").GetInt64());

            time.Advance(TimeSpan.FromSeconds(1));
            var retry = JsonDocument.Parse((await harness.Webhooks.NextRequestAsync()).Body).RootElement;
            var done = await state.WaitForSaveAsync(s => s.NextAttemptAt is null && s.WakeId is null);

            Assert.Equal(2, retry.GetProperty("generation").GetInt64());
            var tail = (await store.GetMetadataAsync("orders/1", TestContext.Current.CancellationToken)).Info!.Tail.ToString();
            Assert.Equal(tail, done.Links["orders/1"].AckedOffset);
        }
    }
}
