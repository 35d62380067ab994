using System.Text.Json;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Subscriptions;
using Microsoft.AspNetCore.Http;

namespace DurableStreams.Server.Internal.Subscriptions;

/// <summary>
/// The reserved control API under <c>{streams}/__ds/</c> (§6–7): subscriptions, their streams, webhook callbacks,
/// pull-wake claim/ack/release, and the JWKS. Translates HTTP to the <see cref="SubscriptionEngine"/>'s calls and back.
/// </summary>
internal sealed class SubscriptionEndpoints(SubscriptionEngine engine, RequestBodyReader bodies)
{
    /// <summary>Control request bodies are small; larger ones are refused before buffering.</summary>
    private const int MaxBodyBytes = 1024 * 1024;

    /// <summary>
    /// Handles a request under <c>__ds</c>, routed by the same <see cref="StreamRoute"/> the auth table
    /// (<see cref="RouteAccess"/>) decided on, so the two can never disagree about which route a path is.
    /// </summary>
    public async Task HandleAsync(HttpContext context, StreamRoute route, string streamsPath, CancellationToken cancellationToken)
    {
        var method = context.Request.Method;
        if (route.Kind == RouteKind.Jwks)
        {
            if (!HttpMethods.IsGet(method) && !HttpMethods.IsHead(method))
            {
                await MethodNotAllowedAsync(context.Response, "GET, HEAD");
                return;
            }
            var jwks = engine.Operations.JwksJson();
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/jwk-set+json";
            context.Response.Headers.CacheControl = "public, max-age=300";
            context.Response.ContentLength = jwks.Length;
            if (!HttpMethods.IsHead(method))
            {
                await context.Response.Body.WriteAsync(jwks, cancellationToken);
            }
            return;
        }
        if (route.Kind is RouteKind.Unknown or RouteKind.Stream)
        {
            await ErrorAsync(context, SubscriptionErrorCode.SubscriptionNotFound, "No control API at this path.");
            return;
        }
        var id = route.SubscriptionId;
        if (id.Length == 0 || id.Length > 256 || id.Any(char.IsControl))
        {
            await ErrorAsync(context, SubscriptionErrorCode.InvalidRequest, "A subscription id is required.");
            return;
        }
        var baseUrl = $"{context.Request.Scheme}://{context.Request.Host}{context.Request.PathBase}{streamsPath.TrimEnd('/')}";
        try
        {
            switch (route.Kind)
            {
                case RouteKind.Subscription:
                    await BaseAsync(context, id, baseUrl, cancellationToken);
                    break;
                case RouteKind.SubscriptionStreams when HttpMethods.IsPost(method):
                    await AddStreamsAsync(context, id, cancellationToken);
                    break;
                case RouteKind.Callback when HttpMethods.IsPost(method):
                    await AckAsync(context, id, SubscriptionType.Webhook, cancellationToken);
                    break;
                case RouteKind.Ack when HttpMethods.IsPost(method):
                    await AckAsync(context, id, SubscriptionType.PullWake, cancellationToken);
                    break;
                case RouteKind.Release when HttpMethods.IsPost(method):
                    await ReleaseAsync(context, id, cancellationToken);
                    break;
                case RouteKind.Claim when HttpMethods.IsPost(method):
                    await ClaimAsync(context, id, cancellationToken);
                    break;
                case RouteKind.SubscriptionStream when HttpMethods.IsDelete(method):
                    var path = SubscriptionConfig.NormalizePath(route.StreamPath);
                    await WriteAsync(context, await engine.Operations.RemoveStreamAsync(id, path, cancellationToken));
                    break;
                case RouteKind.SubscriptionStream:
                    await MethodNotAllowedAsync(context.Response, "DELETE");
                    break;
                default:
                    await MethodNotAllowedAsync(context.Response, "POST");
                    break;
            }
        }
        catch (JsonException)
        {
            await ErrorAsync(context, SubscriptionErrorCode.InvalidRequest, "The body is not valid JSON.");
        }
    }

