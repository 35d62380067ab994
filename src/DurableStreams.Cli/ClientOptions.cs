using System.CommandLine;
using DurableStreams.Client;
using DurableStreams.Protocol;

namespace DurableStreams.Cli;

/// <summary>
/// The options every client command shares (<c>--url</c>, <c>--auth</c>, recursive on the root command), and the
/// one place that turns a client failure into an error line and an exit code.
/// </summary>
internal sealed class ClientOptions
{
    /// <summary>The environment variable that supplies <c>--url</c>'s default.</summary>
    public const string UrlVariable = "STREAM_URL";

    /// <summary>The environment variable that supplies <c>--auth</c>'s default.</summary>
    public const string AuthVariable = "STREAM_AUTH";

    /// <summary>The environment variable that supplies <c>--streams-path</c>'s default.</summary>
    public const string StreamsPathVariable = "STREAM_PATH";

    /// <summary>The server's streams root when neither <c>--url</c> nor <c>STREAM_URL</c> is given.</summary>
    public const string DefaultUrl = "http://localhost:4437/v1/stream";

    /// <summary>The path under which this server (and <c>serve</c>) mounts its streams; appended to a bare <c>--url</c>.</summary>
    public const string DefaultStreamsPath = "/v1/stream";

    public ClientOptions(ClientConsole console)
    {
        Console = console;
        Url = new Option<string>("--url")
        {
            Description = $"The server's streams URL; a URL whose path does not end in --streams-path (/v1/stream) gets it appended (default: ${UrlVariable}, else {DefaultUrl}).",
            HelpName = "url",
            Recursive = true,
            DefaultValueFactory = _ => console.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } url ? url : DefaultUrl,
        };
        Url.Validators.Add(result =>
        {
            var text = result.GetValueOrDefault<string>();
            if (!TryNormalizeUrl(text, out _))
            {
                result.AddError($"Invalid value '{text}' for --url: expected an absolute http or https URL.");
            }
        });
        StreamsPath = new Option<string>("--streams-path")
        {
            Description = $"The path under which the server serves its streams, appended to --url unless the URL already ends in it; "
                + $"'/' takes --url as the streams root as given, for servers that serve streams elsewhere (default: ${StreamsPathVariable}, else {DefaultStreamsPath}).",
            HelpName = "path",
            Recursive = true,
            DefaultValueFactory = _ => console.GetEnvironmentVariable(StreamsPathVariable) is { Length: > 0 } path ? path : DefaultStreamsPath,
        };
        StreamsPath.Validators.Add(result =>
        {
            var text = result.GetValueOrDefault<string>();
            if (!IsValidStreamsPath(text))
            {
                result.AddError($"Invalid value '{text}' for --streams-path: expected a path starting with '/', such as /v1/stream or /.");
            }
        });
        Timeout = new Option<TimeSpan?>("--timeout")
        {
            Description = "Longest wait for each request's response headers, for example 10s or 500ms (default 60s). A request "
                + "that gets no answer in time is retried when safe, then fails with exit code 5. A long-poll that the server is holding "
                + "(follow) waits at least 60s whatever this says.",
            HelpName = "duration",
            Recursive = true,
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
                if (!DurationParser.TryParse(text, out var duration) || duration <= TimeSpan.Zero)
                {
                    result.AddError($"Invalid value '{text}' for --timeout: expected a duration greater than zero, as {DurationParser.ExpectedFormat}.");
                    return null;
                }

                return duration;
            },
        };
        Verbose = new Option<bool>("--verbose", "-v")
        {
            Description = "Log each request and its response status to standard error.",
            Recursive = true,
        };
        Auth = new Option<string?>("--auth")
        {
            Description = $"The Authorization header value sent with every request, for example 'Bearer <token>' (default: ${AuthVariable}).",
            HelpName = "value",
            Recursive = true,
            DefaultValueFactory = _ => console.GetEnvironmentVariable(AuthVariable) is { Length: > 0 } auth ? auth : null,
        };
    }

    public ClientConsole Console { get; }

    public Option<string> Url { get; }

    public Option<string> StreamsPath { get; }

    public Option<string?> Auth { get; }

    public Option<TimeSpan?> Timeout { get; }

    public Option<bool> Verbose { get; }

    /// <summary>A progress bar on standard error, drawn only when it is a terminal.</summary>
    public ProgressBar CreateProgressBar(ParseResult parseResult, string label, long? total) =>
        new(parseResult.InvocationConfiguration.Error, Console.IsErrorTerminal(), Console.TimeProvider, label, total);

    /// <summary>
    /// Turns a server or streams URL into the streams root with a trailing slash: <c>http://host:4437</c> and
    /// <c>http://host:4437/v1/stream</c> both become <c>http://host:4437/v1/stream/</c>.
    /// </summary>
    public static bool TryNormalizeUrl(string? text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Uri? url) =>
        TryNormalizeUrl(text, DefaultStreamsPath, out url);

    /// <summary>
    /// Turns a server or streams URL into the streams root with a trailing slash: <paramref name="streamsPath"/> is appended
    /// unless the URL's path already ends in it; a <paramref name="streamsPath"/> of <c>/</c> leaves the URL as given.
    /// </summary>
    public static bool TryNormalizeUrl(string? text, string streamsPath, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Uri? url)
    {
        url = null;
        if (!IsValidStreamsPath(streamsPath))
        {
            return false;
        }
        var suffix = streamsPath.Trim().TrimEnd('/');
        if (string.IsNullOrWhiteSpace(text)
            || !Uri.TryCreate(text.Trim(), UriKind.Absolute, out var parsed)
            || (parsed.Scheme != Uri.UriSchemeHttp && parsed.Scheme != Uri.UriSchemeHttps)
            || !string.IsNullOrEmpty(parsed.Query)
            || !string.IsNullOrEmpty(parsed.Fragment))
        {
            return false;
        }

        var path = parsed.AbsolutePath.TrimEnd('/');
        if (!path.EndsWith(suffix, StringComparison.Ordinal))
        {
            path += suffix;
        }

        url = new UriBuilder(parsed) { Path = path + "/" }.Uri;
        return true;
    }

    private static bool IsValidStreamsPath(string? path) =>
        path is not null && path.Trim() is { Length: > 0 } trimmed && trimmed[0] == '/' && trimmed.IndexOfAny(['?', '#', ' ']) < 0;

    /// <summary>Adds a stream name argument that must not be blank.</summary>
    public static Argument<string> CreateStreamArgument(string name = "stream", string description = "The stream's name (its path below the streams URL), or its full http:// or https:// URL.")
    {
        var argument = new Argument<string>(name) { Description = description };
        argument.Validators.Add(result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
            {
                result.AddError("The stream name must not be empty.");
            }
        });
        return argument;
    }

    /// <summary>
    /// The longest a tab completion of stream names waits for the server's registry; past it (or with no server, no
    /// registry, or any failure) it offers no names and prints nothing.
    /// </summary>
    public static readonly TimeSpan CompletionTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Completes a stream-name argument with the names in the registry stream of the server at <c>--url</c> (or
    /// <c>STREAM_URL</c>) that start with the word typed, in one request without retries, within <see cref="CompletionTimeout"/>.
    /// </summary>
    public IEnumerable<System.CommandLine.Completions.CompletionItem> CompleteStreamNames(System.CommandLine.Completions.CompletionContext context)
    {
        var parseResult = context.ParseResult;
        var streamsPath = parseResult.GetValue(StreamsPath) ?? DefaultStreamsPath;
        if (!TryNormalizeUrl(parseResult.GetValue(Url), streamsPath, out var url))
        {
            return [];
        }

        var word = context.WordToComplete ?? string.Empty;
        if (word.StartsWith('-'))
        {
            // An option is being typed: no stream name can match, so the server is not asked.
            return [];
        }

        var options = new DurableStreamClientOptions
        {
            BaseUrl = url,
            Authorization = parseResult.GetValue(Auth),
            RequestTimeout = CompletionTimeout,
            Retry = RetryPolicy.None,
        };
        try
        {
            // Completion runs synchronously inside System.CommandLine; the thread pool keeps the wait free of any context.
            var names = Task.Run(async () =>
            {
                using var cancellation = new CancellationTokenSource(CompletionTimeout);
                using var client = new DurableStreamClient(options);
                return await StreamRegistry.ListAsync(client, cancellation.Token);
            }).GetAwaiter().GetResult();
            return names is null
                ? []
                : names.Where(s => s.Name.StartsWith(word, StringComparison.Ordinal))
                    .Select(s => new System.CommandLine.Completions.CompletionItem(s.Name, kind: "Value"))
                    .ToArray();
        }
        catch (Exception ex) when (ex is DurableStreamException or OperationCanceledException or HttpRequestException or IOException or System.Text.Json.JsonException)
        {
            return [];
        }
    }

    /// <summary>
    /// Creates the client for an invocation from <c>--url</c> and <c>--auth</c>; or, when <paramref name="stream"/> is an
    /// absolute URL, with that URL's server and <c>--streams-path</c> as the base URL (what a route beside the streams,
    /// such as <c>__ds/compact</c>, is resolved against).
    /// </summary>
    public DurableStreamClient CreateClient(ParseResult parseResult, string? stream = null)
    {
        TryNormalizeUrl(parseResult.GetRequiredValue(Url), parseResult.GetRequiredValue(StreamsPath), out var url);
        if (stream is not null && Uri.TryCreate(stream, UriKind.Absolute, out var streamUrl) && streamUrl.Scheme is "http" or "https"
            && TryNormalizeUrl(streamUrl.GetLeftPart(UriPartial.Authority), parseResult.GetRequiredValue(StreamsPath), out var root))
        {
            url = root;
        }
        var options = new DurableStreamClientOptions
        {
            BaseUrl = url!,
            Authorization = parseResult.GetValue(Auth),
        };
        if (parseResult.GetValue(Timeout) is { } timeout)
        {
            options = options with { RequestTimeout = timeout };
        }

        if (parseResult.GetValue(Verbose))
        {
            options = options with { LoggerFactory = VerboseLoggerFactory.Create(parseResult.InvocationConfiguration.Error) };
        }

        return new DurableStreamClient(options);
    }

    /// <summary>
    /// Runs a client command and maps its failure to one line on the error writer and an exit code; no stack traces.
    /// </summary>
    /// <param name="parseResult">The invocation.</param>
    /// <param name="stream">The stream argument, for messages.</param>
    /// <param name="action">The command's work.</param>
    /// <param name="cancellationToken">Cancels it.</param>
    /// <param name="baseFromStreamUrl">Take the base URL from an absolute <paramref name="stream"/> URL (see <see cref="CreateClient"/>).</param>
    public async Task<int> RunAsync(
        ParseResult parseResult,
        string stream,
        Func<DurableStreamClient, Task<int>> action,
        CancellationToken cancellationToken,
        bool baseFromStreamUrl = false)
    {
        var error = parseResult.InvocationConfiguration.Error;
        using var client = CreateClient(parseResult, baseFromStreamUrl ? stream : null);
        try
        {
            return await action(client);
        }
        catch (DurableStreamException ex)
        {
            return await ReportAsync(parseResult, stream, client, ex);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync("Cancelled.");
            return ExitCodes.Error;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync(ex.Message);
            return ExitCodes.Error;
        }
        catch (System.Text.Json.JsonException ex)
        {
            await error.WriteLineAsync($"The stream's data is not JSON: {JsonErrorText.Describe(ex, singleLine: false)}");
            return ExitCodes.Error;
        }
        catch (ArgumentException ex) when (ex.ParamName == "name")
        {
            // The client refused the stream argument itself (e.g. a URL that is not under the server's streams path).
            await error.WriteLineAsync(ex.Message.Replace(" (Parameter 'name')", string.Empty, StringComparison.Ordinal));
            return ExitCodes.Usage;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A bug or an unforeseen failure: still one line, no stack trace.
            await error.WriteLineAsync($"Unexpected error ({ex.GetType().Name}): {ex.Message.ReplaceLineEndings(" ").Trim()}");
            return ExitCodes.Error;
        }
    }

    /// <summary>Writes the one error line for a client failure and returns its exit code.</summary>
    public static async Task<int> ReportAsync(ParseResult parseResult, string stream, DurableStreamClient client, DurableStreamException ex)
    {
        var server = stream.Contains("://", StringComparison.Ordinal) && Uri.TryCreate(stream, UriKind.Absolute, out var streamUrl) ? streamUrl : client.Options.BaseUrl;
        var (exitCode, message) = Describe(ex, stream, server, client.Options.RequestTimeout);
        await parseResult.InvocationConfiguration.Error.WriteLineAsync(message);
        return exitCode;
    }

    /// <summary>The content type given by <c>--json</c> or <c>--content-type</c>, or null when neither was given.</summary>
    public static string? ContentTypeOf(ParseResult parseResult, Option<bool> json, Option<string?> contentType) =>
        parseResult.GetValue(json) ? ContentTypes.Json : parseResult.GetValue(contentType);

    /// <summary>A <c>--content-type</c> option and a <c>--json</c> option that excludes it.</summary>
    public static (Option<string?> ContentType, Option<bool> Json) CreateContentTypeOptions(string contentTypeDescription)
    {
        var contentType = new Option<string?>("--content-type") { Description = contentTypeDescription, HelpName = "type" };
        var json = new Option<bool>("--json") { Description = $"Shorthand for --content-type {ContentTypes.Json}." };
        contentType.Validators.Add(result =>
        {
            if (ContentTypes.MediaType(result.GetValueOrDefault<string?>()) is null)
            {
                result.AddError($"Invalid value '{result.GetValueOrDefault<string?>()}' for --content-type: expected a media type such as text/plain.");
            }
        });
        return (contentType, json);
    }

    /// <summary>Adds a validator to <paramref name="command"/> that rejects two options given together.</summary>
    public static void AddExclusive(Command command, Option first, Option second)
    {
        command.Validators.Add(result =>
        {
            if (result.GetResult(first) is { Implicit: false } && result.GetResult(second) is { Implicit: false })
            {
                result.AddError($"{first.Name} cannot be used with {second.Name}.");
            }
        });
    }

    private static (int ExitCode, string Message) Describe(DurableStreamException ex, string stream, Uri baseUrl, TimeSpan timeout)
    {
        var detail = ex.Message.ReplaceLineEndings(" ").Trim();
        return ex.ErrorCode switch
        {
            DurableStreamErrorCode.NotFound => (ExitCodes.NotFound, NotFoundMessage(stream, baseUrl) + StreamsPathHint(baseUrl)),
            DurableStreamErrorCode.Gone => (ExitCodes.NotFound, $"Stream '{stream}' is gone: {detail}"),
            DurableStreamErrorCode.BeforeRetainedStart => (ExitCodes.NotFound, BeforeRetainedStartMessage(ex.ResumeOffset, ex.RetainedStart)),
            DurableStreamErrorCode.StreamClosed => (ExitCodes.Conflict, $"Stream '{stream}' is closed: {detail}"),
            DurableStreamErrorCode.Conflict or DurableStreamErrorCode.SequenceGap => (ExitCodes.Conflict, $"Conflict on stream '{stream}': {detail}"),
            DurableStreamErrorCode.Unavailable when ex.StatusCode is null && ex.InnerException is OperationCanceledException or TimeoutException =>
                (ExitCodes.Unreachable, $"No answer from the server at {baseUrl} within {DurationParser.Format(timeout)} (--timeout)."),
            DurableStreamErrorCode.Unavailable when ex.StatusCode is null && TlsProblem(ex, baseUrl) is { } tls => (ExitCodes.Unreachable, $"Could not reach the server at {baseUrl}: {tls}"),
            DurableStreamErrorCode.Unavailable when ex.StatusCode is null => (ExitCodes.Unreachable, $"Could not reach the server at {baseUrl}: {detail}"),
            DurableStreamErrorCode.PayloadTooLarge => (ExitCodes.Error, $"The server refused the request as too large (413): {detail}{TooLargeHint(detail)}"),
            _ when ex.StatusCode is { } status => (ExitCodes.Error, $"The server answered {(int)status}: {detail}"),
            _ => (ExitCodes.Error, detail),
        };
    }

    /// <summary>The wording of a read's 410 below the retained start, with the way to restart.</summary>
    public static string BeforeRetainedStartMessage(string? offset, string? retainedStart) =>
        $"Offset {offset ?? "(unknown)"} is before the stream's retained start {retainedStart} (retention or compaction dropped it); "
        + $"read from the start with --offset -1 (or {retainedStart}).";

    /// <summary>The one wording of a 404 for every command: <c>No stream 'name' at http://host/v1/stream/.</c></summary>
    public static string NotFoundMessage(string stream, Uri baseUrl) => stream.Contains("://", StringComparison.Ordinal)
        ? $"No stream at {stream}."
        : $"No stream '{stream}' at {baseUrl}.";

    /// <summary>
    /// For a 404 under a URL whose path does not hold <c>/v1/stream</c>: a hint that <c>serve</c>'s streams live there.
    /// </summary>
    private static string StreamsPathHint(Uri baseUrl)
    {
        if (baseUrl.AbsolutePath.Contains(DefaultStreamsPath, StringComparison.Ordinal))
        {
            return string.Empty;
        }

        var suggestion = new UriBuilder(baseUrl) { Path = DefaultStreamsPath, Query = string.Empty, Fragment = string.Empty }.Uri.ToString();
        return $" The URL {baseUrl} is not under {DefaultStreamsPath}, where the streams of `durable-streams serve` are: did you mean --url {suggestion}?";
    }

    /// <summary>Names the <c>serve</c> option that raises the limit a 413 hit, unless the server's message already does.</summary>
    private static string TooLargeHint(string detail) =>
        detail.Contains("serve --max-", StringComparison.Ordinal) ? string.Empty
        : detail.Contains("messages", StringComparison.OrdinalIgnoreCase)
            ? " A `durable-streams serve` server raises this limit with --max-messages-per-append."
            : " A `durable-streams serve` server raises this limit with --max-append-bytes (default 64 MiB); or send the data in smaller appends.";

    /// <summary>
    /// A TLS handshake that failed, in words: an https:// URL to a server speaking plain HTTP, or an untrusted certificate.
    /// Null when the failure was not a TLS one.
    /// </summary>
    private static string? TlsProblem(DurableStreamException ex, Uri baseUrl)
    {
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is System.Security.Authentication.AuthenticationException authentication)
            {
                var reason = (authentication.InnerException?.Message ?? authentication.Message).ReplaceLineEndings(" ").Trim();
                return authentication.Message.Contains("certificate", StringComparison.OrdinalIgnoreCase) || reason.Contains("certificate", StringComparison.OrdinalIgnoreCase)
                    ? $"the server's TLS certificate is not trusted ({reason})."
                    : $"the TLS handshake failed: the server is not speaking HTTPS on this port (try http://{baseUrl.Authority}).";
            }
        }

        return null;
    }
}
