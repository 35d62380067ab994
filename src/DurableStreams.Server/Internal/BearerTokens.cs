using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace DurableStreams.Server.Internal;

/// <summary>
/// Bearer-token authentication with two scopes. Tokens are kept as SHA-256 digests and a presented token is hashed and
/// compared with <see cref="CryptographicOperations.FixedTimeEquals"/> against every configured digest, so neither the
/// comparison nor the token's length shows in the timing.
/// </summary>
internal sealed class BearerTokens
{
    private readonly byte[][] _read;
    private readonly byte[][] _write;

    private BearerTokens(byte[][] read, byte[][] write)
    {
        _read = read;
        _write = write;
    }

    /// <summary>Null when no token is configured (authentication off).</summary>
    public static BearerTokens? Create(IEnumerable<string> readTokens, IEnumerable<string> writeTokens)
    {
        var read = readTokens.Where(t => t.Length > 0).Select(Digest).ToArray();
        var write = writeTokens.Where(t => t.Length > 0).Select(Digest).ToArray();
        return read.Length + write.Length == 0 ? null : new BearerTokens(read, write);
    }

    /// <summary>
    /// Null when the request may go on; otherwise the 401 or 403 to answer (with its WWW-Authenticate header set).
    /// <paramref name="writing"/> (a write token is needed) comes from <see cref="RouteAccess"/>.
    /// </summary>
    public AuthFailure? Check(HttpRequest request, bool writing)
    {
        var header = request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) || header.Length == Scheme.Length)
        {
            return AuthFailure.Missing(request.HttpContext.Response);
        }
        Span<byte> presented = stackalloc byte[SHA256.HashSizeInBytes];
        var token = header.AsSpan(Scheme.Length).Trim();
        var bytes = Encoding.UTF8.GetBytes(token.ToString());
        SHA256.HashData(bytes, presented);
        var canWrite = Matches(_write, presented);
        var canRead = canWrite | Matches(_read, presented);
        if (!canRead)
        {
            return AuthFailure.Invalid(request.HttpContext.Response);
        }
        return writing && !canWrite ? AuthFailure.Scope(request.HttpContext.Response) : null;
    }

    private static bool Matches(byte[][] digests, ReadOnlySpan<byte> presented)
    {
        var found = false;
        foreach (var digest in digests)
        {
            // No early exit: every digest is compared.
            found |= CryptographicOperations.FixedTimeEquals(digest, presented);
        }
        return found;
    }

    private static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}

/// <summary>An authentication failure: its status, message, and the WWW-Authenticate challenge already set.</summary>
internal readonly record struct AuthFailure(int StatusCode, string Message)
{
    public static AuthFailure Missing(HttpResponse response)
    {
        response.Headers.WWWAuthenticate = "Bearer";
        return new(StatusCodes.Status401Unauthorized, "A bearer token is required (Authorization: Bearer <token>).");
    }

    public static AuthFailure Invalid(HttpResponse response)
    {
        response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
        return new(StatusCodes.Status401Unauthorized, "The bearer token is not valid.");
    }

    public static AuthFailure Scope(HttpResponse response)
    {
        response.Headers.WWWAuthenticate = "Bearer error=\"insufficient_scope\", scope=\"write\"";
        return new(StatusCodes.Status403Forbidden, "This token may only read; writing needs a write token.");
    }

    public Task WriteAsync(HttpResponse response) => new HttpError(StatusCode, Message).WriteAsync(response);
}