    private async Task BaseAsync(HttpContext context, string id, string baseUrl, CancellationToken cancellationToken)
    {
        switch (context.Request.Method)
        {
            case "PUT":
                {
                    using var body = await ReadJsonAsync(context, cancellationToken);
                    if (body is null)
                    {
                        return;
                    }
                    var parsed = ParseConfig(body.RootElement, out var problem);
                    if (parsed is null)
                    {
                        await ErrorAsync(context, SubscriptionErrorCode.InvalidRequest, problem!);
                        return;
                    }
                    if (parsed.WebhookUrl is { } url && await engine.Operations.ValidateWebhookUrlAsync(url, cancellationToken) is { } rejected)
                    {
                        await ErrorAsync(context, SubscriptionErrorCode.WebhookUrlRejected, rejected);
                        return;
                    }
                    var result = await engine.Operations.CreateOrConfirmAsync(id, parsed, baseUrl, cancellationToken);
                    if (result.Error is { } error)
                    {
                        await ResultMapping.WriteSubscriptionErrorAsync(context.Response, error);
                        return;
                    }
                    await WriteSubscriptionAsync(context, result.Value!, result.Value!.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK, baseUrl, cancellationToken);
                    return;
                }
            case "GET":
                {
                    var view = await engine.Operations.GetAsync(id, cancellationToken);
                    if (view is null)
                    {
                        await ErrorAsync(context, SubscriptionErrorCode.SubscriptionNotFound, "Subscription not found.");
                        return;
                    }
                    await WriteSubscriptionAsync(context, view, StatusCodes.Status200OK, baseUrl, cancellationToken);
                    return;
                }
            case "DELETE":
                await engine.Operations.DeleteAsync(id, cancellationToken);
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                return;
            default:
                await MethodNotAllowedAsync(context.Response, "GET, PUT, DELETE");
                return;
        }
    }

    private async Task AddStreamsAsync(HttpContext context, string id, CancellationToken cancellationToken)
    {
        using var body = await ReadJsonAsync(context, cancellationToken);
        if (body is null)
        {
            return;
        }
        var streams = ReadStringArray(body.RootElement, "streams");
        if (streams is null || streams.Count == 0)
        {
            await ErrorAsync(context, SubscriptionErrorCode.InvalidRequest, "streams must be a non-empty array of stream paths.");
            return;
        }
        await WriteAsync(context, await engine.Operations.AddStreamsAsync(id, SubscriptionConfig.NormalizeStreams(streams), cancellationToken));
    }

    /// <summary>
    /// The shared prelude of ack, callback and release: the wake's Bearer token and a parsed body, or null once an error
    /// has been answered.
    /// </summary>
    private async Task<(string Token, AckRequest Request)?> ReadFencedRequestAsync(HttpContext context, string expected, CancellationToken cancellationToken)
    {
        if (BearerToken(context.Request) is not { } token)
        {
            await ErrorAsync(context, SubscriptionErrorCode.TokenInvalid, "A Bearer token is required.");
            return null;
        }
        using var body = await ReadJsonAsync(context, cancellationToken);
        if (body is null)
        {
            return null;
        }
        if (ParseAck(body.RootElement) is not { } request)
        {
            await ErrorAsync(context, SubscriptionErrorCode.InvalidRequest, expected);
            return null;
        }
        return (token, request);
    }

    private async Task AckAsync(HttpContext context, string id, SubscriptionType type, CancellationToken cancellationToken)
    {
        if (await ReadFencedRequestAsync(context, "Expected wake_id, generation and optional acks [{ stream, offset }] and done.", cancellationToken) is not { } fenced)
        {
            return;
        }
        var (token, request) = fenced;
        var result = await engine.Wakes.AckAsync(id, token, request, type, cancellationToken);
        if (result.Error is { } error)
        {
            await ResultMapping.WriteSubscriptionErrorAsync(context.Response, error);
            return;
        }
        await WriteJsonAsync(context, StatusCodes.Status200OK, writer =>
        {
            writer.WriteStartObject();
            writer.WriteBoolean("ok", true);
            writer.WriteBoolean("next_wake", result.Value);
            writer.WriteEndObject();
        }, cancellationToken);
    }

    private async Task ReleaseAsync(HttpContext context, string id, CancellationToken cancellationToken)
    {
        if (await ReadFencedRequestAsync(context, "Expected wake_id and generation.", cancellationToken) is not { } fenced)
        {
            return;
        }
        var (token, request) = fenced;
        await WriteAsync(context, await engine.Wakes.ReleaseAsync(id, token, request, cancellationToken));
    }

