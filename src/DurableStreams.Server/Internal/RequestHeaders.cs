using System.Buffers;
using Microsoft.AspNetCore.Http;

namespace DurableStreams.Server.Internal;

/// <summary>Checks every request header value once per request (issue 22 item 9).</summary>
internal static class RequestHeaders
{
    /// <summary>C0 controls except HTAB, DEL and C1 controls: Kestrel refuses only NUL, CR and LF in a value.</summary>
    private static readonly SearchValues<char> Controls = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u000A\u000B\u000C\u000D\u000E\u000F" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001A\u001B\u001C\u001D\u001E\u001F" +
        "\u007F\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008A\u008B\u008C\u008D\u008E\u008F" +
        "\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009A\u009B\u009C\u009D\u009E\u009F");

    /// <summary>
    /// The name of the first header whose value holds a control character other than HTAB; null when none does. A
    /// vectorized scan of the values Kestrel already decoded: no copies.
    /// </summary>
    public static string? FindControlCharacter(IHeaderDictionary headers)
    {
        foreach (var header in headers)
        {
            foreach (var value in header.Value)
            {
                if (value is not null && value.AsSpan().ContainsAny(Controls))
                {
                    return header.Key;
                }
            }
        }
        return null;
    }
}
