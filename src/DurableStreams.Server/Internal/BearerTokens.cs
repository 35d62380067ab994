using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace DurableStreams.Server.Internal;

/// <summary>
/// Bearer-token authentication with three scopes: read, write (implies read) and admin (implies both). Tokens are kept as SHA-256 digests and a presented token is hashed and
/// compared with <see cref="CryptographicOperations.FixedTimeEquals"/> against every configured digest, so neither the
/// comparison nor the token's length shows in the timing.
/// </summary>
internal sealed class BearerTokens
{
    private readonly byte[][] _read;
    private readonly byte[][] _write;
    private readonly byte[][] _admin;

    private BearerTokens(byte[][] read, byte[][] write, byte[][] admin)
    {
        _read = read;
        _write = write;
        _admin = admin;
    }

    /// <summary>Null when no token is configured (authentication off).</summary>
    public static BearerTokens? Create(IEnumerable<string> readTokens, IEnumerable<string> writeTokens, IEnumerable<string>? adminTokens = null)
    {
        var read = readTokens.Where(t => t.Length > 0).Select(Digest).ToArray();
        var write = writeTokens.Where(t => t.Length > 0).Select(Digest).ToArray();
        var admin = (adminTokens ?? []).Where(t => t.Length > 0).Select(Digest).ToArray();
        return read.Length + write.Length + admin.Length == 0 ? null : new BearerTokens(read, write, admin);
    }

    /// <summary>
    /// Null when the request may go on; otherwise the 401 or 403 to answer (with its WWW-Authenticate header set).
    /// <paramref name="access"/> (never <see cref="Access.OwnCredentials"/>) comes from <see cref="RouteAccess"/>.
    /// </summary>
    public AuthFailure? Check(HttpRequest request, Access access)
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
        var isAdmin = Matches(_admin, presented);
        var canWrite = isAdmin | Matches(_write, presented);
        var canRead = canWrite | Matches(_read, presented);
        if (!canRead)
        {
            return AuthFailure.Invalid(request.HttpContext.Response);
        }
        return access switch
        {
            Access.Admin when !isAdmin => AuthFailure.AdminScope(request.HttpContext.Response, _admin.Length > 0),
            Access.Write when !canWrite => AuthFailure.Scope(request.HttpContext.Response),
            _ => null,
        };
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

    public static AuthFailure AdminScope(HttpResponse response, bool adminConfigured)
    {
        response.Headers.WWWAuthenticate = "Bearer error=\"insufficient_scope\", scope=\"admin\"";
        return new(StatusCodes.Status403Forbidden, adminConfigured
            ? "This route needs an admin token; this token may only read or write."
            : "This route needs an admin token, and the server has none configured (serve --admin-token, DS_ADMIN_TOKENS).");
    }

    public Task WriteAsync(HttpResponse response) => new HttpError(StatusCode, Message).WriteAsync(response);
}
