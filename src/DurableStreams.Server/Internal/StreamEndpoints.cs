using DurableStreams.Protocol.Diagnostics;
using System.Globalization;
using DurableStreams.Protocol;
using DurableStreams.Server.Internal.Subscriptions;
using DurableStreams.Subscriptions;
using DurableStreams.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DurableStreams.Server.Internal;

/// <summary>Handles every request under the streams mount: translates HTTP to store calls and back.</summary>
internal sealed partial class StreamEndpoints(
    IStreamStore store,
    IOptions<DurableStreamsOptions> optionsAccessor,
    CursorPolicy cursors,
    ILogger<StreamEndpoints> logger,
    ServerMetrics metrics,
    RequestBodyReader bodies,
    IHostApplicationLifetime? lifetime = null,
    SubscriptionEngine? subscriptions = null)
{
    private readonly DurableStreamsOptions _options = optionsAccessor.Value;
    private readonly LivePayloadCache _payloads = new(weakETags: optionsAccessor.Value.Compression);
    private readonly RequestBodyReader _bodies = bodies;
    private readonly SubscriptionEndpoints? _control = subscriptions is null ? null : new SubscriptionEndpoints(subscriptions, bodies);
    private readonly HttpError _tooLarge = new(StatusCodes.Status413PayloadTooLarge, string.Create(CultureInfo.InvariantCulture,
        $"The request body exceeds the limit of {optionsAccessor.Value.MaxAppendBytes} bytes (MaxAppendBytes, serve --max-append-bytes); send the data in smaller appends."));
    private readonly HttpError _nameTooLong = HttpError.BadRequest(string.Create(CultureInfo.InvariantCulture, $"The stream name is longer than the server's maximum of {optionsAccessor.Value.MaxStreamNameBytes} bytes (UTF-8)."));
    private readonly HttpError _tooManySegments = HttpError.BadRequest(string.Create(CultureInfo.InvariantCulture, $"The stream name has more than the server's maximum of {optionsAccessor.Value.MaxStreamNameSegments} '/'-separated segments."));
    private readonly HttpError _liveReadersFull = new(StatusCodes.Status503ServiceUnavailable, "Too many live readers (long-poll and SSE) are connected; retry later.");
    private readonly ServerMetrics _metrics = metrics;
    private readonly BearerTokens? _tokens = BearerTokens.Create(optionsAccessor.Value.ReadTokens, optionsAccessor.Value.WriteTokens, optionsAccessor.Value.AdminTokens);
    private readonly bool _privateCaching = optionsAccessor.Value.CachePolicy == CachePolicy.Private
        || (optionsAccessor.Value.CachePolicy == CachePolicy.Auto && BearerTokens.Create(optionsAccessor.Value.ReadTokens, optionsAccessor.Value.WriteTokens, optionsAccessor.Value.AdminTokens) is not null);

    private const string AllowedMethods = "GET, HEAD, POST, PUT, DELETE, OPTIONS";

    /// <summary>CORS: the request headers a browser may send (the protocol's and the HTTP ones the protocol uses).</summary>
    internal static readonly string AllowedHeaders = string.Join(", ", ["Content-Type", "Authorization", "If-None-Match", .. ProtocolHeaders.RequestHeaders]);

    /// <summary>CORS: the response headers a browser script may read (the protocol's and the HTTP ones the protocol uses).</summary>
    internal static readonly string ExposedHeaders = string.Join(", ", [.. ProtocolHeaders.ResponseHeaders, "ETag", "Location", "Content-Type", "Retry-After"]);

    public string StreamsPath
    {
        get => _streamsPath;
        set
        {
            _streamsPath = value;
            _mountPrefix = StreamRoute.MountPrefix(value);
        }
    }

    private string _streamsPath = "/v1/stream";
    private string _mountPrefix = StreamRoute.MountPrefix("/v1/stream");

    private LiveReaderGate _liveReaders => _metrics.LiveReaders;

    /// <summary>Handles one request; at Debug level each request is also logged with its status and duration.</summary>
    public Task HandleAsync(HttpContext context) =>
        logger.IsEnabled(LogLevel.Debug) ? HandleAndLogAsync(context) : HandleCoreAsync(context);

    private async Task HandleAndLogAsync(HttpContext context)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            await HandleCoreAsync(context);
        }
        finally
        {
            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            // Escaped (PathString.ToString): a refused name with control characters must not reach the log raw.
            var requestPath = context.Request.Path.ToString();
            LogRequest(logger, context.Request.Method, requestPath, context.Response.StatusCode, elapsed);
        }
    }

    private async Task HandleCoreAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        WriteCommonHeaders(request, response);
        try
        {
            if (HttpMethods.IsOptions(request.Method))
            {
                WritePreflight(response);
                return;
            }
            if (RequestHeaders.FindControlCharacter(request.Headers) is { } header)
            {
                await HttpError.BadRequest($"The value of the {header} header contains a control character.").WriteAsync(response);
                return;
            }
            var pathProblem = StreamRoute.Parse(context, _mountPrefix, out var route);
            var controlApi = _control is not null && subscriptions!.Started;
            // A path that does not parse is a stream path for the table (read or write by method): refused after auth.
            if (_tokens is not null
                && RouteAccess.Required(route.Kind, request.Method, controlApi) is var access && access != Access.OwnCredentials
                && _tokens.Check(request, access) is { } denied)
            {
                _metrics.Rejected(denied.StatusCode == StatusCodes.Status401Unauthorized ? RejectionReasons.Unauthorized : RejectionReasons.Forbidden);
                await denied.WriteAsync(response);
                return;
            }
            if (pathProblem != StreamName.PathProblem.None)
            {
                _metrics.Rejected(RejectionReasons.BadName);
                await HttpError.BadRequest(StreamName.Message(pathProblem)).WriteAsync(response);
                return;
            }
            var name = route.Name;
            if (name.Length == 0)
            {
                await new HttpError(StatusCodes.Status404NotFound, "No stream named.").WriteAsync(response);
                return;
            }
            if (route.Kind == RouteKind.Compact)
            {
                await CompactAsync(context, route.StreamPath);
                return;
            }
            if (route.Kind != RouteKind.Stream)
            {
                if (controlApi)
                {
                    await _control!.HandleAsync(context, route, StreamsPath, context.RequestAborted);
                    return;
                }
                await new HttpError(StatusCodes.Status404NotFound, "The __ds path is reserved for control APIs.").WriteAsync(response);
                return;
            }
            if (StreamName.Check(name, _options.MaxStreamNameBytes, _options.MaxStreamNameSegments) is { } nameProblem)
            {
                _metrics.Rejected(RejectionReasons.BadName);
                await (nameProblem == StreamName.Problem.TooLong ? _nameTooLong : _tooManySegments).WriteAsync(response);
                return;
            }
            var ct = context.RequestAborted;
            switch (request.Method)
            {
                case "PUT":
                    await CreateAsync(context, name, ct);
                    break;
                case "POST":
                    await AppendAsync(context, name, ct);
                    break;
                case "GET":
                    await ReadAsync(context, name);
                    break;
                case "HEAD":
                    await HeadAsync(context, name, ct);
                    break;
                case "DELETE":
                    await DeleteAsync(context, name, ct);
                    break;
                default:
                    response.Headers.Allow = AllowedMethods;
                    await new HttpError(StatusCodes.Status405MethodNotAllowed, "Method not allowed.").WriteAsync(response);
                    break;
            }
        }
        catch (BadHttpRequestException ex) when (!response.HasStarted)
        {
            if (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                _metrics.Rejected(RejectionReasons.TooLarge);
            }
            await (ex.StatusCode == StatusCodes.Status413PayloadTooLarge ? _tooLarge : HttpError.BadRequest("Malformed request.")).WriteAsync(response);
        }
        catch (RequestBodyException ex) when (!response.HasStarted)
        {
            var requestPath = request.Path.Value ?? string.Empty;
            var statusCode = ex.Error.StatusCode;
            LogBodyRefused(logger, ex, request.Method, requestPath, statusCode);
            if (ex.Reason is { } reason)
            {
                _metrics.Rejected(reason);
            }
            response.Headers.Clear();
            WriteCommonHeaders(request, response);
            if (ex.RetryAfterSeconds is not null)
            {
                response.Headers.RetryAfter = ex.RetryAfterText;
            }
            if (ex.CloseConnection && !HttpProtocol.IsHttp2(request.Protocol) && !HttpProtocol.IsHttp3(request.Protocol))
            {
                response.Headers.Connection = "close";
            }
            await ex.Error.WriteAsync(response);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
        catch (Microsoft.AspNetCore.Connections.ConnectionResetException)
        {
            // The client went away while sending its body; nothing to answer.
        }
        catch (StoreUnavailableException ex) when (!response.HasStarted)
        {
            LogStoreUnavailable(logger, ex, request.Method, request.Path);
            response.Headers.Clear();
            WriteCommonHeaders(request, response);
            await ResultMapping.WriteUnavailableAsync(response);
        }
        catch (Exception ex) when (!response.HasStarted)
        {
            LogUnhandled(logger, ex, request.Method, request.Path);
            response.Headers.Clear();
            WriteCommonHeaders(request, response);
            await new HttpError(StatusCodes.Status500InternalServerError, "Internal server error.").WriteAsync(response);
        }
    }

    /// <summary>Security and CORS headers every answer carries (also the rate limiter's 429, so a browser can read it).</summary>
    internal void WriteCommonHeaders(HttpRequest request, HttpResponse response)
    {
        var headers = response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers["Cross-Origin-Resource-Policy"] = "cross-origin";
        var origins = _options.CorsOrigins;
        if (origins.Contains("*"))
        {
            headers.AccessControlAllowOrigin = "*";
        }
        else
        {
            var origin = request.Headers.Origin.ToString();
            headers.Vary = "Origin";
            if (origin.Length > 0 && origins.Contains(origin, StringComparer.OrdinalIgnoreCase))
            {
                headers.AccessControlAllowOrigin = origin;
            }
        }
        headers.AccessControlExposeHeaders = ExposedHeaders;
    }

    private static void WritePreflight(HttpResponse response)
    {
        response.StatusCode = StatusCodes.Status204NoContent;
        response.Headers.AccessControlAllowMethods = AllowedMethods;
        response.Headers.AccessControlAllowHeaders = AllowedHeaders;
        response.Headers.AccessControlMaxAge = "86400";
    }

    private async Task CreateAsync(HttpContext context, string name, CancellationToken ct)
    {
        var error = RequestParsing.ParseCreate(context.Request, StreamsPath, out var parsed);
        if (error is { } e)
        {
            await e.WriteAsync(context.Response);
            return;
        }
        using var body = await _bodies.ReadAsync(context, _options.MaxAppendBytes, ct);
        if (body is null)
        {
            _metrics.Rejected(RejectionReasons.TooLarge);
            await _tooLarge.WriteAsync(context.Response);
            return;
        }
        var request = new CreateStreamRequest
        {
            ContentType = parsed!.ContentType,
            TtlSeconds = parsed.TtlSeconds,
            ExpiresAt = parsed.ExpiresAt,
            Closed = parsed.Closed,
            Fork = parsed.Fork,
            Body = body.Memory,
        };
        var result = await store.CreateAsync(name, request, ct);
        if (ResultMapping.CreateError(result) is { } failure)
        {
            await failure.WriteAsync(context.Response);
            return;
        }
        ResultMapping.WriteCreated(context.Response, result);
        if (result.Status == CreateStatus.Created)
        {
            _metrics.Created();
            context.Response.Headers.Location = UriHelper.BuildAbsolute(context.Request.Scheme, context.Request.Host, context.Request.PathBase, context.Request.Path);
            // Before the answer: subscriptions link the stream (§6.2) and lifecycle hooks hear of it.
            await AwaitChangeListenersAsync();
        }
    }

    /// <summary>
    /// Waits until every listener of the store's change feed (subscriptions, lifecycle hooks) has handled the changes
    /// made so far, so a client that saw a create or delete answered sees its effects: read-your-writes. The listeners
    /// heard of the change from the store itself; their failures are theirs to log and never fail the request, and a
    /// client going away does not cancel them.
    /// </summary>
    private async Task AwaitChangeListenersAsync()
    {
        try
        {
            await store.Changes.WhenDeliveredAsync(StoppingToken);
        }
        catch (OperationCanceledException)
        {
            // Stopping: answer now.
        }
    }

    private async Task AppendAsync(HttpContext context, string name, CancellationToken ct)
    {
        var error = RequestParsing.ParseAppend(context.Request, out var parsed);
        if (error is { } e)
        {
            await e.WriteAsync(context.Response);
            return;
        }
        using var body = await _bodies.ReadAsync(context, _options.MaxAppendBytes, ct);
        if (body is null)
        {
            _metrics.Rejected(RejectionReasons.TooLarge);
            await _tooLarge.WriteAsync(context.Response);
            return;
        }
        var hasBody = body.Length > 0;
        if (hasBody && RequestParsing.CheckContentType(parsed!.ContentType) is { } invalidType)
        {
            await invalidType.WriteAsync(context.Response);
            return;
        }
        var request = new AppendRequest
        {
            // A close-only request ignores Content-Type entirely (§5.2).
            ContentType = hasBody ? parsed!.ContentType : null,
            Body = body.Memory,
            StreamSeq = parsed!.StreamSeq,
            Producer = parsed.Producer,
            Close = parsed.Close,
        };
        var result = await store.AppendAsync(name, request, ct);
        if (result.Status == AppendStatus.Appended)
        {
            if (hasBody)
            {
                _metrics.Appended(body.Length);
            }
        }
        await ResultMapping.WriteAppendAsync(context.Response, result, hasBody, request.Producer is not null);
    }

    private async Task HeadAsync(HttpContext context, string name, CancellationToken ct)
    {
        var result = await store.GetMetadataAsync(name, ct);
        if (result.Status != ReadStatus.Ok)
        {
            await ResultMapping.WriteReadErrorAsync(context.Response, result.Status, result.Info);
            return;
        }
        ResultMapping.WriteMetadata(context.Response, result.Info!);
    }

    private async Task DeleteAsync(HttpContext context, string name, CancellationToken ct)
    {
        var result = await store.DeleteAsync(name, ct);
        if (result.Status != DeleteStatus.Deleted)
        {
            await ResultMapping.DeleteError(result.Status).WriteAsync(context.Response);
            return;
        }
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        _metrics.Deleted();
        await AwaitChangeListenersAsync();
    }

    private CancellationToken StoppingToken => lifetime?.ApplicationStopping ?? CancellationToken.None;

    [LoggerMessage(EventId = LogEvents.RequestAnswered, Level = LogLevel.Debug, Message = "{Method} {Path} answered {StatusCode} in {ElapsedMilliseconds:0.0} ms")]
    private static partial void LogRequest(ILogger logger, string method, string path, int statusCode, double elapsedMilliseconds);

    [LoggerMessage(EventId = LogEvents.StoreUnavailable, Level = LogLevel.Warning, Message = "Store unavailable for {Method} {Path}")]
    private static partial void LogStoreUnavailable(ILogger logger, Exception exception, string method, string path);

    [LoggerMessage(EventId = LogEvents.RequestBodyRefused, Level = LogLevel.Debug, Message = "{Method} {Path}: request body refused with {StatusCode}")]
    private static partial void LogBodyRefused(ILogger logger, Exception exception, string method, string path, int statusCode);

    [LoggerMessage(EventId = LogEvents.UnhandledError, Level = LogLevel.Error, Message = "Unhandled error for {Method} {Path}")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string method, string path);
}
