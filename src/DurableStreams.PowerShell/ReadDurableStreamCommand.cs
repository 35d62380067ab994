using System.Management.Automation;
using System.Text;
using DurableStreams.Client;
using DurableStreams.PowerShell.Internal;
using DurableStreams.Protocol;

namespace DurableStreams.PowerShell;

/// <summary>
/// <c>Read-DurableStream</c>: reads a stream from an offset up to its tail, or with <c>-Follow</c> until it is closed
/// (or Ctrl+C, or <c>-Timeout</c>). JSON streams give one PSCustomObject per message, other streams one string per
/// line; <c>-AsByteStream</c> gives the bytes of each response, <c>-Raw</c> everything as one string.
/// </summary>
[Cmdlet(VerbsCommunications.Read, "DurableStream", DefaultParameterSetName = "Uri")]
[OutputType(typeof(PSObject), typeof(string), typeof(byte[]))]
public sealed class ReadDurableStreamCommand : AuthorizedStreamCommandBase
{
    /// <summary>Where to start: -1, now or an offset.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Offset { get; set; } = ProtocolQuery.BeginningSentinel;

    /// <summary>Keep reading until the stream is closed.</summary>
    [Parameter]
    public SwitchParameter Follow { get; set; }

    /// <summary>How -Follow waits for new data.</summary>
    [Parameter]
    public DurableStreamLiveMode Live { get; set; } = DurableStreamLiveMode.LongPoll;

    /// <summary>Emit the bytes of each response.</summary>
    [Parameter]
    public SwitchParameter AsByteStream { get; set; }

    /// <summary>Emit everything read as one string.</summary>
    [Parameter]
    public SwitchParameter Raw { get; set; }

    /// <summary>Stop after this many messages.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxMessages { get; set; }

    /// <summary>With -Follow: give up after this many failed attempts in a row (default: retry until stopped).</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? MaxRetries { get; set; }

    /// <summary>With -Follow: give up after retrying this long without an answer from the server (default: no limit).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? RetryFor { get; set; }

    /// <summary>Stop after this many bytes of stream data, as the tool's <c>--max-bytes</c>; JSON streams stop before the first message that would go past it.</summary>
    [Parameter]
    [ValidateRange(1, long.MaxValue)]
    public long? MaxBytes { get; set; }

    /// <summary>Give up after this long.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? Timeout { get; set; }

