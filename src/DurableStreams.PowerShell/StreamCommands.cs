using System.Globalization;
using System.Management.Automation;
using System.Text;
using DurableStreams.Client;
using DurableStreams.PowerShell.Internal;
using DurableStreams.Protocol;

namespace DurableStreams.PowerShell;

/// <summary><c>New-DurableStream</c>: creates a stream (PUT), or confirms one with the same settings exists.</summary>
[Cmdlet(VerbsCommon.New, "DurableStream", DefaultParameterSetName = "Uri", SupportsShouldProcess = true)]
[OutputType(typeof(DurableStreamInfo))]
public sealed class NewDurableStreamCommand : AuthorizedStreamCommandBase
{
    /// <summary>The stream's content type.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ContentTypeCompleter))]
    public string? ContentType { get; set; }

    /// <summary>Sliding time-to-live in whole seconds.</summary>
    [Parameter]
    [Alias("Ttl")]
    [DurationTransformation]
    public TimeSpan? TimeToLive { get; set; }

    /// <summary>Absolute expiry.</summary>
    [Parameter]
    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>Create the stream closed.</summary>
    [Parameter]
    public SwitchParameter Closed { get; set; }

    /// <summary>Initial content.</summary>
    [Parameter]
    public object? Value { get; set; }

    /// <summary>Source stream (name or URI) to fork.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ForkFrom { get; set; }

    /// <summary>Where the fork diverges from its source.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ForkOffset { get; set; }

    /// <inheritdoc/>
    protected override void BeginProcessing()
    {
        if (TimeToLive is { } ttl && ttl.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("InvalidTimeToLive", "-TimeToLive must be a whole number of seconds.", ttl));
        }
        if (TimeToLive is not null && ExpiresAt is not null)
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("TimeToLiveAndExpiresAt", "Give either -TimeToLive or -ExpiresAt, not both.", ExpiresAt));
        }
        if (ForkOffset is not null && ForkFrom is null)
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("ForkOffsetWithoutForkFrom", "-ForkOffset applies only with -ForkFrom.", ForkOffset));
        }
    }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (ResolveTarget() is not { } target || !ShouldProcess(target.Uri.ToString(), "Create stream"))
        {
            return;
        }
        string? forkFrom = null;
        if (ForkFrom is not null)
        {
            forkFrom = ForkFrom;
            if (System.Uri.TryCreate(ForkFrom, UriKind.Absolute, out var forkUri))
            {
                if (!StreamTarget.TryFromUri(forkUri, out var source, out var problem) || source!.BaseUri != target.BaseUri)
                {
                    WriteError(ErrorRecords.InvalidArgument("InvalidForkSource", problem ?? $"The fork source '{ForkFrom}' is not on the same server as '{target.Uri}'.", ForkFrom));
                    return;
                }
                forkFrom = source.Name;
            }
        }
        byte[] body;
        try
        {
            body = Value is null ? [] : MessageEncoding.Encode(Value, ContentType is not null && ContentTypes.IsJson(ContentType), newline: false);
        }
        catch (ArgumentException ex)
        {
            WriteError(ErrorRecords.InvalidArgument("NotText", ex.Message, Value));
            return;
        }
        var options = new CreateStreamOptions
        {
            ContentType = ContentType,
            Ttl = TimeToLive,
            ExpiresAt = ExpiresAt,
            Closed = Closed.IsPresent,
            Body = body,
            ForkFrom = forkFrom,
            ForkOffset = ForkOffset,
        };
        if (Call(target, (client, token) => client.CreateAsync(target.Name, options, token), creating: true) is null)
        {
            return;
        }
        if (GetInfo(target) is { } info)
        {
            WriteObject(info);
        }
    }
}

/// <summary>
/// <c>Get-DurableStream</c>: a stream's metadata (HEAD). Without <c>-Uri</c> or <c>-Name</c>, or with a wildcard
/// <c>-Name</c>, it lists the streams in the server's stream registry (a server started with <c>-Registry</c> or
/// <c>serve --registry</c>), as Get-Process and Get-Service list everything when no name is given.
/// </summary>
[Cmdlet(VerbsCommon.Get, "DurableStream", DefaultParameterSetName = ListSet)]
[OutputType(typeof(DurableStreamInfo))]
public sealed class GetDurableStreamCommand : AuthorizedStreamCommandBase
{
    private const string ListSet = "List";

