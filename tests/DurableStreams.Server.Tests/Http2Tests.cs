using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// Cleartext HTTP/2 with prior knowledge (h2c, <see cref="DurableStreamServerOptions.CleartextHttp2"/>): many live reads
/// multiplexed over one connection, as a browser past its six-connections-per-host limit needs.
/// </summary>
public sealed class Http2Tests
{
    private const int TestTimeout = 60_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory(Timeout = TestTimeout)]
    [InlineData(100)]
    [InlineData(150)] // more than Kestrel's default of 100 streams per connection
    public async Task Over_h2c_concurrent_SSE_reads_share_one_connection_and_each_gets_the_next_append(int readers)
    {
        await using var server = await ServerHarness.StartAsync(o => o.CleartextHttp2 = true, cancellationToken: Ct);
        var connections = 0;
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 1,
            EnableMultipleHttp2Connections = false,
            MaxResponseDrainSize = 0,
            ConnectCallback = async (context, cancellationToken) =>
            {
                Interlocked.Increment(ref connections);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            },
        };
        using var client = new HttpClient(handler)
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
        var names = Enumerable.Range(0, readers).Select(_ => ServerHarness.NewName()).ToArray();
        foreach (var name in names)
        {
            using var create = await client.PutAsync(server.Url(name), new StringContent("", new MediaTypeHeaderValue("text/plain")), Ct);
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        }

        var open = new List<(HttpResponseMessage Response, SseReader Reader)>();
        try
        {
            // Every reader is live (its first control event read and its wait parked) before anything is appended.
            var opened = await Task.WhenAll(names.Select(async name =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, server.Url($"{name}?offset=-1&live=sse"))
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                };
                var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
                var reader = new SseReader(await response.Content.ReadAsStreamAsync(Ct));
                return (response, reader);
            }));
            open.AddRange(opened);
            foreach (var (response, reader) in open)
            {
                Assert.Equal(HttpVersion.Version20, response.Version);
                Assert.True((await reader.ExpectAsync("control", Ct)).Flag("upToDate"));
            }
            foreach (var name in names)
            {
                await server.Store.WaitStartedAsync(name, Ct);
            }

            // The appends go over the same connection (the harness's own client speaks HTTP/1.1, which h2c does not serve).
            foreach (var name in names)
            {
                using var append = await client.PostAsync(server.Url(name), new StringContent("live " + name, new MediaTypeHeaderValue("text/plain")), Ct);
                Assert.Equal(HttpStatusCode.NoContent, append.StatusCode);
            }

            for (var i = 0; i < readers; i++)
            {
                Assert.Equal("live " + names[i], (await open[i].Reader.ExpectAsync("data", Ct)).Data);
            }
            Assert.Equal(1, connections);
        }
        finally
        {
            foreach (var (response, reader) in open)
            {
                reader.Dispose();
                response.Dispose();
            }
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Over_h2c_an_HTTP_1_1_request_gets_400()
    {
        await using var server = await ServerHarness.StartAsync(o => o.CleartextHttp2 = true, cancellationToken: Ct);

        using var response = await server.Client.GetAsync(server.Url("x"), Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Without_h2c_plain_HTTP_refuses_HTTP_2_with_prior_knowledge()
    {
        await using var server = await ServerHarness.StartAsync(cancellationToken: Ct);
        using var client = new HttpClient
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(server.Url("x"), Ct));
    }

    [Fact]
    public void H2c_with_TLS_and_a_stream_limit_out_of_range_are_rejected_by_Validate()
    {
        var tls = new DurableStreamServerOptions { CleartextHttp2 = true, TlsCertificatePath = "c.pem", TlsKeyPath = "k.pem" };
        var zero = new DurableStreamServerOptions { MaxHttp2StreamsPerConnection = 0 };

        Assert.Contains("ALPN", Assert.Throws<ArgumentException>(tls.Validate).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(zero.Validate);
        Assert.Equal(1000, new DurableStreamServerOptions().MaxHttp2StreamsPerConnection);
    }
}
