using DurableStreams.Core.Compaction;
using DurableStreams.Protocol.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Server.Internal;

internal sealed partial class StreamEndpoints
{
    /// <summary>One compaction per stream at a time: a second request for the same stream waits for the first.</summary>
    private readonly KeyedGate _compactions = new();

    /// <summary>
    /// <c>POST __ds/compact/{stream}</c> (issue 18, admin scope, checked by <see cref="RouteAccess"/>): compacts the stream
    /// now with its policy's <see cref="DurableStreams.Core.Retention.RetentionPolicy.Compaction"/> (or
    /// <see cref="CompactionPolicy.State"/>), whatever its thresholds say, and answers what happened as JSON.
    /// </summary>
    private async Task CompactAsync(HttpContext context, string name)
    {
        var response = context.Response;
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            response.Headers.Allow = "POST, OPTIONS";
            await new HttpError(StatusCodes.Status405MethodNotAllowed, "Compaction is requested with POST.").WriteAsync(response);
            return;
        }
        if (name.Length == 0)
        {
            await new HttpError(StatusCodes.Status404NotFound, "No stream named: POST __ds/compact/{stream}.").WriteAsync(response);
            return;
        }
        if (StreamName.Check(name, _options.MaxStreamNameBytes, _options.MaxStreamNameSegments) is { } nameProblem)
        {
            _metrics.Rejected(RejectionReasons.BadName);
            await (nameProblem == StreamName.Problem.TooLong ? _nameTooLong : _tooManySegments).WriteAsync(response);
            return;
        }
        if (store is not IStreamCompaction)
        {
            await ResultMapping.CompactionUnsupported.WriteAsync(response);
            return;
        }
        var ct = context.RequestAborted;
        var policy = _options.Retention.Resolve(name).Compaction ?? CompactionPolicy.State;
        CompactionOutcome outcome;
        using (await _compactions.EnterAsync(name, ct))
        {
            outcome = await StateCompactor.CompactAsync(store, name, policy, force: true, ct);
        }
        LogCompaction(logger, name, outcome.Status, outcome.BytesBefore, outcome.BytesAfter);
        var info = outcome.Info;
        if (info is null && outcome.Status is not (CompactionStatus.NotFound or CompactionStatus.NotApplicable))
        {
            info = (await store.GetMetadataAsync(name, ct)).Info;
        }
        await ResultMapping.WriteCompactionAsync(response, outcome, info);
    }

    [LoggerMessage(EventId = LogEvents.CompactionRequested, Level = LogLevel.Information,
        Message = "On-demand compaction of {Stream}: {Outcome}, {BytesBefore} bytes before, {BytesAfter} after")]
    private static partial void LogCompaction(ILogger logger, string stream, CompactionStatus outcome, long bytesBefore, long bytesAfter);
}
