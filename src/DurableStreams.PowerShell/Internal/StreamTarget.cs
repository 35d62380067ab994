using DurableStreams.Client;

namespace DurableStreams.PowerShell.Internal;

/// <summary>A stream addressed by a cmdlet: the streams root its client uses and the stream's name below it.</summary>
internal sealed record StreamTarget(Uri BaseUri, string Name)
{
    /// <summary>The path under which this project's server mounts its streams; appended to a bare <c>-BaseUri</c>.</summary>
    public const string DefaultStreamsPath = "/v1/stream";

    private static readonly HttpClient s_http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>The <c>Authorization</c> header value sent with every request (from -Token, -Credential or <c>STREAM_AUTH</c>); none by default.</summary>
    public string? Authorization { get; init; }

    /// <summary>Where the client logs its requests (for -Verbose); none by default.</summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>The stream's full URI.</summary>
    public Uri Uri => CreateClient().StreamUrl(Name);

    /// <summary>A client for the streams root, on one HttpClient shared by the session (connections are reused).</summary>
    public DurableStreamClient CreateClient() => new(s_http, new DurableStreamClientOptions { BaseUrl = BaseUri, Authorization = Authorization, LoggerFactory = LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance }, ownsHttpClient: false);

    /// <summary>
    /// Splits a stream URI into streams root and name: everything after <c>/v1/stream/</c> is the name (it may contain
    /// '/'); a URI without that path is split at its last '/'.
    /// </summary>
    public static bool TryFromUri(Uri? uri, out StreamTarget? target, out string? problem)
    {
        target = null;
        problem = null;
        if (uri is null || !uri.IsAbsoluteUri || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            problem = $"'{uri}' is not an absolute http or https URI of a stream.";
            return false;
        }
        var path = uri.AbsolutePath;
        var marker = path.IndexOf(DefaultStreamsPath + "/", StringComparison.Ordinal);
        var split = marker >= 0 ? marker + DefaultStreamsPath.Length + 1 : path.LastIndexOf('/') + 1;
        var escapedName = path[split..].Trim('/');
        if (escapedName.Length == 0)
        {
            problem = $"'{uri}' names no stream: expected a stream URI such as http://127.0.0.1:4437/v1/stream/my-stream.";
            return false;
        }
        var baseUri = new Uri(uri.GetLeftPart(UriPartial.Authority) + path[..split]);
        var name = string.Join('/', escapedName.Split('/').Select(Uri.UnescapeDataString));
        target = new StreamTarget(baseUri, name);
        return true;
    }

    /// <summary>
    /// Turns a server or streams URI into the streams root with a trailing slash, as the tool's <c>--url</c>:
    /// <c>http://host:4437</c> and <c>http://host:4437/v1/stream</c> both become <c>http://host:4437/v1/stream/</c>.
    /// </summary>
    public static bool TryNormalizeBaseUri(Uri? uri, out Uri? baseUri, out string? problem) =>
        TryNormalizeBaseUri(uri, null, out baseUri, out problem);

    /// <summary>
    /// Turns a server or streams URI into the streams root with a trailing slash: <paramref name="streamsPath"/> (default
    /// <c>/v1/stream</c>) is appended unless the path already ends in it; <c>/</c> leaves the URI as given.
    /// </summary>
    public static bool TryNormalizeBaseUri(Uri? uri, string? streamsPath, out Uri? baseUri, out string? problem)
    {
        baseUri = null;
        problem = null;
        streamsPath ??= DefaultStreamsPath;
        if (streamsPath.Trim() is not { Length: > 0 } trimmedPath || trimmedPath[0] != '/' || trimmedPath.IndexOfAny(['?', '#', ' ']) >= 0)
        {
            problem = $"'{streamsPath}' is not a streams path: expected a path starting with '/', such as /v1/stream or /.";
            return false;
        }
        var suffix = trimmedPath.TrimEnd('/');
        if (uri is null || !uri.IsAbsoluteUri || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            problem = $"'{uri}' is not an absolute http or https server URI without query.";
            return false;
        }
        var path = uri.AbsolutePath.TrimEnd('/');
        if (!path.EndsWith(suffix, StringComparison.Ordinal))
        {
            path += suffix;
        }
        baseUri = new Uri(uri.GetLeftPart(UriPartial.Authority) + path + "/");
        return true;
    }
}
