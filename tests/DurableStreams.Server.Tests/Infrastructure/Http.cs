using System.Net;
using Xunit;

namespace DurableStreams.Server.Tests.Infrastructure;

/// <summary>Raw header access and the checks every error response must pass.</summary>
public static class Http
{
    /// <summary>The raw value of a response or content header as sent (values joined with ", "), or null.</summary>
    public static string? Header(HttpResponseMessage response, string name)
    {
        if (response.Headers.NonValidated.TryGetValues(name, out var values)
            || response.Content.Headers.NonValidated.TryGetValues(name, out values))
        {
            return string.Join(", ", values);
        }
        return null;
    }

    /// <summary>The comma-separated items of a list header, trimmed.</summary>
    public static string[] HeaderList(HttpResponseMessage response, string name) =>
        (Header(response, name) ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    public static void SecurityHeaders(HttpResponseMessage response)
    {
        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        Assert.NotNull(Header(response, "Cross-Origin-Resource-Policy"));
    }

    /// <summary>
    /// Asserts the status, the security headers and — except for HEAD — a short text/plain body without exception
    /// details. Returns the body.
    /// </summary>
    public static async Task<string> ErrorAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(status == response.StatusCode, $"Expected {(int)status} but got {(int)response.StatusCode}: {body}");
        SecurityHeaders(response);
        if (response.RequestMessage?.Method == HttpMethod.Head)
        {
            Assert.Empty(body);
            return body;
        }
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.InRange(body.Trim().Length, 1, 200);
        Assert.DoesNotContain("Exception", body, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", body, StringComparison.Ordinal);
        Assert.DoesNotContain("\n", body.TrimEnd('\n'), StringComparison.Ordinal);
        return body;
    }

    /// <summary>Asserts the offset is a well-formed 33-character server offset and returns its byte position.</summary>
    public static long Position(string? offset)
    {
        Assert.NotNull(offset);
        Assert.Matches("^[0-9]{16}_[0-9]{16}$", offset);
        return long.Parse(offset.AsSpan(17), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static string Offset(long position) => $"0000000000000000_{position:D16}";
}