    /// <summary>A server from Start-DurableStreamServer that holds the stream (or, when listing, whose streams to list).</summary>
    [Parameter(ParameterSetName = "Name")]
    [Parameter(ParameterSetName = ListSet)]
    [ValidateNotNull]
    public override DurableStreamServerInfo? Server { get => base.Server; set => base.Server = value; }

    /// <summary>The server or streams URI that holds the stream (or, when listing, whose streams to list).</summary>
    [Parameter(ParameterSetName = "Name")]
    [Parameter(ParameterSetName = ListSet)]
    [ValidateNotNull]
    public override Uri? BaseUri { get => base.BaseUri; set => base.BaseUri = value; }

    /// <summary>The path appended to -BaseUri unless it already ends in it (default <c>/v1/stream</c>); <c>/</c> takes -BaseUri as given.</summary>
    [Parameter(ParameterSetName = "Name")]
    [Parameter(ParameterSetName = ListSet)]
    [ValidateNotNullOrEmpty]
    public override string? StreamsPath { get => base.StreamsPath; set => base.StreamsPath = value; }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (ParameterSetName == ListSet)
        {
            List(null);
            return;
        }
        if (ParameterSetName == "Name" && WildcardPattern.ContainsWildcardCharacters(Name))
        {
            List(new WildcardPattern(Name!.Trim('/'), WildcardOptions.IgnoreCase));
            return;
        }
        if (ResolveTarget() is { } target && GetInfo(target) is { } info)
        {
            WriteObject(info);
        }
    }

    private void List(WildcardPattern? pattern)
    {
        var root = ResolveRoot(Server, BaseUri, "Listing streams", null, StreamsPath);
        if (root is null)
        {
            return;
        }
        var registryTarget = Authorize(new StreamTarget(root, StreamRegistry.RegistryStreamName));
        var listing = Call(registryTarget, async (client, token) => Tuple.Create(await StreamRegistry.ListAsync(client, token)));
        if (listing is null)
        {
            return;
        }
        if (listing.Item1 is not { } streams)
        {
            WriteError(ErrorRecords.Create(
                "RegistryNotFound",
                ErrorCategory.ObjectNotFound,
                $"The server at {root} keeps no stream registry ({StreamRegistry.RegistryStreamName} is not found); start it with -Registry (or 'serve --registry') to list streams.",
                registryTarget.Uri));
            return;
        }
        using var client = registryTarget.CreateClient();
        foreach (var stream in streams)
        {
            if (pattern is not null && !pattern.IsMatch(stream.Name))
            {
                continue;
            }
            try
            {
                var metadata = Wait(client.GetMetadataAsync(stream.Name, StopToken));
                WriteObject(new DurableStreamInfo(client.StreamUrl(stream.Name), stream.Name, metadata.ContentType, metadata.NextOffset, metadata.Closed, metadata.Ttl, metadata.ExpiresAt, stream.CreatedAt)
                {
                    RetainedStart = metadata.RetainedStart,
                });
            }
            catch (DurableStreamException ex) when (ex.ErrorCode is DurableStreamErrorCode.NotFound or DurableStreamErrorCode.Gone)
            {
                // Deleted or expired since the registry recorded it: not a stream any more.
            }
            catch (DurableStreamException ex)
            {
                WriteError(ErrorRecords.FromClient(ex, client.StreamUrl(stream.Name)));
            }
        }
    }
}

/// <summary><c>Close-DurableStream</c>: closes a stream to appends.</summary>
[Cmdlet(VerbsCommon.Close, "DurableStream", DefaultParameterSetName = "Uri", SupportsShouldProcess = true)]
[OutputType(typeof(DurableStreamInfo))]
public sealed class CloseDurableStreamCommand : AuthorizedStreamCommandBase
{
    /// <summary>Return the stream's metadata after closing it.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>Close without asking for confirmation (-WhatIf still previews).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (ResolveTarget() is not { } target || !ShouldProcessUnlessForced(Force, target.Uri.ToString(), "Close stream"))
        {
            return;
        }
        if (Call(target, (client, token) => client.CloseAsync(target.Name, token)) is not null && PassThru && GetInfo(target) is { } info)
        {
            WriteObject(info);
        }
    }
}

