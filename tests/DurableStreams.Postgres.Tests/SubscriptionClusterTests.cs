using System.Buffers.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using NSec.Cryptography;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// Subscriptions on three nodes sharing one database: a call on any node sees and changes the same state, racing
/// claims have one winner, every wake is delivered by exactly one node, and all nodes sign with the same key.
/// </summary>
public sealed class SubscriptionClusterTests(PostgresServer server) : ThreeNodeTests(server, subscriptions: true)
{
    [Fact]
    public async Task A_webhook_created_on_A_is_woken_by_an_append_on_B_delivered_once_and_acked_through_C()
    {
        await using var receiver = await WebhookReceiver.StartAsync((_, _) => Task.FromResult((200, "{}")), Ct);
        var stream = "orders/" + Guid.NewGuid().ToString("N");
        var id = "hook-" + Guid.NewGuid().ToString("N");
        await SendAsync(B, HttpMethod.Put, stream, null, "text/plain", HttpStatusCode.Created);
        await SendAsync(A, HttpMethod.Put, Control(id), $$"""{"type":"webhook","streams":["{{stream}}"],"webhook":{"url":"{{receiver.Url}}"} }""", "application/json", HttpStatusCode.Created);

        await SendAsync(B, HttpMethod.Post, stream, "hello", "text/plain", HttpStatusCode.NoContent);
        var first = await receiver.NextAsync();

        Assert.Equal(1, first.Generation);
        var pending = Assert.Single(first.Payload.GetProperty("streams").EnumerateArray().ToArray());
        Assert.Equal(stream, pending.GetProperty("path").GetString());
        var tail = pending.GetProperty("tail_offset").GetString()!;
        // The callback URL names the node the subscription was created through; any node accepts it.
        Assert.StartsWith(A.Server.StreamsUrl.ToString(), first.Payload.GetProperty("callback_url").GetString(), StringComparison.Ordinal);
        var ack = await SendAsync(C, HttpMethod.Post, Control(id) + "/callback",
            $$"""{"wake_id":"{{first.WakeId}}","generation":1,"acks":[{"stream":"{{stream}}","offset":"{{tail}}"}],"done":true}""",
            "application/json", HttpStatusCode.OK, first.CallbackToken);
        Assert.False(JsonDocument.Parse(ack).RootElement.GetProperty("next_wake").GetBoolean());
        var view = JsonDocument.Parse(await SendAsync(B, HttpMethod.Get, Control(id), null, null, HttpStatusCode.OK)).RootElement;
        Assert.Equal(tail, view.GetProperty("streams")[0].GetProperty("acked_offset").GetString());

        // Had any node delivered generation 1 twice, the duplicate would arrive before this wake.
        await SendAsync(C, HttpMethod.Post, stream, "again", "text/plain", HttpStatusCode.NoContent);
        var second = await receiver.NextAsync();
        Assert.Equal(2, second.Generation);
        Assert.NotEqual(first.WakeId, second.WakeId);
    }

