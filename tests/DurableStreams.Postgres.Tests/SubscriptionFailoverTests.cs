using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>A <c>serve --postgres</c> node is killed while it holds a webhook wake's lease; another node re-wakes.</summary>
public sealed class SubscriptionFailoverTests(PostgresServer server)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_node_killed_during_a_webhook_lease_leaves_the_wake_to_another_node_once_the_lease_expires()
    {
        server.SkipIfUnavailable();
        var connection = server.ConnectionString;
        // The first delivery is held open (the node that sent it dies with it in flight); later ones finish the wake.
        var held = 0;
        await using var receiver = await WebhookReceiver.StartAsync(async (_, aborted) =>
        {
            if (Interlocked.Exchange(ref held, 1) == 0)
            {
                await Task.Delay(Timeout.Infinite, aborted).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            return (200, """{"done":true}""");
        }, Ct);
        var stream = "failover/" + Guid.NewGuid().ToString("N");
        var id = "failover-" + Guid.NewGuid().ToString("N");

        await using var a = await NodeProcess.StartAsync(connection, Ct);
        using var clientA = new HttpClient { BaseAddress = a.StreamsUrl, Timeout = TimeSpan.FromSeconds(30) };
        await SendAsync(clientA, HttpMethod.Put, stream, new ByteArrayContent([]) { Headers = { ContentType = new MediaTypeHeaderValue("text/plain") } }, HttpStatusCode.Created);
        // A 5 s lease outlives starting the second node, so the kill lands while the lease is held.
        await SendAsync(clientA, HttpMethod.Put, "__ds/subscriptions/" + id,
            new StringContent($$"""{"type":"webhook","streams":["{{stream}}"],"webhook":{"url":"{{receiver.Url}}"},"lease_ttl_ms":5000}""", Encoding.UTF8, "application/json"),
            HttpStatusCode.Created);
        // Only node A runs yet, so A takes the lease and delivers.
        await SendAsync(clientA, HttpMethod.Post, stream, new StringContent("work", Encoding.UTF8, "text/plain"), HttpStatusCode.NoContent);
        var first = await receiver.NextAsync();
        Assert.Equal(1, first.Generation);

        await using var b = await NodeProcess.StartAsync(connection, Ct);
        using var clientB = new HttpClient { BaseAddress = b.StreamsUrl, Timeout = TimeSpan.FromSeconds(30) };
        await a.KillAsync();

        var second = await receiver.NextAsync();
        Assert.Equal(2, second.Generation);
        Assert.NotEqual(first.WakeId, second.WakeId);
        Assert.Equal(stream, second.Payload.GetProperty("streams")[0].GetProperty("path").GetString());
        // B applied the { "done": true } answer: the next wake starts from that tail.
        var tail = second.Payload.GetProperty("streams")[0].GetProperty("tail_offset").GetString();
        await SendAsync(clientB, HttpMethod.Post, stream, new StringContent("more", Encoding.UTF8, "text/plain"), HttpStatusCode.NoContent);
        var third = await receiver.NextAsync();
        Assert.Equal(3, third.Generation);
        Assert.Equal(tail, third.Payload.GetProperty("streams")[0].GetProperty("acked_offset").GetString());
    }

    private static async Task SendAsync(HttpClient client, HttpMethod method, string path, HttpContent content, HttpStatusCode expected)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        using var response = await client.SendAsync(request, Ct);
        Assert.True(expected == response.StatusCode, $"{method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }
}
