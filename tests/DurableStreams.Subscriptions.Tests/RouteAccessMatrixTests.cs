using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using DurableStreams.Core.Memory;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

/// <summary>
/// Every route and method under the streams mount × every kind of credential, on a real server with read and write
/// tokens and subscriptions on, against the access table written out here independently of the server's: only
/// GET/HEAD <c>__ds/jwks.json</c> and POST <c>__ds/subscriptions/{id}/callback|ack|release</c> carry their own
/// credentials; everything else needs a read token (GET, HEAD) or a write token. Subscription ids that spell route
/// words (<c>callback</c>, <c>ack</c>, <c>release</c>, <c>jwks.json</c>, <c>claim</c>, <c>streams</c>) must not change
/// the answer.
/// </summary>
public sealed class RouteAccessMatrixTests : IAsyncLifetime
{
    private const string ReadToken = "matrix-reader";
    private const string WriteToken = "matrix-writer";
    private const string AckBody = """{"wake_id":"w-none","generation":1}""";

    private static readonly string[] SubscriptionIds = ["q", "callback", "ack", "release", "jwks.json", "claim", "streams"];
    private static readonly string[] Methods = ["GET", "HEAD", "PUT", "POST", "DELETE"];

    private readonly MemoryStreamStore _store = new(new MemoryStreamStoreOptions());
    private readonly Dictionary<string, string> _claimTokens = new(StringComparer.Ordinal);
    private SubscriptionHarness _harness = null!;

    /// <summary>The credential a request presents.</summary>
    public enum Credential
    {
        None,
        ReadToken,
        WriteToken,
        OwnSubscriptionToken,
        OtherSubscriptionToken,
    }

    private enum Need
    {
        Read,
        Write,
        Own,
        Public,
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _harness = await SubscriptionHarness.StartAsync(
            _store, new ObservedStateStore(new MemorySubscriptionStateStore()), TimeProvider.System,
            configure: options =>
            {
                options.ReadTokens.Add(ReadToken);
                options.WriteTokens.Add(WriteToken);
            });
        await ExpectAsync(HttpStatusCode.Created, HttpMethod.Put, "wake/q", "[]");
        await ExpectAsync(HttpStatusCode.Created, HttpMethod.Put, "work/1", "[]");
        foreach (var id in SubscriptionIds)
        {
            await ExpectAsync(HttpStatusCode.Created, HttpMethod.Put, $"__ds/subscriptions/{Uri.EscapeDataString(id)}",
                """{"type":"pull-wake","streams":["work/1"],"wake_stream":"wake/q"}""");
        }
        await ExpectAsync(HttpStatusCode.NoContent, HttpMethod.Post, "work/1", """{"n":1}""");
        foreach (var id in SubscriptionIds)
        {
            using var claim = await SendAsync(HttpMethod.Post, $"__ds/subscriptions/{Uri.EscapeDataString(id)}/claim", """{"worker":"w"}""", WriteToken);
            var text = await claim.Content.ReadAsStringAsync(Ct);
            Assert.True(claim.StatusCode == HttpStatusCode.OK, $"claim {id}: {(int)claim.StatusCode} {text}");
            _claimTokens[id] = JsonDocument.Parse(text).RootElement.GetProperty("token").GetString()!;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _store.DisposeAsync();
    }

    /// <summary>Each route: the path, the subscription it belongs to (its "own" token), and what each method needs.</summary>
    private static IEnumerable<(string Path, string OwnId, Func<string, Need> Needs)> Routes()
    {
        static Need ReadOrWrite(string method) => method is "GET" or "HEAD" ? Need.Read : Need.Write;
        yield return ("matrix/stream", "q", ReadOrWrite);
        yield return ("__ds", "q", ReadOrWrite);
        yield return ("__ds/unknown", "q", ReadOrWrite);
        yield return ("__ds/subscriptions", "q", ReadOrWrite);
        yield return ("__ds/jwks.json", "q", m => m is "GET" or "HEAD" ? Need.Public : Need.Write);
        yield return ("__ds/jwks.json/callback", "q", ReadOrWrite);
        yield return ("__ds/callback", "q", ReadOrWrite);
        foreach (var id in SubscriptionIds)
        {
            var escaped = Uri.EscapeDataString(id);
            var baseRoute = $"__ds/subscriptions/{escaped}";
            yield return (baseRoute, id, ReadOrWrite);
            yield return ($"{baseRoute}/streams", id, ReadOrWrite);
            yield return ($"{baseRoute}/streams/work%2F1", id, ReadOrWrite);
            yield return ($"{baseRoute}/claim", id, ReadOrWrite);
            yield return ($"{baseRoute}/unknown", id, ReadOrWrite);
            yield return ($"{baseRoute}/callback/extra", id, ReadOrWrite);
            foreach (var own in new[] { "callback", "ack", "release" })
            {
                yield return ($"{baseRoute}/{own}", id, m => m == "POST" ? Need.Own : ReadOrWrite(m));
            }
        }
    }