    /// <inheritdoc/>
    protected override void BeginProcessing()
    {
        if (string.IsNullOrWhiteSpace(Offset))
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("InvalidOffset", "-Offset must be -1, now or an offset.", Offset));
        }
        if (AsByteStream && !Raw && MyInvocation.BoundParameters.ContainsKey(nameof(MaxMessages)))
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("AsByteStreamAndMaxMessages", "-MaxMessages does not apply with -AsByteStream, which returns one byte array (add -Raw for one per response).", MaxMessages));
        }
        if (Raw && !AsByteStream && MyInvocation.BoundParameters.ContainsKey(nameof(MaxMessages)))
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("RawAndMaxMessages", "-MaxMessages does not apply with -Raw, which returns one string.", MaxMessages));
        }
        if (MyInvocation.BoundParameters.ContainsKey(nameof(Live)) && !Follow)
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("LiveWithoutFollow", "-Live applies only with -Follow.", Live));
        }
    }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (ResolveTarget() is not { } target || GetInfo(target) is not { } info)
        {
            return;
        }
        using var client = target.CreateClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(StopToken);
        if (Timeout is { } limit)
        {
            timeout.CancelAfter(limit);
        }
        var options = new ReadOptions
        {
            Offset = Offset,
            Live = !Follow ? LiveMode.None : Live == DurableStreamLiveMode.Sse ? LiveMode.Sse : LiveMode.LongPoll,
            MaxRetries = MaxRetries,
            RetryFor = RetryFor,
        };
        var output = new Output(this, ContentTypes.IsJson(info.ContentType ?? ContentTypes.Default));
        var progress = new ProgressThrottle(this, 2, $"Reading {info.Uri}");
        var enumerator = client.ReadAsync(target.Name, options, timeout.Token).GetAsyncEnumerator(timeout.Token);
        try
        {
            while (Wait(enumerator.MoveNextAsync().AsTask()))
            {
                var chunk = enumerator.Current;
                if (!output.Add(chunk.Data))
                {
                    output.Finish(); // -MaxMessages or -MaxBytes reached
                    return;
                }
                progress.Report($"{output.Count} messages ({MessageEncoding.FormatBytes(output.Bytes)}), offset {chunk.NextOffset}");
            }
            output.Finish();
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !StopToken.IsCancellationRequested)
        {
            output.Finish();
            WriteError(ErrorRecords.Create(
                "ReadTimeout",
                ErrorCategory.OperationTimeout,
                $"Reading stream '{info.Uri}' did not finish within {MessageEncoding.FormatDuration(Timeout!.Value)}.",
                info.Uri,
                new TimeoutException($"Reading stream '{info.Uri}' did not finish within {MessageEncoding.FormatDuration(Timeout!.Value)}.")));
        }
        catch (DurableStreamException ex)
        {
            output.Finish();
            var record = ErrorRecords.FromClient(ex, info.Uri);
            if (ex.ErrorCode == DurableStreamErrorCode.BeforeRetainedStart)
            {
                // Resuming at the same offset would fail again: the message says where to restart.
                record.ErrorDetails.RecommendedAction = "Read-DurableStream -Offset -1";
            }
            else if (ex.ResumeOffset is { } resume)
            {
                // Given up (or ended by the server): say where a new read continues without repeating or skipping data.
                record.ErrorDetails = new ErrorDetails($"{record.ErrorDetails.Message} Resume with -Offset {resume}.")
                {
                    RecommendedAction = $"Read-DurableStream -Offset {resume}",
                };
            }
            WriteError(record);
        }
        finally
        {
            progress.Complete();
            try
            {
                enumerator.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                // The read was cancelled; nothing is left to release.
            }
        }
    }

    /// <summary>Turns response bodies into pipeline objects in the chosen shape.</summary>
    private sealed class Output(ReadDurableStreamCommand cmdlet, bool json)
    {
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
        private readonly StringBuilder _text = new();
        private readonly List<string> _jsonMessages = [];
        private readonly System.Buffers.ArrayBufferWriter<byte> _allBytes = new();
        private bool _finished;
        private long _taken;
        private long _jsonTaken;

        public long Count { get; private set; }

        public long Bytes { get; private set; }

        /// <summary>Emits what <paramref name="data"/> completes; false once -MaxMessages messages were emitted.</summary>
        public bool Add(ReadOnlyMemory<byte> data)
        {
            Bytes += data.Length;
            if (data.IsEmpty)
            {
                return true;
            }
            var more = true;
            if (!json && cmdlet.MaxBytes is { } maxBytes && _taken + data.Length >= maxBytes)
            {
                data = data[..(int)(maxBytes - _taken)];
                more = false;
            }
            _taken += data.Length;
            if (cmdlet.AsByteStream && !cmdlet.Raw)
            {
                System.Buffers.BuffersExtensions.Write(_allBytes, data.Span);
                return more;
            }
            if (cmdlet.AsByteStream)
            {
                return data.IsEmpty ? more : Emit(data.ToArray()) && more;
            }
            if (json)
            {
                foreach (var message in DurableStreamClient.JsonMessages(data))
                {
                    if (cmdlet.MaxBytes is { } limit)
                    {
                        var size = Encoding.UTF8.GetByteCount(message.GetRawText());
                        if (_jsonTaken + size > limit)
                        {
                            return false;
                        }
                        _jsonTaken += size;
                    }
                    if (cmdlet.Raw)
                    {
                        _jsonMessages.Add(message.GetRawText());
                    }
                    else if (!Emit(JsonConversion.ToPowerShell(message)))
                    {
                        return false;
                    }
                }
                return true;
            }
            AppendText(data.Span, flush: false);
            if (cmdlet.Raw)
            {
                return more;
            }
            return EmitLines(final: false) && more;
        }

        /// <summary>Emits what is left: a last line without a line feed, or the -Raw string.</summary>
        public void Finish()
        {
            if (_finished || (cmdlet.MaxMessages > 0 && Count >= cmdlet.MaxMessages))
            {
                return;
            }
            _finished = true;
            if (cmdlet.AsByteStream)
            {
                if (!cmdlet.Raw)
                {
                    cmdlet.WriteObject(_allBytes.WrittenSpan.ToArray(), enumerateCollection: false);
                }
                return;
            }
            if (cmdlet.Raw)
            {
                cmdlet.WriteObject(json ? "[" + string.Join(',', _jsonMessages) + "]" : FlushText());
                return;
            }
            if (!json)
            {
                FlushText(keep: true);
                EmitLines(final: true);
            }
        }

        private void AppendText(ReadOnlySpan<byte> bytes, bool flush)
        {
            var chars = new char[_decoder.GetCharCount(bytes, flush)];
            var count = _decoder.GetChars(bytes, chars, flush);
            _text.Append(chars, 0, count);
        }

        private string FlushText(bool keep = false)
        {
            AppendText([], flush: true);
            var text = _text.ToString();
            if (!keep)
            {
                _text.Clear();
            }
            return text;
        }

        private bool EmitLines(bool final)
        {
            var text = _text.ToString();
            var start = 0;
            while (true)
            {
                var end = text.IndexOf('\n', start);
                if (end < 0)
                {
                    break;
                }
                var line = text[start..end].TrimEnd('\r');
                start = end + 1;
                if (!Emit(line))
                {
                    _text.Clear();
                    return false;
                }
            }
            _text.Remove(0, start);
            if (final && _text.Length > 0)
            {
                var rest = _text.ToString();
                _text.Clear();
                return Emit(rest);
            }
            return true;
        }

        private bool Emit(object? value)
        {
            cmdlet.WriteObject(value, enumerateCollection: false);
            Count++;
            return cmdlet.MaxMessages == 0 || Count < cmdlet.MaxMessages;
        }
    }
}
