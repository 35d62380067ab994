using DurableStreams.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.ResponseCompression;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace DurableStreams.Server.Internal;

/// <summary>
/// ASP.NET Core's response compression (brotli, then gzip, at their fastest levels), limited to catch-up reads: GET
/// requests without <c>live</c>. SSE and long-poll responses are never compressed, since a compressor would hold back
/// bytes a waiting reader needs now.
/// </summary>
internal sealed class CatchUpCompression(IServiceProvider services, IOptions<ResponseCompressionOptions> options)
    : ResponseCompressionProvider(services, options)
{
    public static void AddServices(IServiceCollection services)
    {
        services.AddResponseCompression(compression =>
        {
            // Stream bodies carry no secrets reflected from the request, so BREACH does not apply to them.
            compression.EnableForHttps = true;
            compression.Providers.Add<BrotliCompressionProvider>();
            compression.Providers.Add<GzipCompressionProvider>();
            compression.MimeTypes = ["*/*"];
            compression.ExcludedMimeTypes = ["text/event-stream"];
        });
        services.AddSingleton<IResponseCompressionProvider, CatchUpCompression>();
    }

    public override bool ShouldCompressResponse(HttpContext context) =>
        HttpMethods.IsGet(context.Request.Method)
        && !context.Request.Query.ContainsKey(ProtocolQuery.Live)
        && base.ShouldCompressResponse(context);
}
