using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using DurableStreams.Core.Memory;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

/// <summary>
/// With the server's bearer tokens on: managing subscriptions needs the write token, the JWKS stays public, and ack and
/// release are authorised by the subscription-scoped token the server issued, not by a server token.
/// </summary>
public sealed class AuthTests : IAsyncLifetime
{
    private const string WriteToken = "write-secret";
    private readonly MemoryStreamStore _store = new(new MemoryStreamStoreOptions());
    private SubscriptionHarness _harness = null!;

    public async ValueTask InitializeAsync() =>
        _harness = await SubscriptionHarness.StartAsync(
            _store, new ObservedStateStore(new MemorySubscriptionStateStore()), TimeProvider.System,
            configure: options => options.WriteTokens.Add(WriteToken));

    public async ValueTask DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _store.DisposeAsync();
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? json, string? bearer)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return await _harness.Client.SendAsync(request, TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Subscription_calls_need_the_write_token_but_the_jwks_and_the_issued_tokens_do_not()
    {
        const string Subscription = """{"type":"pull-wake","streams":["work/1"],"wake_stream":"wake/q"}""";
        using (var anonymous = await SendAsync(HttpMethod.Put, "__ds/subscriptions/q", Subscription, bearer: null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }
        using (var jwks = await SendAsync(HttpMethod.Get, "__ds/jwks.json", json: null, bearer: null))
        {
            Assert.Equal(HttpStatusCode.OK, jwks.StatusCode);
        }
        using (await SendAsync(HttpMethod.Put, "wake/q", "[]", WriteToken))
        using (var created = await SendAsync(HttpMethod.Put, "__ds/subscriptions/q", Subscription, WriteToken))
        using (await SendAsync(HttpMethod.Put, "work/1", "{\"n\":1}", WriteToken))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        using (var anonymousClaim = await SendAsync(HttpMethod.Post, "__ds/subscriptions/q/claim", """{"worker":"w1"}""", bearer: null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymousClaim.StatusCode);
        }
        using var claim = await SendAsync(HttpMethod.Post, "__ds/subscriptions/q/claim", """{"worker":"w1"}""", WriteToken);
        Assert.Equal(HttpStatusCode.OK, claim.StatusCode);
        var claimed = JsonDocument.Parse(await claim.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        var ack = $$"""{"wake_id":"{{claimed.GetProperty("wake_id").GetString()}}","generation":{{claimed.GetProperty("generation").GetInt64()}},"done":true}""";

        // The claim token is not a server token, yet it is what authorises the ack.
        using var acked = await SendAsync(HttpMethod.Post, "__ds/subscriptions/q/ack", ack, claimed.GetProperty("token").GetString());
        Assert.Equal(HttpStatusCode.OK, acked.StatusCode);
    }
}
