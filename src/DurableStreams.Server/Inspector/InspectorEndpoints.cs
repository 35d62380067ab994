using System.Security.Cryptography;
using System.Text;
using DurableStreams.Server.Inspector;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace DurableStreams.Server
{
    /// <summary>Mapping the stream inspector: the browser page at <c>/</c>.</summary>
    public static class DurableStreamsInspectorExtensions
    {
        /// <summary>
        /// Serves the stream inspector page at <c>/</c> and its assets under <c>/inspector/</c>, embedded in this assembly.
        /// The page and its assets hold no data and need no token; everything it shows it reads through the stream API
        /// under <paramref name="streamsPath"/> with the user's token, so the stream endpoints' authentication is unchanged.
        /// </summary>
        public static IEndpointRouteBuilder MapDurableStreamsInspector(this IEndpointRouteBuilder endpoints, string streamsPath = "/v1/stream")
        {
            ArgumentNullException.ThrowIfNull(endpoints);
            ArgumentNullException.ThrowIfNull(streamsPath);
            foreach (var asset in InspectorAssets.Load(streamsPath))
            {
                endpoints.MapMethods(asset.Path, [HttpMethods.Get, HttpMethods.Head], (HttpContext context) => asset.WriteAsync(context));
            }
            return endpoints;
        }
    }
}

namespace DurableStreams.Server.Inspector
{
    /// <summary>One embedded file of the inspector, ready to serve: bytes, type and a strong ETag of its content.</summary>
    internal sealed class InspectorAsset(string path, string contentType, byte[] content)
    {
        /// <summary>
        /// The page's Content-Security-Policy: everything from this origin only, no inline script or style, no framing,
        /// no plugins, no forms posting elsewhere.
        /// </summary>
        public const string ContentSecurityPolicy =
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; "
            + "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

        public string Path { get; } = path;

        public string ContentType { get; } = contentType;

        public byte[] Content { get; } = content;

        public string ETag { get; } = "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 16)) + "\"";

        public Task WriteAsync(HttpContext context)
        {
            var response = context.Response;
            var headers = response.Headers;
            headers.ETag = ETag;
            // Revalidated on every load (a 304 when unchanged), so a new server version is picked up at once.
            headers.CacheControl = "no-cache";
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            if (ContentType.StartsWith("text/html", StringComparison.Ordinal))
            {
                headers.ContentSecurityPolicy = ContentSecurityPolicy;
                headers.XFrameOptions = "DENY";
            }
            var ifNoneMatch = context.Request.Headers.IfNoneMatch.ToString();
            if (ifNoneMatch.Length > 0 && (ifNoneMatch == "*" || ifNoneMatch.Split(',').Any(t => t.Trim() == ETag)))
            {
                response.StatusCode = StatusCodes.Status304NotModified;
                return Task.CompletedTask;
            }
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = ContentType;
            response.ContentLength = Content.Length;
            return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(Content, 0, Content.Length, context.RequestAborted);
        }
    }

    /// <summary>The inspector's embedded files (<c>Inspector/wwwroot</c>), read once per mapping.</summary>
    internal static class InspectorAssets
    {
        /// <summary>The placeholder in <c>index.html</c> replaced by the streams mount.</summary>
        private const string StreamsPathPlaceholder = "{{STREAMS_PATH}}";

        private static readonly (string Resource, string Path, string ContentType)[] s_files =
        [
            ("index.html", "/", "text/html; charset=utf-8"),
            ("app.js", "/inspector/app.js", "text/javascript; charset=utf-8"),
            ("app.css", "/inspector/app.css", "text/css; charset=utf-8"),
            ("icon.svg", "/inspector/icon.svg", "image/svg+xml"),
        ];

        public static IReadOnlyList<InspectorAsset> Load(string streamsPath)
        {
            var mount = "/" + streamsPath.Trim('/');
            var assembly = typeof(InspectorAssets).Assembly;
            var assets = new List<InspectorAsset>(s_files.Length);
            foreach (var (resource, path, contentType) in s_files)
            {
                var name = "DurableStreams.Server.Inspector.wwwroot." + resource;
                using var stream = assembly.GetManifestResourceStream(name)
                    ?? throw new InvalidOperationException($"The inspector asset '{name}' is not embedded in {assembly.GetName().Name}.");
                using var buffer = new MemoryStream();
                stream.CopyTo(buffer);
                var content = buffer.ToArray();
                if (resource == "index.html")
                {
                    var html = Encoding.UTF8.GetString(content).Replace(StreamsPathPlaceholder, System.Net.WebUtility.HtmlEncode(mount), StringComparison.Ordinal);
                    content = Encoding.UTF8.GetBytes(html);
                }
                assets.Add(new InspectorAsset(path, contentType, content));
            }
            return assets;
        }
    }
}
