using System.Globalization;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;

namespace DurableStreams.Server.Internal;

/// <summary>The per-client rate limit: ASP.NET Core's rate limiter with one fixed window per remote IP address.</summary>
internal static class RateLimiting
{
    public static void Configure(RateLimiterOptions limiter, int permits, TimeSpan window)
    {
        limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, IPAddress>(context =>
            IsExempt(context.Request.Path)
                ? RateLimitPartition.GetNoLimiter(IPAddress.None)
                : RateLimitPartition.GetFixedWindowLimiter(context.Connection.RemoteIpAddress ?? IPAddress.None, _ => new FixedWindowRateLimiterOptions
                {
                    PermitLimit = permits,
                    Window = window,
                    QueueLimit = 0,
                    AutoReplenishment = true,
                }));
        limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
        limiter.OnRejected = (context, _) =>
        {
            var seconds = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter)
                ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))
                : Math.Max(1, (int)Math.Ceiling(window.TotalSeconds));
            var response = context.HttpContext.Response;
            // The CORS headers too: without them a browser cannot read the 429 or its Retry-After.
            context.HttpContext.RequestServices.GetService<StreamEndpoints>()?.WriteCommonHeaders(context.HttpContext.Request, response);
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            context.HttpContext.RequestServices.GetService<ServerMetrics>()?.Rejected(RejectionReasons.RateLimited);
            return new ValueTask(new HttpError(StatusCodes.Status429TooManyRequests, "Too many requests from this address; retry after the Retry-After delay.").WriteAsync(response));
        };
    }

    private static bool IsExempt(PathString path) =>
        path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz") || path.StartsWithSegments("/metrics");
}
