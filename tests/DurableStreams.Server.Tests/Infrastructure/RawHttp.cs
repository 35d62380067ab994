using System.Net.Sockets;
using System.Text;

namespace DurableStreams.Server.Tests.Infrastructure;

/// <summary>
/// Sends one HTTP/1.1 request byte for byte over a socket, for request targets and header values HttpClient would
/// normalise or refuse to send (encoded dot segments, control characters).
/// </summary>
public static class RawHttp
{
    /// <summary>The status code and the whole response text (headers and body) of one request on its own connection.</summary>
    public static async Task<(int Status, string Response)> SendAsync(Uri server, string method, string target, CancellationToken cancellationToken, string? body = null, params string[] headerLines)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(server.Host, server.Port, cancellationToken);
        var stream = client.GetStream();
        var request = new StringBuilder()
            .Append(method).Append(' ').Append(target).Append(" HTTP/1.1\r\n")
            .Append("Host: ").Append(server.Authority).Append("\r\n")
            .Append("Connection: close\r\n");
        foreach (var line in headerLines)
        {
            request.Append(line).Append("\r\n");
        }
        var content = body is null ? [] : Encoding.UTF8.GetBytes(body);
        if (body is not null)
        {
            request.Append("Content-Type: text/plain\r\n");
        }
        request.Append("Content-Length: ").Append(content.Length).Append("\r\n\r\n");
        // Latin-1 keeps every char below U+0100 as the one byte the test means to send.
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request.ToString()), cancellationToken);
        await stream.WriteAsync(content, cancellationToken);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var response = await reader.ReadToEndAsync(cancellationToken);
        var status = response.Length >= 12 && int.TryParse(response.AsSpan(9, 3), out var code) ? code : 0;
        return (status, response);
    }
}
