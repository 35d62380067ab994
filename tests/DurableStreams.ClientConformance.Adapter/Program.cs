// Adapter between the official client conformance suite (a runner that writes one JSON command per line to stdin and
// reads one JSON result per line from stdout) and DurableStreams.Client. Every declared feature is a client API; the
// adapter only translates commands and results. Nothing but results is written to stdout.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DurableStreams.Client;
using DurableStreams.Protocol;

var adapter = new Adapter();
using var stdin = new StreamReader(Console.OpenStandardInput(), Encoding.UTF8);
using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = true };
while (await stdin.ReadLineAsync() is { } line)
{
    if (string.IsNullOrWhiteSpace(line))
    {
        continue;
    }
    JsonObject result;
    string type = "unknown";
    try
    {
        var command = JsonNode.Parse(line)!.AsObject();
        type = (string?)command["type"] ?? "unknown";
        result = await adapter.HandleAsync(type, command);
    }
    catch (Exception ex)
    {
        result = Adapter.Error(type, ex);
    }
    await stdout.WriteLineAsync(result.ToJsonString());
    if (type == "shutdown")
    {
        break;
    }
}
await adapter.DisposeAsync();

internal sealed class Adapter : IAsyncDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler()) { Timeout = Timeout.InfiniteTimeSpan };
    private readonly Dictionary<string, string> _contentTypes = [];
    private readonly Dictionary<string, IdempotentProducer> _producers = [];
    private string _serverUrl = "http://127.0.0.1/";

    // set-dynamic-header / set-dynamic-param: providers handed to the client (HeaderProviders, QueryParameterProviders),
    // which calls them once per request; what they returned during the current command is reported back.
    private readonly Dictionary<string, Func<CancellationToken, ValueTask<string>>> _headerProviders = [];
    private readonly Dictionary<string, Func<CancellationToken, ValueTask<string>>> _paramProviders = [];
    private readonly Dictionary<string, string> _headersSent = [];
    private readonly Dictionary<string, string> _paramsSent = [];

    public async Task<JsonObject> HandleAsync(string type, JsonObject command)
    {
        _headersSent.Clear();
        _paramsSent.Clear();
        switch (type)
        {
            case "init":
                _serverUrl = ((string?)command["serverUrl"] ?? _serverUrl).TrimEnd('/');
                _contentTypes.Clear();
                _headerProviders.Clear();
                _paramProviders.Clear();
                await DisposeProducersAsync();
                return new JsonObject
                {
                    ["type"] = "init",
                    ["success"] = true,
                    ["clientName"] = "DurableStreams.Client (.NET)",
                    ["clientVersion"] = typeof(DurableStreamClient).Assembly.GetName().Version?.ToString() ?? "0",
                    ["features"] = new JsonObject
                    {
                        // IdempotentProducer batches queued messages (Linger, MaxBatchBytes).
                        ["batching"] = true,
                        // ReadAsync with LiveMode.Sse / LiveMode.LongPoll.
                        ["sse"] = true,
                        ["longPoll"] = true,
                        // ReadAsync is an IAsyncEnumerable of chunks, each with its own offset.
                        ["streaming"] = true,
                        // IdempotentProducerOptions rejects MaxBatchBytes = 0 (no "0 means default").
                        ["strictZeroValidation"] = true,
                        // IdempotentProducerOptions.MaxBatchItems (validated: at least 1).
                        ["batchItems"] = true,
                        // DurableStreamClientOptions.HeaderProviders / QueryParameterProviders, called per request.
                        ["dynamicHeaders"] = true,
                        // LiveMode.Auto: catch up, then SSE (text/*, JSON) or long-poll.
                        ["auto"] = true,
                        // RetryPolicy (MaxRetries, InitialDelay, MaxDelay, Multiplier), validated by the DurableStreamClient constructor.
                        ["retryOptions"] = true,
                    },
                };
            case "create":
                return await CreateAsync(command);
            case "connect":
            {
                var path = Path(command);
                var metadata = await Client(command).GetMetadataAsync(Url(path));
                if (metadata.ContentType is { } contentType)
                {
                    _contentTypes[path] = contentType;
                }
                return Ok("connect", new JsonObject { ["status"] = 200, ["offset"] = metadata.NextOffset });
            }
            case "append":
                return await AppendAsync(command);
            case "read":
                return await ReadAsync(command);
            case "head":
            {
                var path = Path(command);
                var metadata = await Client(command).GetMetadataAsync(Url(path));
                if (metadata.ContentType is { } contentType)
                {
                    _contentTypes[path] = contentType;
                }
                var result = new JsonObject
                {
                    ["status"] = 200,
                    ["offset"] = metadata.NextOffset,
                    ["contentType"] = metadata.ContentType,
                    ["streamClosed"] = metadata.Closed,
                };
                if (metadata.Ttl is { } ttl)
                {
                    result["ttlSeconds"] = (long)ttl.TotalSeconds;
                }
                if (metadata.ExpiresAt is { } expiresAt)
                {
                    result["expiresAt"] = expiresAt.ToString("O", CultureInfo.InvariantCulture);
                }
                return Ok("head", result);
            }
            case "delete":
            {
                var path = Path(command);
                await Client(command).DeleteAsync(Url(path));
                _contentTypes.Remove(path);
                return Ok("delete", new JsonObject { ["status"] = 200 });
            }
            case "close":
            {
                var path = Path(command);
                var data = (string?)command["data"];
                AppendResult closed;
                if (data is null)
                {
                    closed = await Client(command).CloseAsync(Url(path));
                }
                else
                {
                    var contentType = (string?)command["contentType"] ?? ContentTypeOf(path);
                    closed = await Client(command).AppendAsync(Url(path), data, contentType, new AppendOptions { Close = true });
                }
                return Ok("close", new JsonObject { ["finalOffset"] = closed.NextOffset });
            }
            case "idempotent-append":
            {
                var producer = Producer(command);
                await producer.AppendAsync(Encoding.UTF8.GetBytes((string?)command["data"] ?? string.Empty));
                await producer.FlushAsync();
                return Ok("idempotent-append", new JsonObject { ["status"] = 200 });
            }
            case "idempotent-append-batch":
                return await AppendBatchAsync(command);
            case "idempotent-close":
            {
                var producer = Producer(command);
                var data = (string?)command["data"];
                var closed = await producer.CloseStreamAsync(data is null ? default : Encoding.UTF8.GetBytes(data));
                return Ok("idempotent-close", new JsonObject { ["status"] = 200, ["finalOffset"] = closed.NextOffset });
            }
            case "idempotent-detach":
            {
                var key = ProducerKey(command);
                if (_producers.Remove(key, out var producer))
                {
                    await producer.DisposeAsync();
                }
                return Ok("idempotent-detach", new JsonObject { ["status"] = 200 });
            }
            case "set-dynamic-header":
            {
                var name = (string)command["name"]!;
                _headerProviders[name] = Provider(name, (string?)command["valueType"], (string?)command["initialValue"], _headersSent);
                return Ok("set-dynamic-header", []);
            }
            case "set-dynamic-param":
            {
                var name = (string)command["name"]!;
                _paramProviders[name] = Provider(name, (string?)command["valueType"], null, _paramsSent);
                return Ok("set-dynamic-param", []);
            }
            case "clear-dynamic":
                _headerProviders.Clear();
                _paramProviders.Clear();
                return Ok("clear-dynamic", []);
            case "validate":
                return await ValidateAsync(command["target"]!.AsObject());
            case "shutdown":
                await DisposeProducersAsync();
                return Ok("shutdown", []);
            default:
                return new JsonObject
                {
                    ["type"] = "error",
                    ["success"] = false,
                    ["commandType"] = type,
                    ["errorCode"] = "NOT_SUPPORTED",
                    ["message"] = $"The .NET client adapter does not support '{type}'.",
                };
        }
    }

    private async Task<JsonObject> CreateAsync(JsonObject command)
    {
        var path = Path(command);
        var contentType = (string?)command["contentType"] ?? ContentTypes.Default;
        var options = new CreateStreamOptions
        {
            ContentType = contentType,
            Ttl = command["ttlSeconds"] is { } ttl ? TimeSpan.FromSeconds((long)ttl) : null,
            ExpiresAt = (string?)command["expiresAt"] is { } at ? DateTimeOffset.Parse(at, CultureInfo.InvariantCulture) : null,
            Closed = (bool?)command["closed"] ?? false,
            Body = (string?)command["data"] is { } data ? Encoding.UTF8.GetBytes(data) : ReadOnlyMemory<byte>.Empty,
        };
        var info = await Client(command).CreateAsync(Url(path), options);
        _contentTypes[path] = contentType;
        return Ok("create", new JsonObject
        {
            ["status"] = info.Outcome == CreateOutcome.Created ? 201 : 200,
            ["offset"] = info.NextOffset,
        });
    }

    private async Task<JsonObject> AppendAsync(JsonObject command)
    {
        var path = Path(command);
        var data = (string?)command["data"] ?? string.Empty;
        byte[] body = (bool?)command["binary"] == true ? Convert.FromBase64String(data) : Encoding.UTF8.GetBytes(data);
        var options = new AppendOptions { StreamSeq = command["seq"] is { } seq ? ((long)seq).ToString(CultureInfo.InvariantCulture) : null };
        var result = await Client(command).AppendAsync(Url(path), body, ContentTypeOf(path), options);
        return WithSent(Ok("append", new JsonObject { ["status"] = 200, ["offset"] = result.NextOffset }));
    }

    private async Task<JsonObject> ReadAsync(JsonObject command)
    {
        var path = Path(command);
        var liveNode = command["live"];
        LiveMode live;
        if (liveNode is null || liveNode.GetValueKind() == JsonValueKind.False)
        {
            live = LiveMode.None;
        }
        else if (liveNode.GetValueKind() == JsonValueKind.String && (string?)liveNode == "long-poll")
        {
            live = LiveMode.LongPoll;
        }
        else if (liveNode.GetValueKind() == JsonValueKind.String && (string?)liveNode == "sse")
        {
            live = LiveMode.Sse;
        }
        else if (liveNode.GetValueKind() == JsonValueKind.True)
        {
            live = LiveMode.Auto;
        }
        else
        {
            return new JsonObject
            {
                ["type"] = "error",
                ["success"] = false,
                ["commandType"] = "read",
                ["errorCode"] = "NOT_SUPPORTED",
                ["message"] = $"Live mode {liveNode.ToJsonString()} is not a mode of the .NET client.",
            };
        }
        var offset = (string?)command["offset"] ?? "-1";
        var timeout = TimeSpan.FromMilliseconds((double?)command["timeoutMs"] ?? 5000);
        var maxChunks = (int?)command["maxChunks"] ?? 100;
        var waitForUpToDate = (bool?)command["waitForUpToDate"] ?? false;
        var json = ContentTypes.IsJson(ContentTypeOf(path));

        var chunks = new List<(string Data, string Offset)>();
        var finalOffset = offset;
        var upToDate = false;
        var streamClosed = false;
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await foreach (var chunk in Client(command).ReadAsync(Url(path), new ReadOptions { Offset = offset, Live = live }, cancellation.Token))
            {
                finalOffset = chunk.NextOffset;
                upToDate = chunk.UpToDate;
                streamClosed = chunk.StreamClosed;
                if (!chunk.Data.IsEmpty)
                {
                    string text;
                    if (json)
                    {
                        var messages = DurableStreamClient.JsonMessages(chunk.Data);
                        text = messages.Count == 0 ? string.Empty : new JsonArray([.. messages.Select(m => JsonNode.Parse(m.GetRawText()))]).ToJsonString();
                    }
                    else
                    {
                        text = Encoding.UTF8.GetString(chunk.Data.Span);
                    }
                    if (text.Length > 0)
                    {
                        chunks.Add((text, chunk.NextOffset));
                    }
                }
                if (live == LiveMode.None)
                {
                    continue;
                }
                if ((waitForUpToDate && chunk.UpToDate) || chunks.Count >= maxChunks)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            upToDate = true; // nothing more arrived within the read's time: caught up
        }

        if (live == LiveMode.None && chunks.Count > 1)
        {
            // A catch-up read is one result, as in the reference adapter: the messages (or bytes) of all chunks together.
            string merged = json
                ? new JsonArray([.. chunks.SelectMany(c => JsonNode.Parse(c.Data)!.AsArray().Select(n => n?.DeepClone()))]).ToJsonString()
                : string.Concat(chunks.Select(c => c.Data));
            chunks = [(merged, finalOffset)];
        }
        var array = new JsonArray();
        foreach (var (data, chunkOffset) in chunks)
        {
            array.Add(new JsonObject { ["data"] = data, ["offset"] = chunkOffset });
        }
        return WithSent(Ok("read", new JsonObject
        {
            // A long-poll read that saw no data ended on the server's 204 (timed out up to date), reported by the
            // client as empty up-to-date chunks carrying the resolved offset.
            ["status"] = live == LiveMode.LongPoll && chunks.Count == 0 && upToDate && !streamClosed ? 204 : 200,
            ["chunks"] = array,
            ["offset"] = finalOffset,
            ["upToDate"] = upToDate,
            ["streamClosed"] = streamClosed,
        }));
    }

    private async Task<JsonObject> AppendBatchAsync(JsonObject command)
    {
        var path = Path(command);
        var maxInFlight = (int?)command["maxInFlight"] ?? 1;
        var concurrent = maxInFlight > 1;
        var options = new IdempotentProducerOptions
        {
            MaxInFlight = maxInFlight,
            Linger = concurrent ? TimeSpan.Zero : TimeSpan.FromSeconds(1),
            MaxBatchBytes = concurrent ? 1 : 1024 * 1024,
        };
        var producer = Client(command).CreateProducer(
            Url(path), (string)command["producerId"]!, (long?)command["epoch"] ?? 0, ContentTypeOf(path), (bool?)command["autoClaim"] ?? false, options);
        await using (producer)
        {
            foreach (var item in command["items"]!.AsArray())
            {
                await producer.AppendAsync(Encoding.UTF8.GetBytes((string?)item ?? string.Empty));
            }
            await producer.FlushAsync();
        }
        return Ok("idempotent-append-batch", new JsonObject { ["status"] = 200 });
    }

    private async Task<JsonObject> ValidateAsync(JsonObject target)
    {
        switch ((string?)target["target"])
        {
            case "idempotent-producer":
            {
                var options = IdempotentProducerOptions.Default;
                if (target["maxBatchBytes"] is { } maxBatchBytes)
                {
                    options = options with { MaxBatchBytes = (int)maxBatchBytes };
                }
                if (target["maxBatchItems"] is { } maxBatchItems)
                {
                    options = options with { MaxBatchItems = (int)maxBatchItems };
                }
                using var client = new DurableStreamClient(_http, new DurableStreamClientOptions { BaseUrl = new Uri(_serverUrl + "/") });
                try
                {
                    var producer = client.CreateProducer(
                        Url("/test-validate"), (string?)target["producerId"] ?? "test-producer", (long?)target["epoch"] ?? 0, options: options);
                    await producer.DisposeAsync();
                }
                catch (ArgumentException ex)
                {
                    return InvalidArgument(ex.Message);
                }
                return Ok("validate", []);
            }
            case "retry-options":
            {
                var retry = RetryPolicy.Default;
                if (target["maxRetries"] is { } maxRetries)
                {
                    retry = retry with { MaxRetries = (int)maxRetries };
                }
                if (target["initialDelayMs"] is { } initialDelayMs)
                {
                    retry = retry with { InitialDelay = TimeSpan.FromMilliseconds((double)initialDelayMs) };
                }
                if (target["maxDelayMs"] is { } maxDelayMs)
                {
                    retry = retry with { MaxDelay = TimeSpan.FromMilliseconds((double)maxDelayMs) };
                }
                if (target["multiplier"] is { } multiplier)
                {
                    retry = retry with { Multiplier = (double)multiplier };
                }
                try
                {
                    using var client = new DurableStreamClient(_http, new DurableStreamClientOptions { BaseUrl = new Uri(_serverUrl + "/"), Retry = retry });
                }
                catch (ArgumentException ex)
                {
                    return InvalidArgument(ex.Message);
                }
                return Ok("validate", []);
            }
            default:
                return new JsonObject
                {
                    ["type"] = "error",
                    ["success"] = false,
                    ["commandType"] = "validate",
                    ["errorCode"] = "NOT_SUPPORTED",
                    ["message"] = $"Unknown validation target {(string?)target["target"]}.",
                };
        }
    }

    private IdempotentProducer Producer(JsonObject command)
    {
        var key = ProducerKey(command);
        if (!_producers.TryGetValue(key, out var producer))
        {
            var path = Path(command);
            producer = Client(command).CreateProducer(
                Url(path),
                (string)command["producerId"]!,
                (long?)command["epoch"] ?? 0,
                ContentTypeOf(path),
                (bool?)command["autoClaim"] ?? false,
                new IdempotentProducerOptions { Linger = TimeSpan.Zero, MaxInFlight = 1 });
            _producers[key] = producer;
        }
        return producer;
    }

    private static Func<CancellationToken, ValueTask<string>> Provider(string name, string? valueType, string? initialValue, Dictionary<string, string> sent)
    {
        var counter = 0;
        return _ =>
        {
            var value = valueType switch
            {
                "counter" => Interlocked.Increment(ref counter).ToString(CultureInfo.InvariantCulture),
                "timestamp" => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
                _ => initialValue ?? string.Empty,
            };
            lock (sent)
            {
                sent[name] = value;
            }
            return ValueTask.FromResult(value);
        };
    }

    /// <summary>Adds what the providers returned during this command (headersSent, paramsSent) to a result.</summary>
    private JsonObject WithSent(JsonObject result)
    {
        if (_headersSent.Count > 0)
        {
            result["headersSent"] = new JsonObject(_headersSent.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value)));
        }
        if (_paramsSent.Count > 0)
        {
            result["paramsSent"] = new JsonObject(_paramsSent.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value)));
        }
        return result;
    }

    private static string ProducerKey(JsonObject command) =>
        $"{Path(command)}|{(string?)command["producerId"]}|{(long?)command["epoch"] ?? 0}";

    /// <summary>A client with the command's headers as its static <see cref="DurableStreamClientOptions.Headers"/>.</summary>
    private DurableStreamClient Client(JsonObject command)
    {
        var headers = new Dictionary<string, string>();
        if (command["headers"] is JsonObject given)
        {
            foreach (var (name, value) in given)
            {
                headers[name] = (string?)value ?? string.Empty;
            }
        }
        // RetryAppends: the suite expects plain appends to be retried on 5xx, which the client does only on this opt-in.
        return new DurableStreamClient(_http, new DurableStreamClientOptions
        {
            BaseUrl = new Uri(_serverUrl + "/"),
            Headers = headers,
            HeaderProviders = new Dictionary<string, Func<CancellationToken, ValueTask<string>>>(_headerProviders),
            QueryParameterProviders = new Dictionary<string, Func<CancellationToken, ValueTask<string>>>(_paramProviders),
            RetryAppends = true,
        });
    }

    private static string Path(JsonObject command) => (string?)command["path"] ?? throw new ArgumentException("The command lacks a path.");

    private string Url(string path) => _serverUrl + (path.StartsWith('/') ? path : "/" + path);

    private string ContentTypeOf(string path) => _contentTypes.TryGetValue(path, out var type) ? type : ContentTypes.Default;

    /// <summary>A validate command's answer when the client refused the options (the suite's INVALID_ARGUMENT).</summary>
    private static JsonObject InvalidArgument(string message) => new()
    {
        ["type"] = "error",
        ["success"] = false,
        ["commandType"] = "validate",
        ["errorCode"] = "INVALID_ARGUMENT",
        ["message"] = message,
    };

    private static JsonObject Ok(string type, JsonObject fields)
    {
        var result = new JsonObject { ["type"] = type, ["success"] = true };
        foreach (var (name, value) in fields.ToList())
        {
            fields.Remove(name);
            result[name] = value;
        }
        return result;
    }

    public static JsonObject Error(string commandType, Exception exception)
    {
        var result = new JsonObject
        {
            ["type"] = "error",
            ["success"] = false,
            ["commandType"] = commandType,
            ["message"] = exception.Message,
        };
        switch (exception)
        {
            case DurableStreamException ds:
                if (ds.StatusCode is { } status)
                {
                    result["status"] = (int)status;
                }
                result["errorCode"] = ds.ErrorCode switch
                {
                    DurableStreamErrorCode.NotFound => "NOT_FOUND",
                    DurableStreamErrorCode.Conflict => "CONFLICT",
                    DurableStreamErrorCode.SequenceGap or DurableStreamErrorCode.SequenceConflict => "SEQUENCE_CONFLICT",
                    DurableStreamErrorCode.ParseError => "PARSE_ERROR",
                    DurableStreamErrorCode.StreamClosed => "STREAM_CLOSED",
                    DurableStreamErrorCode.BadRequest => "INVALID_OFFSET",
                    DurableStreamErrorCode.Unavailable when ds.StatusCode is null => "NETWORK_ERROR",
                    _ => "UNEXPECTED_STATUS",
                };
                break;
            case ArgumentException:
                result["errorCode"] = "INVALID_ARGUMENT";
                break;
            default:
                result["errorCode"] = "INTERNAL_ERROR";
                break;
        }
        return result;
    }

    private async Task DisposeProducersAsync()
    {
        foreach (var producer in _producers.Values)
        {
            try
            {
                await producer.DisposeAsync();
            }
            catch (Exception ex) when (ex is DurableStreamException or ObjectDisposedException or InvalidOperationException)
            {
                // A producer that already failed has nothing left to flush.
            }
        }
        _producers.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        await DisposeProducersAsync();
        _http.Dispose();
    }
}