    [Fact]
    public async Task Every_route_and_method_answers_each_credential_as_the_access_table_says()
    {
        var failures = new List<string>();
        foreach (var (path, ownId, needs) in Routes())
        {
            foreach (var method in Methods)
            {
                var need = needs(method);
                foreach (var credential in Enum.GetValues<Credential>())
                {
                    var bearer = credential switch
                    {
                        Credential.None => null,
                        Credential.ReadToken => ReadToken,
                        Credential.WriteToken => WriteToken,
                        Credential.OwnSubscriptionToken => _claimTokens[ownId],
                        _ => _claimTokens[ownId == "q" ? "claim" : "q"],
                    };
                    var body = method is "PUT" or "POST" ? BodyFor(path, method) : null;
                    using var response = await SendAsync(new HttpMethod(method), path, body, bearer);
                    var status = (int)response.StatusCode;
                    var denied = status is 401 or 403;
                    var expected = Expected(need, credential);
                    var ok = expected switch
                    {
                        401 or 403 => status == expected,
                        _ => !denied,
                    };
                    if (!ok)
                    {
                        failures.Add($"{method} {path} with {credential} (needs {need}): expected {(expected == 0 ? "no 401/403" : expected)}, got {status}");
                    }
                }
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} answers disagree with the access table:\n{string.Join('\n', failures)}");
    }

    /// <summary>401/403 when the credential must be refused; 0 when it passes the access check.</summary>
    private static int Expected(Need need, Credential credential) => (need, credential) switch
    {
        (Need.Public, _) => 0,
        (Need.Own, Credential.OwnSubscriptionToken) => 0,
        (Need.Own, _) => 401,
        (_, Credential.None or Credential.OwnSubscriptionToken or Credential.OtherSubscriptionToken) => 401,
        (Need.Write, Credential.ReadToken) => 403,
        _ => 0,
    };

    private static string BodyFor(string path, string method) => (path, method) switch
    {
        ("matrix/stream", _) => "[]",
        (_, "PUT") => """{"type":"pull-wake","streams":["work/1"],"wake_stream":"wake/q"}""",
        _ when path.EndsWith("/claim", StringComparison.Ordinal) => """{"worker":"w2"}""",
        _ when path.EndsWith("/streams", StringComparison.Ordinal) => """{"streams":["work/1"]}""",
        _ => AckBody,
    };

    [Theory]
    [InlineData("callback")]
    [InlineData("ack")]
    [InlineData("release")]
    public async Task A_junk_or_foreign_token_answers_the_same_whether_or_not_the_subscription_exists(string action)
    {
        foreach (var bearer in new[] { "junk", _claimTokens["claim"], ReadToken, WriteToken })
        {
            using var existing = await SendAsync(HttpMethod.Post, $"__ds/subscriptions/q/{action}", AckBody, bearer);
            using var missing = await SendAsync(HttpMethod.Post, $"__ds/subscriptions/no-such-subscription/{action}", AckBody, bearer);

            Assert.Equal(HttpStatusCode.Unauthorized, existing.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
            Assert.Equal(await existing.Content.ReadAsStringAsync(Ct), await missing.Content.ReadAsStringAsync(Ct));
            Assert.Contains("TOKEN_INVALID", await missing.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_subscription_named_like_a_route_word_cannot_be_created_read_or_deleted_anonymously()
    {
        foreach (var id in new[] { "callback", "ack", "release", "jwks.json" })
        {
            using var put = await SendAsync(HttpMethod.Put, $"__ds/subscriptions/{id}", """{"type":"pull-wake","pattern":"**","wake_stream":"victim"}""", bearer: null);
            using var get = await SendAsync(HttpMethod.Get, $"__ds/subscriptions/{id}", null, bearer: null);
            using var delete = await SendAsync(HttpMethod.Delete, $"__ds/subscriptions/{id}", null, bearer: null);

            Assert.Equal(HttpStatusCode.Unauthorized, put.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, get.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, delete.StatusCode);
        }
        using var stillThere = await SendAsync(HttpMethod.Get, "__ds/subscriptions/callback", null, ReadToken);
        Assert.Equal(HttpStatusCode.OK, stillThere.StatusCode);
    }

    [Fact]
    public async Task A_subscription_stream_route_decodes_its_one_encoded_segment_even_under_an_id_named_streams()
    {
        using var removed = await SendAsync(HttpMethod.Delete, "__ds/subscriptions/streams/streams/work%2F1", null, WriteToken);
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        using var get = await SendAsync(HttpMethod.Get, "__ds/subscriptions/streams", null, ReadToken);
        var view = JsonDocument.Parse(await get.Content.ReadAsStringAsync(Ct)).RootElement;
        Assert.Empty(view.GetProperty("streams").EnumerateArray());
    }

    private async Task ExpectAsync(HttpStatusCode status, HttpMethod method, string path, string body)
    {
        using var response = await SendAsync(method, path, body, WriteToken);
        Assert.True(status == response.StatusCode, $"{method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? json, string? bearer)
    {
        using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }
        return await _harness.Client.SendAsync(request, Ct);
    }
}
