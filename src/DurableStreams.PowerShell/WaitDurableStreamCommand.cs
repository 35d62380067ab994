using System.Management.Automation;
using DurableStreams.Client;
using DurableStreams.PowerShell.Internal;

namespace DurableStreams.PowerShell;

/// <summary>
/// <c>Wait-DurableStream</c>: waits (by long-poll) until the stream has data past an offset (default: its tail when the
/// command starts) or is closed, then returns the stream's metadata; <c>-Timeout</c> bounds the wait.
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "DurableStream", DefaultParameterSetName = "Uri")]
[OutputType(typeof(DurableStreamInfo))]
public sealed class WaitDurableStreamCommand : AuthorizedStreamCommandBase
{
    /// <summary>Wait for data past this offset; default: the stream's tail when the command starts. Binds a piped stream's NextOffset.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("NextOffset")]
    [ValidateNotNullOrEmpty]
    public string? Offset { get; set; }

    /// <summary>Give up after this long (a WaitTimeout error); default: wait until data arrives, the stream is closed, or Ctrl+C.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? Timeout { get; set; }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (ResolveTarget() is not { } target || GetInfo(target) is not { } info)
        {
            return;
        }
        var offset = Offset ?? info.NextOffset;
        if (info.Closed && offset == info.NextOffset)
        {
            WriteObject(info);
            return;
        }
        using var client = target.CreateClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(StopToken);
        if (Timeout is { } limit)
        {
            timeout.CancelAfter(limit);
        }
        var options = new ReadOptions { Offset = offset, Live = LiveMode.LongPoll };
        var enumerator = client.ReadAsync(target.Name, options, timeout.Token).GetAsyncEnumerator(timeout.Token);
        try
        {
            while (Wait(enumerator.MoveNextAsync().AsTask()))
            {
                var chunk = enumerator.Current;
                if (!chunk.Data.IsEmpty || chunk.StreamClosed)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !StopToken.IsCancellationRequested)
        {
            var message = $"Stream '{info.Uri}' got no data past offset {offset} and was not closed within {MessageEncoding.FormatDuration(Timeout!.Value)}.";
            WriteError(ErrorRecords.Create("WaitTimeout", ErrorCategory.OperationTimeout, message, info.Uri, new TimeoutException(message)));
            return;
        }
        catch (DurableStreamException ex)
        {
            WriteError(ErrorRecords.FromClient(ex, info.Uri));
            return;
        }
        finally
        {
            try
            {
                enumerator.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                // The wait was cancelled; nothing is left to release.
            }
        }
        if (GetInfo(target) is { } after)
        {
            WriteObject(after);
        }
    }
}