    private async Task ClaimAsync(HttpContext context, string id, CancellationToken cancellationToken)
    {
        using var body = await ReadJsonAsync(context, cancellationToken);
        if (body is null)
        {
            return;
        }
        if (body.RootElement.ValueKind != JsonValueKind.Object || !body.RootElement.TryGetProperty("worker", out var workerElement)
            || workerElement.ValueKind != JsonValueKind.String || workerElement.GetString() is not { Length: > 0 } worker)
        {
            await ErrorAsync(context, SubscriptionErrorCode.InvalidRequest, "worker must be a non-empty string.");
            return;
        }
        var result = await engine.Wakes.ClaimAsync(id, worker, cancellationToken);
        if (result.Error is { } error)
        {
            await ResultMapping.WriteSubscriptionErrorAsync(context.Response, error);
            return;
        }
        var claim = result.Value!;
        await WriteJsonAsync(context, StatusCodes.Status200OK, writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("wake_id", claim.WakeId);
            writer.WriteNumber("generation", claim.Generation);
            writer.WriteString("token", claim.Token);
            writer.WritePropertyName("streams");
            StreamViews.Write(writer, claim.Streams, withTail: true);
            writer.WriteNumber("lease_ttl_ms", claim.LeaseTtlMs);
            writer.WriteEndObject();
        }, cancellationToken);
    }

    /// <summary>Parses and normalises a PUT body (§6.2); null with a reason when it is invalid.</summary>
    internal static SubscriptionConfig? ParseConfig(JsonElement root, out string? problem)
    {
        problem = null;
        if (root.ValueKind != JsonValueKind.Object)
        {
            problem = "The body must be a JSON object.";
            return null;
        }
        if (!SubscriptionConfig.TryParseType(ReadString(root, "type"), out var type))
        {
            problem = "type must be \"webhook\" or \"pull-wake\".";
            return null;
        }
        var pattern = ReadString(root, "pattern") is { Length: > 0 } p ? SubscriptionConfig.NormalizePath(p) : null;
        List<string> streams = [];
        if (root.TryGetProperty("streams", out var streamsElement) && streamsElement.ValueKind != JsonValueKind.Null)
        {
            if (ReadStringArray(root, "streams") is not { } list)
            {
                problem = "streams must be an array of stream paths.";
                return null;
            }
            streams = list;
        }
        var normalizedStreams = SubscriptionConfig.NormalizeStreams(streams);
        if (string.IsNullOrEmpty(pattern) && normalizedStreams.Count == 0)
        {
            problem = "At least one of pattern or streams is required.";
            return null;
        }
        if (pattern is not null && StreamName.IsReserved(pattern))
        {
            problem = "The __ds prefix is reserved.";
            return null;
        }
        var lease = SubscriptionConfig.DefaultLeaseTtlMs;
        if (root.TryGetProperty("lease_ttl_ms", out var leaseElement) && leaseElement.ValueKind != JsonValueKind.Null)
        {
            if (leaseElement.ValueKind != JsonValueKind.Number || !leaseElement.TryGetInt32(out lease)
                || lease < SubscriptionConfig.MinLeaseTtlMs || lease > SubscriptionConfig.MaxLeaseTtlMs)
            {
                problem = "lease_ttl_ms must be an integer from 1000 to 600000.";
                return null;
            }
        }
        string? webhookUrl = null;
        string? wakeStream = null;
        if (type == SubscriptionType.Webhook)
        {
            if (!root.TryGetProperty("webhook", out var webhook) || webhook.ValueKind != JsonValueKind.Object
                || ReadString(webhook, "url") is not { Length: > 0 } url)
            {
                problem = "webhook subscriptions require webhook.url.";
                return null;
            }
            webhookUrl = url;
        }
        else
        {
            if (ReadString(root, "wake_stream") is not { Length: > 0 } wake || SubscriptionConfig.NormalizePath(wake).Length == 0)
            {
                problem = "pull-wake subscriptions require wake_stream.";
                return null;
            }
            wakeStream = SubscriptionConfig.NormalizePath(wake);
            if (StreamName.IsReserved(wakeStream))
            {
                problem = "The __ds prefix is reserved.";
                return null;
            }
        }
        var description = root.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        return new SubscriptionConfig
        {
            Type = type,
            Pattern = pattern,
            Streams = normalizedStreams,
            WebhookUrl = webhookUrl,
            WakeStream = wakeStream,
            LeaseTtlMs = lease,
            Description = description,
        };
    }

    internal static AckRequest? ParseAck(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var wakeId = ReadString(root, "wake_id");
        long? generation = root.TryGetProperty("generation", out var g) && g.ValueKind == JsonValueKind.Number && g.TryGetInt64(out var value) ? value : null;
        var acks = new List<(string, string)>();
        if (root.TryGetProperty("acks", out var acksElement) && acksElement.ValueKind != JsonValueKind.Null)
        {
            if (acksElement.ValueKind != JsonValueKind.Array)
            {
                return null;
            }
            foreach (var ack in acksElement.EnumerateArray())
            {
                var stream = ack.ValueKind == JsonValueKind.Object ? ReadString(ack, "stream") ?? ReadString(ack, "path") : null;
                var offset = ack.ValueKind == JsonValueKind.Object ? ReadString(ack, "offset") : null;
                if (stream is null || offset is null)
                {
                    return null;
                }
                acks.Add((stream, offset));
            }
        }
        var done = root.TryGetProperty("done", out var doneElement) && doneElement.ValueKind == JsonValueKind.True;
        return new AckRequest(wakeId, generation, acks, done);
    }

    private static string? ReadString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static List<string>? ReadStringArray(JsonElement element, string name)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            return null;
        }
        var list = new List<string>();
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String || item.GetString() is not { Length: > 0 } text)
            {
                return null;
            }
            list.Add(text);
        }
        return list;
    }

    private static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        return header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && header.Length > Scheme.Length ? header[Scheme.Length..].Trim() : null;
    }

    /// <summary>Reads a JSON body (at most 1 MiB); null after answering 400 when it is missing or too large.</summary>
    private async Task<JsonDocument?> ReadJsonAsync(HttpContext context, CancellationToken cancellationToken)
    {
        using var body = await bodies.ReadAsync(context, MaxBodyBytes, cancellationToken);
        if (body is null)
        {
            await ErrorAsync(context, SubscriptionErrorCode.InvalidRequest, "The body is too large.");
            return null;
        }
        if (body.Length == 0)
        {
            await ErrorAsync(context, SubscriptionErrorCode.InvalidRequest, "A JSON body is required.");
            return null;
        }
        // A document keeps the memory it parses; the pooled body goes back when this method returns.
        return JsonDocument.Parse(body.Memory.ToArray());
    }

    private static async Task WriteSubscriptionAsync(HttpContext context, SubscriptionView view, int status, string baseUrl, CancellationToken cancellationToken)
    {
        var state = view.State;
        await WriteJsonAsync(context, status, writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("id", state.Id);
            writer.WriteString("subscription_id", state.Id);
            writer.WriteString("type", SubscriptionConfig.FormatType(state.Type));
            WriteNullable(writer, "pattern", state.Pattern);
            writer.WritePropertyName("streams");
            var links = state.Links.OrderBy(l => l.Key, StringComparer.Ordinal)
                .Select(l => new StreamView(l.Key, l.Value.LinkType, l.Value.AckedOffset, l.Value.AckedOffset, false));
            StreamViews.Write(writer, links, withTail: false);
            if (state.WebhookUrl is { } url)
            {
                writer.WriteStartObject("webhook");
                writer.WriteString("url", url);
                writer.WriteStartObject("signing");
                writer.WriteString("alg", "ed25519");
                writer.WriteString("kid", view.ActiveKid);
                writer.WriteString("jwks_url", ControlPaths.ControlUrl(baseUrl, "jwks.json"));
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            else
            {
                writer.WriteNull("webhook");
            }
            WriteNullable(writer, "wake_stream", state.WakeStream);
            writer.WriteNumber("lease_ttl_ms", state.LeaseTtlMs);
            writer.WriteString("created_at", state.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteString("status", state.Status);
            WriteNullable(writer, "description", state.Description);
            writer.WriteNumber("generation", state.Generation);
            if (state.NextAttemptAt is { } next)
            {
                writer.WriteNumber("next_attempt_at", next.ToUnixTimeMilliseconds());
            }
            writer.WriteEndObject();
        }, cancellationToken);
    }

    private static void WriteNullable(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, value);
        }
    }

    private static async Task WriteJsonAsync(HttpContext context, int status, Action<Utf8JsonWriter> write, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.ContentLength = buffer.Length;
        await context.Response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancellationToken);
    }

    private static Task WriteAsync(HttpContext context, SubscriptionError? error)
    {
        if (error is not null)
        {
            return ResultMapping.WriteSubscriptionErrorAsync(context.Response, error);
        }
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        return Task.CompletedTask;
    }

    private static Task ErrorAsync(HttpContext context, SubscriptionErrorCode code, string message) =>
        ResultMapping.WriteSubscriptionErrorAsync(context.Response, new SubscriptionError(code, message));

    private static Task MethodNotAllowedAsync(HttpResponse response, string allow)
    {
        response.Headers.Allow = allow;
        return new HttpError(StatusCodes.Status405MethodNotAllowed, "Method not allowed.").WriteAsync(response);
    }
}
