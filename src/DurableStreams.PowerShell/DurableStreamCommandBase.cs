using System.Diagnostics;
using System.Management.Automation;
using System.Net;
using System.Security;
using DurableStreams.Client;
using DurableStreams.PowerShell.Internal;

namespace DurableStreams.PowerShell;

/// <summary>
/// Shared plumbing: async client calls are awaited on the pipeline thread (so WriteObject is only called there), and
/// Ctrl+C (<see cref="StopProcessing"/>) cancels whatever is being awaited at once.
/// </summary>
public abstract class DurableStreamCommandBase : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private VerboseLog? _verbose;
    private bool _verboseChecked;

    /// <summary>Cancelled when the pipeline is stopped (Ctrl+C).</summary>
    protected CancellationToken StopToken => _stopping.Token;

    /// <inheritdoc/>
    protected override void StopProcessing() => _stopping.Cancel();

    /// <summary>Waits for <paramref name="task"/>; a cancellation caused by Ctrl+C stops the pipeline.</summary>
    protected T Wait<T>(Task<T> task)
    {
        if (_verbose is { } verbose)
        {
            // Show the client's request log as it happens, on this (the pipeline) thread.
            while (!task.IsCompleted)
            {
                Task.WaitAny(task, verbose.WaitForLineAsync());
                WriteVerboseLines(verbose);
            }
            WriteVerboseLines(verbose);
        }
        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
    }

    /// <inheritdoc cref="Wait{T}(Task{T})"/>
    protected void Wait(Task task) => Wait(AsBool(task));

    /// <summary>The stream a <c>-Uri</c>, or a <c>-Name</c> with <c>-Server</c>/<c>-BaseUri</c> (or the one server of this session), points at; null after writing an error.</summary>
    internal StreamTarget? ResolveTarget(Uri? uri, string? name, DurableStreamServerInfo? server, Uri? baseUri, string? streamsPath = null)
    {
        if (name is not null && (name.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || name.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            && System.Uri.TryCreate(name, UriKind.Absolute, out var nameUri))
        {
            // A full stream URI given as -Name addresses that stream on any server, as -Uri does.
            uri = nameUri;
            name = null;
        }
        if (name is null)
        {
            if (StreamTarget.TryFromUri(uri, out var target, out var problem))
            {
                return Authorize(target!);
            }
            WriteError(ErrorRecords.InvalidArgument("InvalidStreamUri", problem!, uri));
            return null;
        }
        var root = ResolveRoot(server, baseUri, $"Stream '{name}'", name, streamsPath);
        if (root is null)
        {
            return null;
        }
        var trimmed = name.Trim('/');
        if (string.IsNullOrWhiteSpace(trimmed))
        {
            WriteError(ErrorRecords.InvalidArgument("InvalidStreamName", $"'{name}' is not a stream name.", name));
            return null;
        }
        return Authorize(new StreamTarget(root!, trimmed));
    }

    /// <summary>The environment variable that supplies the endpoint when neither -Server nor -BaseUri is given (as the tool's <c>--url</c>).</summary>
    internal const string UrlVariable = "STREAM_URL";

    /// <summary>The environment variable that supplies the <c>Authorization</c> header value when neither -Token nor -Credential is given (as the tool's <c>--auth</c>).</summary>
    internal const string AuthVariable = "STREAM_AUTH";

    /// <summary>The environment variable that supplies the streams path with <c>STREAM_URL</c> (as the tool's <c>--streams-path</c>).</summary>
    internal const string StreamsPathVariable = "STREAM_PATH";

    /// <summary>The server used when nothing else names one, as the tool's default <c>--url</c>.</summary>
    internal static readonly Uri DefaultUri = new("http://localhost:4437");

    /// <summary>The bearer token given by -Token; null on cmdlets without one.</summary>
    private protected virtual SecureString? AuthToken => null;

    /// <summary>The credential given by -Credential (its password is the token); null on cmdlets without one.</summary>
    private protected virtual PSCredential? AuthCredential => null;

    /// <summary>
    /// The <c>Authorization</c> header value: <c>Bearer &lt;token&gt;</c> from -Token or -Credential's password, else
    /// <c>$env:STREAM_AUTH</c> as given (a full header value such as <c>Bearer abc</c>, as the tool's <c>--auth</c>), else none.
    /// </summary>
    internal string? ResolveAuthorization()
    {
        if (AuthToken is not null && AuthCredential is not null)
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("TokenAndCredential", "Give either -Token or -Credential, not both.", null));
        }
        var secret = AuthToken ?? AuthCredential?.Password;
        if (secret is not null)
        {
            var plain = new NetworkCredential(string.Empty, secret).Password;
            if (string.IsNullOrWhiteSpace(plain))
            {
                ThrowTerminatingError(ErrorRecords.InvalidArgument("EmptyToken", "The token given by -Token or -Credential is empty.", null));
            }
            return "Bearer " + plain.Trim();
        }
        return Environment.GetEnvironmentVariable(AuthVariable) is { Length: > 0 } auth ? auth.Trim() : null;
    }

    /// <summary>The target with this invocation's <c>Authorization</c> value, and its request log when -Verbose is on.</summary>
    internal StreamTarget Authorize(StreamTarget target) => target with { Authorization = ResolveAuthorization(), LoggerFactory = VerboseLogger()?.Factory };

    /// <summary>The request log when verbose output is on (-Verbose or $VerbosePreference), else null.</summary>
    private VerboseLog? VerboseLogger()
    {
        if (!_verboseChecked)
        {
            _verboseChecked = true;
            var on = MyInvocation.BoundParameters.TryGetValue("Verbose", out var verbose)
                ? verbose is SwitchParameter { IsPresent: true }
                : LanguagePrimitives.TryConvertTo<ActionPreference>(GetVariableValue("VerbosePreference"), out var preference)
                    && preference is not (ActionPreference.SilentlyContinue or ActionPreference.Ignore);
            _verbose = on ? new VerboseLog() : null;
        }
        return _verbose;
    }

    private void WriteVerboseLines(VerboseLog verbose)
    {
        while (verbose.TryTake(out var line))
        {
            WriteVerbose(line);
        }
    }

    /// <summary>
    /// The streams root named by <c>-Server</c> or <c>-BaseUri</c>, or else the one server started in this session, or
    /// else <c>$env:STREAM_URL</c> (with <c>$env:STREAM_PATH</c>), or else <c>http://localhost:4437</c> as the tool;
    /// null after writing an error. <paramref name="subject"/> starts the message when no server is obvious.
    /// </summary>
    internal Uri? ResolveRoot(DurableStreamServerInfo? server, Uri? baseUri, string subject, object? target, string? streamsPath = null)
    {
        if (server is not null && baseUri is not null)
        {
            WriteError(ErrorRecords.InvalidArgument("ServerAndBaseUri", "Give either -Server or -BaseUri, not both.", target));
            return null;
        }
        if (server is not null)
        {
            return server.BaseUri;
        }
        if (baseUri is not null)
        {
            if (!StreamTarget.TryNormalizeBaseUri(baseUri, streamsPath, out var root, out var problem))
            {
                WriteError(ErrorRecords.InvalidArgument("InvalidBaseUri", problem!, baseUri));
                return null;
            }
            return root;
        }
        var running = ServerRegistry.Running();
        if (running.Count == 1)
        {
            return running[0].BaseUri;
        }
        var fromEnvironment = Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } url ? url.Trim() : null;
        if (fromEnvironment is not null || running.Count == 0)
        {
            if (!System.Uri.TryCreate(fromEnvironment ?? DefaultUri.ToString(), UriKind.Absolute, out var endpoint))
            {
                WriteError(ErrorRecords.InvalidArgument("InvalidStreamUrl", $"${UrlVariable} '{fromEnvironment}' is not an absolute http or https URI.", fromEnvironment));
                return null;
            }
            var path = streamsPath ?? (Environment.GetEnvironmentVariable(StreamsPathVariable) is { Length: > 0 } p ? p.Trim() : null);
            if (!StreamTarget.TryNormalizeBaseUri(endpoint, path, out var envRoot, out var envProblem))
            {
                WriteError(ErrorRecords.InvalidArgument(fromEnvironment is null ? "InvalidBaseUri" : "InvalidStreamUrl", envProblem!, endpoint));
                return null;
            }
            return envRoot;
        }
        {
            WriteError(ErrorRecords.InvalidArgument(
                "ServerNotSpecified",
                $"{subject} needs -Server or -BaseUri (or $env:{UrlVariable}): {running.Count} servers were started in this session, so none is the obvious one.",
                target));
            return null;
        }
    }

    /// <summary>Runs a client call for one stream; a protocol failure becomes a non-terminating error and null.</summary>
    internal T? Call<T>(StreamTarget target, Func<DurableStreamClient, CancellationToken, Task<T>> call, bool creating = false)
        where T : class
    {
        using var client = target.CreateClient();
        try
        {
            return Wait(call(client, StopToken));
        }
        catch (DurableStreamException ex)
        {
            WriteError(ErrorRecords.FromClient(ex, client.StreamUrl(target.Name), creating));
            return null;
        }
        catch (ArgumentException ex)
        {
            WriteError(ErrorRecords.Create("InvalidArgument", ErrorCategory.InvalidArgument, ex.Message, client.StreamUrl(target.Name), ex));
            return null;
        }
    }

    /// <summary>HEAD as a <see cref="DurableStreamInfo"/>; null after writing an error.</summary>
    internal DurableStreamInfo? GetInfo(StreamTarget target) => Call(target, async (client, token) =>
    {
        var metadata = await client.GetMetadataAsync(target.Name, token);
        return new DurableStreamInfo(client.StreamUrl(target.Name), target.Name, metadata.ContentType, metadata.NextOffset, metadata.Closed, metadata.Ttl, metadata.ExpiresAt)
        {
            RetainedStart = metadata.RetainedStart,
        };
    });

    /// <summary>
    /// ShouldProcess, except that <paramref name="force"/> skips the confirmation (as -Confirm or a low
    /// $ConfirmPreference would ask for; under -NonInteractive a prompt is an error), while -WhatIf still only previews.
    /// </summary>
    internal bool ShouldProcessUnlessForced(bool force, string target, string action)
    {
        if (!force || (MyInvocation.BoundParameters.TryGetValue("WhatIf", out var whatIf) && whatIf is SwitchParameter { IsPresent: true }))
        {
            return ShouldProcess(target, action);
        }
        return true;
    }

    /// <summary>
    /// Whether a person is watching this session: a host with a console UI, pwsh not started with -NonInteractive and,
    /// in the console host, output not redirected. Hosted runspaces, CI runs and scripts whose output goes to a file get
    /// no progress bars.
    /// </summary>
    internal bool IsInteractiveSession()
    {
        foreach (var argument in Environment.GetCommandLineArgs().Skip(1))
        {
            // -NonInteractive and its abbreviations down to -noni (also /NonInteractive on Windows).
            var name = argument.TrimStart('-', '/');
            if (name.Length >= 4 && name.Length < argument.Length && name.StartsWith("noni", StringComparison.OrdinalIgnoreCase)
                && "noninteractive".StartsWith(name, StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }
        try
        {
            if (Host?.UI?.RawUI is null)
            {
                return false;
            }
        }
        catch (NotImplementedException)
        {
            return false;
        }
        return Host.Name != "ConsoleHost" || !Console.IsOutputRedirected;
    }

    /// <summary>Writes a progress record at most every quarter second, and only in an interactive session.</summary>
    internal sealed class ProgressThrottle(DurableStreamCommandBase cmdlet, int activityId, string activity)
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();
        private readonly bool _enabled = cmdlet.IsInteractiveSession();
        private bool _shown;

        public void Report(string status)
        {
            if (!_enabled || _since.ElapsedMilliseconds < 250)
            {
                return;
            }
            _since.Restart();
            _shown = true;
            cmdlet.WriteProgress(new ProgressRecord(activityId, activity, status));
        }

        public void Complete()
        {
            if (_shown)
            {
                cmdlet.WriteProgress(new ProgressRecord(activityId, activity, "Done") { RecordType = ProgressRecordType.Completed });
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the cancellation source (and, in derived cmdlets, anything they hold).</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stopping.Dispose();
            _verbose?.Dispose();
        }
    }

    private static async Task<bool> AsBool(Task task)
    {
        await task;
        return true;
    }
}

/// <summary>
/// A cmdlet acting on existing streams: <c>-Uri</c> binds from the pipeline by value (a URI string) and by property
/// name (a <see cref="DurableStreamInfo"/>); <c>-Name</c> with <c>-Server</c> or <c>-BaseUri</c> addresses a stream by name.
/// </summary>
public abstract class StreamCommandBase : DurableStreamCommandBase
{
    /// <summary>The stream's URI.</summary>
    [Parameter(Mandatory = true, ParameterSetName = "Uri", ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNull]
    public virtual Uri? Uri { get; set; }

    /// <summary>The stream's name below the server's streams root (or its full URI); the first positional argument.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = "Name")]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(StreamNameCompleter))]
    public string? Name { get; set; }

    /// <summary>A server from Start-DurableStreamServer that holds the stream.</summary>
    [Parameter(ParameterSetName = "Name")]
    [ValidateNotNull]
    public virtual DurableStreamServerInfo? Server { get; set; }

    /// <summary>The server or streams URI that holds the stream.</summary>
    [Parameter(ParameterSetName = "Name")]
    [ValidateNotNull]
    public virtual Uri? BaseUri { get; set; }

    /// <summary>The path appended to <see cref="BaseUri"/> unless it already ends in it (default <c>/v1/stream</c>); <c>/</c> takes -BaseUri as given.</summary>
    [Parameter(ParameterSetName = "Name")]
    [ValidateNotNullOrEmpty]
    public virtual string? StreamsPath { get; set; }

    internal StreamTarget? ResolveTarget() => ResolveTarget(Uri, ParameterSetName == "Name" ? Name : null, Server, BaseUri, StreamsPath);
}

/// <summary>A stream cmdlet that sends requests: <c>-Token</c> or <c>-Credential</c> authorise them (else <c>$env:STREAM_AUTH</c>).</summary>
public abstract class AuthorizedStreamCommandBase : StreamCommandBase
{
    /// <summary>A bearer token sent as <c>Authorization: Bearer &lt;token&gt;</c> with every request.</summary>
    [Parameter]
    [ValidateNotNull]
    public SecureString? Token { get; set; }

    /// <summary>A credential whose password is the bearer token (the user name is not sent).</summary>
    [Parameter]
    [ValidateNotNull]
    [Credential]
    public PSCredential? Credential { get; set; }

    /// <inheritdoc/>
    private protected override SecureString? AuthToken => Token;

    /// <inheritdoc/>
    private protected override PSCredential? AuthCredential => Credential;
}
