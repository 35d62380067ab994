using System.Management.Automation;
using DurableStreams.Client;
using DurableStreams.PowerShell.Internal;
using DurableStreams.Protocol;

namespace DurableStreams.PowerShell;

/// <summary>
/// <c>Write-DurableStream</c>: appends each pipeline object as one message through an idempotent producer (batched,
/// exactly once), flushed in EndProcessing; <c>-Close</c> closes the stream afterwards.
/// </summary>
[Cmdlet(VerbsCommunications.Write, "DurableStream", DefaultParameterSetName = "Uri", SupportsShouldProcess = true)]
[OutputType(typeof(string))]
public sealed class WriteDurableStreamCommand : AuthorizedStreamCommandBase
{
    private StreamTarget? _target;
    private DurableStreamClient? _client;
    private IdempotentProducer? _producer;
    private bool _json;
    private string _contentType = ContentTypes.Default;
    private bool _initialized;
    private bool _failed;
    private long _messages;
    private long _bytes;
    private ProgressThrottle? _progress;

    /// <summary>The stream's URI (not from the pipeline: the pipeline carries the messages).</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Uri")]
    [ValidateNotNull]
    public override Uri? Uri { get => base.Uri; set => base.Uri = value; }

    /// <summary>The messages to append.</summary>
    [Parameter(Position = 1, ValueFromPipeline = true)]
    [AllowNull]
    [AllowEmptyString]
    public object? InputObject { get; set; }

    /// <summary>Content type of the appends; default: the stream's.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ContentTypeCompleter))]
    public string? ContentType { get; set; }

    /// <summary>The idempotent producer's id, as the tool's <c>--producer</c>; default: a new id per invocation.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Producer { get; set; }

    /// <summary>The producer's epoch (default 0), as the tool's <c>--epoch</c>; a newer epoch on the server is claimed automatically.</summary>
    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long Epoch { get; set; }

    /// <summary>Close the stream after the last message.</summary>
    [Parameter]
    public SwitchParameter Close { get; set; }

    /// <summary>Do not end strings with a line feed on non-JSON streams.</summary>
    [Parameter]
    public SwitchParameter NoNewline { get; set; }

    /// <summary>Return the stream's tail offset after the appends.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <inheritdoc/>
    protected override void BeginProcessing()
    {
        if (MyInvocation.BoundParameters.ContainsKey(nameof(Epoch)) && Producer is null)
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("EpochWithoutProducer", "-Epoch applies only with -Producer.", Epoch));
        }
    }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (InputObject is null || !EnsureStarted())
        {
            return;
        }
        var raw = InputObject is PSObject pso ? pso.BaseObject : InputObject;
        if (raw is object[] items)
        {
            foreach (var item in items)
            {
                if (item is not null && !Append(item))
                {
                    return;
                }
            }
        }
        else
        {
            Append(InputObject);
        }
    }

    /// <inheritdoc/>
    protected override void EndProcessing()
    {
        if (_failed || (_initialized && _target is null))
        {
            return;
        }
        if (!_initialized && !Close)
        {
            return; // nothing piped in and nothing to close
        }
        if (!EnsureStarted())
        {
            return;
        }
        var target = _target!;
        var uri = target.Uri;
        string? nextOffset;
        try
        {
            if (_producer is not null)
            {
                Wait(_producer.CloseAsync(closeStream: Close, StopToken));
                nextOffset = _producer.NextOffset;
            }
            else if (Close)
            {
                nextOffset = Wait(_client!.CloseAsync(target.Name, StopToken)).NextOffset;
            }
            else
            {
                nextOffset = PassThru ? GetInfo(target)?.NextOffset : null; // every input was skipped
            }
        }
        catch (DurableStreamException ex)
        {
            WriteError(ErrorRecords.FromClient(ex, uri));
            return;
        }
        finally
        {
            _progress?.Complete();
        }
        if (PassThru && nextOffset is not null)
        {
            WriteObject(nextOffset);
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (_producer is not null)
            {
                // After a failure or Ctrl+C: stop the producer without waiting for the server.
                _ = _producer.DisposeAsync().AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
            }
            _client?.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>Resolves the stream, asks once for confirmation and learns the content type; false when nothing should be sent.</summary>
    private bool EnsureStarted()
    {
        if (_initialized)
        {
            return _target is not null && !_failed;
        }
        _initialized = true;
        var target = ResolveTarget();
        if (target is null || !ShouldProcess(target.Uri.ToString(), Close ? "Append and close stream" : "Append to stream"))
        {
            return false;
        }
        string? contentType = ContentType;
        if (contentType is null)
        {
            if (GetInfo(target) is not { } info)
            {
                _failed = true;
                return false;
            }
            contentType = info.ContentType ?? ContentTypes.Default;
        }
        _target = target;
        _client = target.CreateClient();
        _contentType = contentType;
        _json = ContentTypes.IsJson(contentType);
        _progress = new ProgressThrottle(this, 1, $"Writing to {target.Uri}");
        return true;
    }

    private bool Append(object item)
    {
        byte[] message;
        try
        {
            message = MessageEncoding.Encode(item, _json, newline: !NoNewline);
        }
        catch (ArgumentException ex)
        {
            WriteError(ErrorRecords.InvalidArgument("NotText", ex.Message, item));
            return true;
        }
        if (message.Length == 0)
        {
            WriteError(ErrorRecords.InvalidArgument("EmptyMessage", "An empty message cannot be appended.", item));
            return true;
        }
        // One producer per invocation: a fresh id, so its sequence numbers start at 0 and retries are deduplicated.
        _producer ??= _client!.CreateProducer(_target!.Name, Producer ?? "pwsh-" + Guid.NewGuid().ToString("N"), Epoch, contentType: _contentType);
        try
        {
            Wait(_producer.AppendAsync(message, StopToken).AsTask());
        }
        catch (DurableStreamException ex)
        {
            _failed = true;
            WriteError(ErrorRecords.FromClient(ex, _target!.Uri));
            return false;
        }
        _messages++;
        _bytes += message.Length;
        _progress!.Report($"{_messages} messages ({MessageEncoding.FormatBytes(_bytes)}) queued");
        return true;
    }
}
