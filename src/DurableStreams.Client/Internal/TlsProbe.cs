using System.Net.Security;
using System.Net.Sockets;

namespace DurableStreams.Client.Internal;

/// <summary>
/// Tells whether a port speaks TLS, for the one failure that plain HTTP to an HTTPS-only port produces: the server closes
/// the connection without an answer. Sends only a TLS ClientHello and trusts nothing: the handshake is refused as soon
/// as the server presents a certificate, which is the answer.
/// </summary>
internal static class TlsProbe
{
    /// <summary>How long the probe may take; a port that is slower to present a certificate counts as not speaking TLS.</summary>
    internal static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    /// <summary>True when <c>http://</c> <paramref name="url"/> failed with an empty reply and its port presents a TLS certificate.</summary>
    public static async Task<bool> IsHttpsPortAsync(Uri url, HttpRequestException failure, CancellationToken cancellationToken)
    {
        if (url.Scheme != Uri.UriSchemeHttp || failure.HttpRequestError != HttpRequestError.ResponseEnded)
        {
            return false;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        var presented = false;
        try
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(url.DnsSafeHost, url.Port, timeout.Token).ConfigureAwait(false);
            using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = url.DnsSafeHost,
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    presented = certificate is not null;
                    return false;
                },
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or System.Security.Authentication.AuthenticationException or OperationCanceledException)
        {
            // Refused by the callback above, or not TLS at all.
        }
        return presented;
    }

    /// <summary>The message for plain HTTP sent to an HTTPS port.</summary>
    public static string Message(Uri url) =>
        $"the server is not speaking plain HTTP on this port: it closed the connection without an answer and speaks HTTPS (try https://{url.Authority}).";
}
