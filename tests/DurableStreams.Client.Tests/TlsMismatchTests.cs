using System.Net;
using DurableStreams.Server;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>Plain HTTP sent to an HTTPS-only port: the error says so, instead of .NET's "error occurred while sending".</summary>
public sealed class TlsMismatchTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Plain_HTTP_to_an_HTTPS_port_says_the_server_speaks_HTTPS()
    {
        using var directory = new TempDirectory();
        var (certificatePath, keyPath) = SelfSignedPem.Write(directory);
        await using var server = new DurableStreamServer(new DurableStreamServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            TlsCertificatePath = certificatePath,
            TlsKeyPath = keyPath,
        });
        await server.StartAsync(Ct);
        var plain = new UriBuilder(server.StreamsUrl) { Scheme = "http" }.Uri;
        using var client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = plain, Retry = new RetryPolicy { MaxRetries = 0 } });

        var head = await Assert.ThrowsAsync<DurableStreamException>(() => client.GetMetadataAsync("anything", Ct));
        var read = await Assert.ThrowsAsync<DurableStreamException>(() => client.ReadAsync("anything", new ReadOptions { MaxRetries = 0 }, Ct).ToListAsync(Ct).AsTask());

        foreach (var failure in new[] { head, read })
        {
            Assert.Equal(DurableStreamErrorCode.Unavailable, failure.ErrorCode);
            Assert.Null(failure.StatusCode);
            Assert.Contains("the server is not speaking plain HTTP on this port", failure.Message, StringComparison.Ordinal);
            Assert.Contains($"try https://{server.BaseUrl.Authority}", failure.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("An error occurred while sending the request", failure.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_plain_HTTP_server_that_drops_the_connection_is_not_called_HTTPS()
    {
        // A listener that accepts and closes at once: the same empty reply, from a port that speaks no TLS.
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    using var socket = await listener.AcceptSocketAsync(Ct);
                    var buffer = new byte[4096];
                    await socket.ReceiveAsync(buffer, Ct); // the request (or a ClientHello), then close without an answer
                }
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // listener.Stop() ends the loop.
            }
        }, Ct);
        using var client = new DurableStreamClient(new DurableStreamClientOptions
        {
            BaseUrl = new Uri($"http://127.0.0.1:{port}/v1/stream/"),
            Retry = new RetryPolicy { MaxRetries = 0 },
        });

        var failure = await Assert.ThrowsAsync<DurableStreamException>(() => client.GetMetadataAsync("anything", Ct));

        Assert.Equal(DurableStreamErrorCode.Unavailable, failure.ErrorCode);
        Assert.DoesNotContain("HTTPS", failure.Message, StringComparison.Ordinal);
        listener.Stop();
        await accepting;
    }
}