    [Fact]
    public async Task Every_node_serves_the_same_JWKS_and_a_webhook_signature_verifies_against_each()
    {
        await using var receiver = await WebhookReceiver.StartAsync((_, _) => Task.FromResult((200, """{"done":true}""")), Ct);
        var stream = "signed/" + Guid.NewGuid().ToString("N");
        var id = "signed-" + Guid.NewGuid().ToString("N");
        await SendAsync(C, HttpMethod.Put, stream, null, "text/plain", HttpStatusCode.Created);
        await SendAsync(C, HttpMethod.Put, Control(id), $$"""{"type":"webhook","streams":["{{stream}}"],"webhook":{"url":"{{receiver.Url}}"} }""", "application/json", HttpStatusCode.Created);
        await SendAsync(A, HttpMethod.Post, stream, "x", "text/plain", HttpStatusCode.NoContent);
        var delivery = await receiver.NextAsync();

        var jwks = new List<string>();
        foreach (var node in Nodes)
        {
            jwks.Add(await SendAsync(node, HttpMethod.Get, "__ds/jwks.json", null, null, HttpStatusCode.OK));
        }
        Assert.Single(jwks.Distinct(StringComparer.Ordinal));
        var parts = delivery.Signature.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var jwk = JsonDocument.Parse(jwks[0]).RootElement.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("kid").GetString() == parts["kid"]);
        var key = PublicKey.Import(SignatureAlgorithm.Ed25519, Base64Url.DecodeFromChars(jwk.GetProperty("x").GetString()), KeyBlobFormat.RawPublicKey);
        Assert.True(SignatureAlgorithm.Ed25519.Verify(key, Encoding.UTF8.GetBytes(parts["t"] + "." + delivery.Body), Base64Url.DecodeFromChars(parts["ed25519"])));
    }

    [Fact]
    public async Task Pull_wake_claims_racing_on_three_nodes_have_one_winner_and_the_ack_goes_through_another_node()
    {
        var stream = "jobs/" + Guid.NewGuid().ToString("N");
        var wake = "wake/" + Guid.NewGuid().ToString("N");
        var id = "pull-" + Guid.NewGuid().ToString("N");
        await SendAsync(A, HttpMethod.Put, stream, null, "text/plain", HttpStatusCode.Created);
        await SendAsync(A, HttpMethod.Put, wake, null, "application/json", HttpStatusCode.Created);
        await SendAsync(B, HttpMethod.Put, Control(id), $$"""{"type":"pull-wake","streams":["{{stream}}"],"wake_stream":"{{wake}}"}""", "application/json", HttpStatusCode.Created);
        await SendAsync(C, HttpMethod.Post, stream, "work", "text/plain", HttpStatusCode.NoContent);

        // Two workers per node, all at once.
        var claims = await Task.WhenAll(Nodes.SelectMany((node, n) => new[] { 0, 1 }.Select(async w =>
        {
            using var request = Request(HttpMethod.Post, Control(id) + "/claim", $$"""{"worker":"w{{n}}-{{w}}"}""", "application/json");
            using var response = await node.Client.SendAsync(request, Ct);
            return (Node: node, response.StatusCode, Body: JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement);
        })));

        var winner = Assert.Single(claims, c => c.StatusCode == HttpStatusCode.OK);
        Assert.All(claims.Where(c => c.StatusCode != HttpStatusCode.OK), c =>
        {
            Assert.Equal(HttpStatusCode.Conflict, c.StatusCode);
            Assert.Equal("ALREADY_CLAIMED", c.Body.GetProperty("error").GetProperty("code").GetString());
        });
        var tail = winner.Body.GetProperty("streams")[0].GetProperty("tail_offset").GetString()!;
        var other = Nodes.First(n => n != winner.Node);
        var generation = winner.Body.GetProperty("generation").GetInt64();
        var ack = await SendAsync(other, HttpMethod.Post, Control(id) + "/ack",
            $$"""{"wake_id":"{{winner.Body.GetProperty("wake_id").GetString()}}","generation":{{generation}},"acks":[{"stream":"{{stream}}","offset":"{{tail}}"}],"done":true}""",
            "application/json", HttpStatusCode.OK, winner.Body.GetProperty("token").GetString());
        Assert.False(JsonDocument.Parse(ack).RootElement.GetProperty("next_wake").GetBoolean());

        var third = Nodes.First(n => n != winner.Node && n != other);
        using var again = Request(HttpMethod.Post, Control(id) + "/claim", """{"worker":"late"}""", "application/json");
        using var none = await third.Client.SendAsync(again, Ct);
        Assert.Equal(HttpStatusCode.Conflict, none.StatusCode);
        Assert.Contains("NO_PENDING_WORK", await none.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Links_added_and_removed_on_one_node_and_a_delete_on_another_are_seen_by_all()
    {
        await using var receiver = await WebhookReceiver.StartAsync((_, _) => Task.FromResult((200, """{"done":true}""")), Ct);
        var first = "links/" + Guid.NewGuid().ToString("N");
        var added = "links/" + Guid.NewGuid().ToString("N");
        var id = "links-" + Guid.NewGuid().ToString("N");
        await SendAsync(A, HttpMethod.Put, first, null, "text/plain", HttpStatusCode.Created);
        await SendAsync(A, HttpMethod.Put, added, null, "text/plain", HttpStatusCode.Created);
        await SendAsync(A, HttpMethod.Put, Control(id), $$"""{"type":"webhook","streams":["{{first}}"],"webhook":{"url":"{{receiver.Url}}"} }""", "application/json", HttpStatusCode.Created);

        await SendAsync(B, HttpMethod.Post, Control(id) + "/streams", $$"""{"streams":["{{added}}"]}""", "application/json", HttpStatusCode.NoContent);
        await SendAsync(C, HttpMethod.Post, added, "x", "text/plain", HttpStatusCode.NoContent);
        var wake = await receiver.NextAsync();
        Assert.Equal(added, Assert.Single(wake.Payload.GetProperty("streams").EnumerateArray().ToArray()).GetProperty("path").GetString());

        await SendAsync(C, HttpMethod.Delete, Control(id) + "/streams/" + Uri.EscapeDataString(added), null, null, HttpStatusCode.NoContent);
        var view = JsonDocument.Parse(await SendAsync(A, HttpMethod.Get, Control(id), null, null, HttpStatusCode.OK)).RootElement;
        Assert.Equal([first], view.GetProperty("streams").EnumerateArray().Select(s => s.GetProperty("path").GetString()!).ToArray());

        await SendAsync(B, HttpMethod.Delete, Control(id), null, null, HttpStatusCode.NoContent);
        foreach (var node in Nodes)
        {
            await SendAsync(node, HttpMethod.Get, Control(id), null, null, HttpStatusCode.NotFound);
        }
    }

    [Fact]
    public async Task A_pattern_subscription_made_on_one_node_links_a_stream_created_on_another_from_its_start_and_drops_it_when_a_third_deletes_it()
    {
        await using var receiver = await WebhookReceiver.StartAsync((_, _) => Task.FromResult((200, """{"done":true}""")), Ct);
        var prefix = "pattern-" + Guid.NewGuid().ToString("N");
        var id = "glob-" + Guid.NewGuid().ToString("N");
        await SendAsync(A, HttpMethod.Put, Control(id), $$"""{"type":"webhook","pattern":"{{prefix}}/*","webhook":{"url":"{{receiver.Url}}"} }""", "application/json", HttpStatusCode.Created);

        // Created with its first data on B: the link starts at the stream's start, so that data is pending.
        await SendAsync(B, HttpMethod.Put, prefix + "/new", "first", "text/plain", HttpStatusCode.Created);
        var wake = await receiver.NextAsync();

        var pending = Assert.Single(wake.Payload.GetProperty("streams").EnumerateArray().ToArray());
        Assert.Equal(prefix + "/new", pending.GetProperty("path").GetString());
        Assert.Equal("0000000000000000_0000000000000000", pending.GetProperty("acked_offset").GetString());
        Assert.True(pending.GetProperty("has_pending").GetBoolean());

        // Deleted through a third node: the glob-only link goes.
        await SendAsync(C, HttpMethod.Delete, prefix + "/new", null, null, HttpStatusCode.NoContent);
        var view = JsonDocument.Parse(await SendAsync(A, HttpMethod.Get, Control(id), null, null, HttpStatusCode.OK)).RootElement;
        Assert.Empty(view.GetProperty("streams").EnumerateArray());
    }

    private static string Control(string id) => "__ds/subscriptions/" + id;

    private static HttpRequestMessage Request(HttpMethod method, string path, string? body, string? contentType, string? bearer = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType!);
        }
        else if (method == HttpMethod.Put)
        {
            request.Content = new ByteArrayContent([]) { Headers = { ContentType = new MediaTypeHeaderValue(contentType!) } };
        }
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return request;
    }

    private static async Task<string> SendAsync(Cluster.Node node, HttpMethod method, string path, string? body, string? contentType, HttpStatusCode expected, string? bearer = null)
    {
        using var request = Request(method, path, body, contentType, bearer);
        using var response = await node.Client.SendAsync(request, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(expected == response.StatusCode, $"{method} {path} on {node.Server.StreamsUrl}: {(int)response.StatusCode} {text}");
        return text;
    }
}
