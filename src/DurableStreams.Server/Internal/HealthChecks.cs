using DurableStreams.Core;
using DurableStreams.Storage.Files;
using Microsoft.AspNetCore.Http;

namespace DurableStreams.Server.Internal;

/// <summary>The liveness and readiness answers of <c>/healthz</c> and <c>/readyz</c>.</summary>
internal static class HealthChecks
{
    /// <summary>A name no client can create (the reserved <c>__ds</c> prefix), looked up to prove the store answers.</summary>
    private const string ProbeName = StreamName.ReservedSegment + "/readyz";

    /// <summary>
    /// True when a metadata lookup succeeds (the store is open) and, for the file store, a probe file can be written
    /// and removed in the data directory (the disk takes writes).
    /// </summary>
    public static async Task<bool> IsStoreReadyAsync(IStreamStore store, CancellationToken cancellationToken)
    {
        try
        {
            await store.GetMetadataAsync(ProbeName, cancellationToken);
            if (store is FileStreamStore file)
            {
                if (file.IsDisposed)
                {
                    return false;
                }
                var probe = Path.Combine(file.DataDirectory, ".readyz-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
                await File.WriteAllBytesAsync(probe, [1], cancellationToken);
                File.Delete(probe);
            }
            return true;
        }
        catch (Exception ex) when (ex is ObjectDisposedException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            return false;
        }
    }

    public static Task WriteAsync(HttpResponse response, bool healthy)
    {
        response.StatusCode = healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers.CacheControl = "no-store";
        return response.WriteAsync(healthy ? "ok\n" : "unavailable\n");
    }
}
