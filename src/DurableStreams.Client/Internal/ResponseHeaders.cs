using System.Globalization;
using System.Net;
using System.Text;

namespace DurableStreams.Client.Internal;

/// <summary>Reads protocol headers and turns error responses into <see cref="DurableStreamException"/>s.</summary>
internal static class ResponseHeaders
{
    /// <summary>The request's URL as error messages show it, when it differs from the one sent (redacted provider values).</summary>
    public static readonly HttpRequestOptionsKey<string> DisplayUrl = new("DurableStreams.DisplayUrl");

    private const int MaxErrorBodyChars = 1024;

    /// <summary>The raw value of a response or content header, or null.</summary>
    public static string? Get(HttpResponseMessage response, string name)
    {
        if (response.Headers.NonValidated.TryGetValues(name, out var values)
            || response.Content.Headers.NonValidated.TryGetValues(name, out values))
        {
            return string.Join(", ", values);
        }
        return null;
    }

    /// <summary>Protocol flags count only when exactly <c>true</c> (case-insensitive).</summary>
    public static bool Flag(HttpResponseMessage response, string name) =>
        string.Equals(Get(response, name)?.Trim(), "true", StringComparison.OrdinalIgnoreCase);

    public static long? Long(HttpResponseMessage response, string name) =>
        long.TryParse(Get(response, name), NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;

    /// <summary>Statuses worth retrying for idempotent requests: 429 and 5xx except 501 (never supported) and 507 (out of space).</summary>
    public static bool IsRetryable(HttpStatusCode status) =>
        status == HttpStatusCode.TooManyRequests
        || ((int)status >= 500 && status is not (HttpStatusCode.NotImplemented or HttpStatusCode.InsufficientStorage));

    /// <summary>The server's <c>Retry-After</c> as a delay, when present.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        var retryAfter = response.Headers.RetryAfter;
        if (retryAfter?.Delta is { } delta)
        {
            return delta;
        }
        if (retryAfter?.Date is { } date)
        {
            return date - time.GetUtcNow();
        }
        return null;
    }

    public static async Task<DurableStreamException> ErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = response.StatusCode;
        var epoch = Long(response, DurableStreams.Protocol.ProtocolHeaders.ProducerEpoch);
        var expected = Long(response, DurableStreams.Protocol.ProtocolHeaders.ProducerExpectedSeq);
        var retainedStart = Get(response, DurableStreams.Protocol.ProtocolHeaders.StreamRetainedStart);
        var code = status switch
        {
            HttpStatusCode.Gone when retainedStart is not null => DurableStreamErrorCode.BeforeRetainedStart,
            HttpStatusCode.BadRequest => DurableStreamErrorCode.BadRequest,
            HttpStatusCode.Unauthorized => DurableStreamErrorCode.Unauthorized,
            HttpStatusCode.Forbidden when epoch is not null => DurableStreamErrorCode.StaleEpoch,
            HttpStatusCode.Forbidden => DurableStreamErrorCode.Forbidden,
            HttpStatusCode.NotFound => DurableStreamErrorCode.NotFound,
            HttpStatusCode.MethodNotAllowed or HttpStatusCode.NotImplemented => DurableStreamErrorCode.NotSupported,
            HttpStatusCode.Gone => DurableStreamErrorCode.Gone,
            HttpStatusCode.Conflict when Flag(response, DurableStreams.Protocol.ProtocolHeaders.StreamClosed) => DurableStreamErrorCode.StreamClosed,
            HttpStatusCode.Conflict when expected is not null => DurableStreamErrorCode.SequenceGap,
            HttpStatusCode.Conflict when response.RequestMessage?.Headers.Contains(DurableStreams.Protocol.ProtocolHeaders.StreamSeq) == true => DurableStreamErrorCode.SequenceConflict,
            HttpStatusCode.Conflict => DurableStreamErrorCode.Conflict,
            HttpStatusCode.RequestEntityTooLarge => DurableStreamErrorCode.PayloadTooLarge,
            HttpStatusCode.TooManyRequests => DurableStreamErrorCode.TooManyRequests,
            HttpStatusCode.InsufficientStorage => DurableStreamErrorCode.InsufficientStorage,
            >= HttpStatusCode.InternalServerError => DurableStreamErrorCode.Unavailable,
            _ => DurableStreamErrorCode.Unknown,
        };
        var body = JsonErrorMessage(await ReadMessageAsync(response, cancellationToken).ConfigureAwait(false), response);
        // Method, URL and status first (a 404 names the stream), then the server's own words.
        var message = $"{(int)status} {response.ReasonPhrase}".TrimEnd();
        if (response.RequestMessage is { RequestUri: { } url } request)
        {
            var shown = request.Options.TryGetValue(DisplayUrl, out var display) ? display : url.ToString();
            message = $"{request.Method} {shown} failed: {message}";
        }
        if (!string.IsNullOrWhiteSpace(body))
        {
            message += ": " + body;
        }
        return new DurableStreamException(code, status, message)
        {
            NextOffset = Get(response, DurableStreams.Protocol.ProtocolHeaders.StreamNextOffset),
            ProducerEpoch = epoch,
            ProducerExpectedSeq = expected,
            RetainedStart = code == DurableStreamErrorCode.BeforeRetainedStart ? retainedStart : null,
        };
    }

    /// <summary>The <c>error.message</c> of a JSON error body (<c>{"error": {"code", "message"}}</c>); other bodies as they are.</summary>
    private static string JsonErrorMessage(string body, HttpResponseMessage response)
    {
        if (response.Content.Headers.ContentType?.MediaType is not "application/json" || body.Length == 0)
        {
            return body;
        }
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(body);
            return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && document.RootElement.TryGetProperty("error", out var error)
                && error.ValueKind == System.Text.Json.JsonValueKind.Object
                && error.TryGetProperty("message", out var message)
                && message.ValueKind == System.Text.Json.JsonValueKind.String
                ? message.GetString() ?? body
                : body;
        }
        catch (System.Text.Json.JsonException)
        {
            return body;
        }
    }

    /// <summary>The start of the server's text body; a failure to read it is not worth a second error.</summary>
    private static async Task<string> ReadMessageAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var buffer = new char[MaxErrorBodyChars];
            var read = await reader.ReadBlockAsync(buffer.AsMemory(), cancellationToken).ConfigureAwait(false);
            return new string(buffer, 0, read).Trim();
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException)
        {
            return string.Empty;
        }
    }
}