/// <summary>
/// <c>Compress-DurableStream</c>: compacts a State-Protocol JSON stream now (the server's <c>__ds/compact</c> route,
/// admin scope): its prefix becomes a snapshot of the live keys. Returns the server's <see cref="CompactionReport"/>.
/// </summary>
[Cmdlet(VerbsData.Compress, "DurableStream", DefaultParameterSetName = "Uri", SupportsShouldProcess = true)]
[OutputType(typeof(CompactionReport))]
public sealed class CompressDurableStreamCommand : AuthorizedStreamCommandBase
{
    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (ResolveTarget() is not { } target || !ShouldProcess(target.Uri.ToString(), "Compact stream"))
        {
            return;
        }
        if (Call(target, (client, token) => client.CompactAsync(target.Name, token)) is { } report)
        {
            WriteObject(report);
        }
    }
}

/// <summary><c>Remove-DurableStream</c>: deletes a stream.</summary>
[Cmdlet(VerbsCommon.Remove, "DurableStream", DefaultParameterSetName = "Uri", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
public sealed class RemoveDurableStreamCommand : AuthorizedStreamCommandBase
{
    /// <summary>Delete without asking for confirmation, also under -NonInteractive (-WhatIf still previews).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (ResolveTarget() is not { } target || !ShouldProcessUnlessForced(Force, target.Uri.ToString(), "Delete stream"))
        {
            return;
        }
        Call(target, async (client, token) =>
        {
            await client.DeleteAsync(target.Name, token);
            return string.Empty;
        });
    }
}

/// <summary>How pipeline objects become message bytes.</summary>
internal static class MessageEncoding
{
    /// <summary>
    /// Byte arrays are sent as they are and strings as UTF-8 (on a JSON stream a string must be JSON text); other
    /// objects become JSON on a JSON stream and their string form elsewhere. On non-JSON streams
    /// <paramref name="newline"/> ends each string with a line feed, as Add-Content does.
    /// </summary>
    public static byte[] Encode(object value, bool json, bool newline)
    {
        var raw = value is PSObject pso ? pso.BaseObject : value;
        if (raw is byte[] bytes)
        {
            return bytes;
        }
        if (json)
        {
            return raw is string jsonText ? Encoding.UTF8.GetBytes(jsonText) : JsonConversion.Serialize(value);
        }
        if (raw is not string && !IsText(raw))
        {
            throw new ArgumentException(
                $"A {raw.GetType().Name} cannot be written to a stream that is not JSON: its text would be '{raw}'. "
                + "Pipe strings (for example through ConvertTo-Json or Out-String), or write to a JSON stream.");
        }
        var text = raw as string ?? LanguagePrimitives.ConvertTo<string>(value) ?? string.Empty;
        return Encoding.UTF8.GetBytes(newline ? text + "\n" : text);
    }

    /// <summary>
    /// Whether an object has a text form worth sending: primitives, enums, dates, GUIDs and URIs do, and so does any
    /// object whose ToString says more than its type name; hashtables, custom objects and collections do not.
    /// </summary>
    private static bool IsText(object raw)
    {
        if (raw is System.Collections.IDictionary or System.Collections.IEnumerable or PSCustomObject)
        {
            return false;
        }
        if (raw.GetType().IsPrimitive || raw is Enum or decimal or DateTime or DateTimeOffset or TimeSpan or Guid or Uri or char)
        {
            return true;
        }
        var text = raw.ToString();
        return text is not null && text != raw.GetType().FullName && text != raw.GetType().ToString();
    }

    /// <summary>A duration as people read it in messages and views: seconds with up to three decimals, "0.5 s", "3600 s".</summary>
    public static string FormatDuration(TimeSpan duration) =>
        string.Create(CultureInfo.InvariantCulture, $"{duration.TotalSeconds:0.###} s");

    public static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.0} MiB"),
    };
}
