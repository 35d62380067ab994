using System.Management.Automation;
using System.Net;
using System.Security;
using DurableStreams.PowerShell.Internal;
using DurableStreams.Server;
using DurableStreams.Storage.Files;

namespace DurableStreams.PowerShell;

/// <summary>
/// <c>Start-DurableStreamServer</c>: hosts the same Kestrel server as <c>durable-streams serve</c> inside this pwsh
/// process, on the durable file store (<c>-DataPath</c>, default as the tool's) or in memory (<c>-InMemory</c>).
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "DurableStreamServer", DefaultParameterSetName = FileSet)]
[OutputType(typeof(DurableStreamServerInfo))]
public sealed class StartDurableStreamServerCommand : DurableStreamCommandBase
{
    private const string FileSet = "File";
    private const string MemorySet = "Memory";

    private static readonly DurableStreamServerOptions s_defaults = new();
    private static readonly FileStreamStoreOptions s_fileDefaults = new() { DataDirectory = "." };

    /// <summary>TCP port; 0 picks a free port. Default 4437.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int Port { get; set; } = s_defaults.Port;

    /// <summary>IP address to listen on, or localhost. Default 127.0.0.1.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string HostName { get; set; } = s_defaults.Host;

    /// <summary>Data directory of the file store (created if missing).</summary>
    [Parameter(ParameterSetName = FileSet)]
    [ValidateNotNullOrEmpty]
    public string? DataPath { get; set; }

    /// <summary>Use the in-memory store.</summary>
    [Parameter(Mandatory = true, ParameterSetName = MemorySet)]
    public SwitchParameter InMemory { get; set; }

    /// <summary>When the file store acknowledges an append.</summary>
    [Parameter(ParameterSetName = FileSet)]
    public DurabilityMode Durability { get; set; } = s_fileDefaults.Durability;

    /// <summary>Sync period with -Durability Interval.</summary>
    [Parameter(ParameterSetName = FileSet)]
    [DurationTransformation]
    public TimeSpan SyncInterval { get; set; } = s_fileDefaults.SyncInterval;

    /// <summary>How long a long-poll read waits for data before answering 204.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan LongPollTimeout { get; set; } = s_defaults.LongPollTimeout;

    /// <summary>How long an SSE response stays open before the client reconnects.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan SseReconnectInterval { get; set; } = s_defaults.SseReconnectInterval;

    /// <summary>Allowed CORS origins.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[] CorsOrigin { get; set; } = [.. s_defaults.CorsOrigins];

    /// <summary>Largest append body in bytes.</summary>
    [Parameter]
    [ValidateRange(1, long.MaxValue)]
    public long MaxAppendBytes { get; set; } = s_defaults.MaxAppendBytes;

    /// <summary>Most bytes in one catch-up read response; 0 (the default) means no cap (a response runs to the tail).</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int MaxReadChunkBytes { get; set; }

    /// <summary>Server-wide retention: drop data older than this from the front of every stream no -RetentionPolicy rule matches (as <c>serve --retention-max-age</c>).</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan RetentionMaxAge { get; set; }

    /// <summary>Server-wide retention: keep at most about this many bytes of each stream no -RetentionPolicy rule matches (as <c>serve --retention-max-bytes</c>; 10GB works).</summary>
    [Parameter]
    [ValidateRange(1, long.MaxValue)]
    public long RetentionMaxBytes { get; set; }

    /// <summary>
    /// Retention rules by stream-name pattern, first match wins (as the config file's <c>retention</c>):
    /// <c>@{ Streams = 'logs/**'; MaxAge = '7d'; MaxBytes = 10GB }</c>; MaxAge and MaxBytes are optional.
    /// </summary>
    [Parameter]
    [ValidateNotNull]
    public System.Collections.Hashtable[]? RetentionPolicy { get; set; }

    /// <summary>How often the retention job passes over the streams (as <c>serve --retention-interval</c>); default 1 minute.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan RetentionInterval { get; set; } = new DurableStreamHostOptions().RetentionInterval;

    /// <summary>Keep the stream registry (a JSON stream <c>__registry__</c> of create and delete events), which Get-DurableStream lists.</summary>
    [Parameter]
    public SwitchParameter Registry { get; set; }

    /// <summary>Turn off the stream inspector page at <c>/</c> (on by default, as with <c>serve</c>).</summary>
    [Parameter]
    public SwitchParameter NoUi { get; set; }

    /// <summary>Turn off the subscription APIs under <c>/v1/stream/__ds/</c> (on by default, as with <c>serve</c>).</summary>
    [Parameter]
    public SwitchParameter NoSubscriptions { get; set; }

    /// <summary>Accept http webhook URLs on <c>localhost</c> and <c>127.0.0.x</c> (for development); off by default, as with <c>serve</c>.</summary>
    [Parameter]
    public SwitchParameter AllowLocalWebhooks { get; set; }

    /// <summary>
    /// Bearer tokens that may read (GET, HEAD). With any token (here, in -WriteToken, or from the environment), every stream
    /// request needs one: none gets 401, a read token on a write 403. Without -ReadToken and -WriteToken the tokens come
    /// from <c>$env:DS_READ_TOKENS</c> and <c>$env:DS_WRITE_TOKENS</c> (comma-separated), as with <c>serve</c>. Default: none
    /// (no authentication).
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public SecureString[]? ReadToken { get; set; }

    /// <summary>Bearer tokens that may read and write (PUT, POST, DELETE as well); see -ReadToken.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public SecureString[]? WriteToken { get; set; }

    /// <summary>
    /// Bearer tokens with the admin scope: read, write and the admin routes (Compress-DurableStream). With tokens but no
    /// admin token, compaction requests answer 403. Without -ReadToken, -WriteToken and -AdminToken the admin tokens come
    /// from <c>$env:DS_ADMIN_TOKENS</c>, as with <c>serve</c>. Default: none.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public SecureString[]? AdminToken { get; set; }

    /// <inheritdoc cref="ReadTokensVariable"/>
    internal const string AdminTokensVariable = "DS_ADMIN_TOKENS";

    /// <summary>serve's environment variables for the tokens (never taken from a command line).</summary>
    internal const string ReadTokensVariable = "DS_READ_TOKENS";

    /// <inheritdoc cref="ReadTokensVariable"/>
    internal const string WriteTokensVariable = "DS_WRITE_TOKENS";

    /// <summary>The plain tokens of -ReadToken/-WriteToken, or of the environment when neither is given.</summary>
    private (List<string> Read, List<string> Write, List<string> Admin) ResolveTokens()
    {
        if (ReadToken is null && WriteToken is null && AdminToken is null)
        {
            return (FromVariable(ReadTokensVariable), FromVariable(WriteTokensVariable), FromVariable(AdminTokensVariable));
        }
        return (Plain(ReadToken, "-ReadToken"), Plain(WriteToken, "-WriteToken"), Plain(AdminToken, "-AdminToken"));

        static List<string> FromVariable(string name) =>
            [.. (Environment.GetEnvironmentVariable(name) ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];

        List<string> Plain(SecureString[]? tokens, string parameter)
        {
            var plain = new List<string>();
            foreach (var token in tokens ?? [])
            {
                var text = new NetworkCredential(string.Empty, token).Password.Trim();
                if (text.Length == 0)
                {
                    ThrowTerminatingError(ErrorRecords.InvalidArgument("EmptyToken", $"A token given by {parameter} is empty.", null));
                }
                plain.Add(text);
            }
            return plain;
        }
    }

    /// <summary>Plain HTTP speaks HTTP/2 only, with prior knowledge (h2c), instead of HTTP/1.1; off by default, as with <c>serve --h2c</c>.</summary>
    [Parameter]
    public SwitchParameter H2c { get; set; }

    /// <inheritdoc/>
    protected override void EndProcessing()
    {
        if (MyInvocation.BoundParameters.ContainsKey(nameof(SyncInterval)) && Durability != DurabilityMode.Interval)
        {
            ThrowTerminatingError(ErrorRecords.InvalidArgument("SyncIntervalRequiresInterval", "-SyncInterval applies only with -Durability Interval.", SyncInterval));
        }
        if (AspNetCoreAssemblyResolver.Directory is null)
        {
            ThrowTerminatingError(ErrorRecords.Create(
                "AspNetCoreNotFound",
                ErrorCategory.NotInstalled,
                $"The ASP.NET Core shared framework {Environment.Version.ToString(2)} (Microsoft.AspNetCore.App) was not found next to the .NET runtime; install it to host a server in PowerShell.",
                null));
        }

        var retention = GetRetention();
        var memory = InMemory.IsPresent;
        string? dataPath = null;
        if (!memory)
        {
            dataPath = DataPath is null ? DurableStreamHostOptions.DefaultDataDirectory : GetUnresolvedProviderPathFromPSPath(DataPath);
            if (dataPath is null)
            {
                ThrowTerminatingError(ErrorRecords.InvalidArgument("DataPathRequired", "This system reports no local application data folder for the default data directory; pass -DataPath or -InMemory.", null));
            }
        }

        var (readTokens, writeTokens, adminTokens) = ResolveTokens();
        var options = new DurableStreamHostOptions
        {
            ReadTokens = readTokens,
            WriteTokens = writeTokens,
            AdminTokens = adminTokens,
            Store = memory ? HostedStoreKind.Memory : HostedStoreKind.File,
            DataDirectory = dataPath,
            Durability = Durability,
            SyncInterval = SyncInterval,
            Host = HostName,
            Port = Port,
            LongPollTimeout = LongPollTimeout,
            SseReconnectInterval = SseReconnectInterval,
            CorsOrigins = CorsOrigin,
            MaxAppendBytes = MaxAppendBytes,
            // The buffered-body budget must hold one body of the largest size.
            MaxBufferedBodyBytes = Math.Max(s_defaults.MaxBufferedBodyBytes, MaxAppendBytes),
            MaxReadChunkBytes = MaxReadChunkBytes > 0 ? MaxReadChunkBytes : null,
            Retention = retention,
            RetentionInterval = RetentionInterval,
            Registry = Registry.IsPresent,
            Inspector = !NoUi.IsPresent,
            Subscriptions = !NoSubscriptions.IsPresent,
            AllowLocalWebhooks = AllowLocalWebhooks.IsPresent,
            CleartextHttp2 = H2c.IsPresent,
        };

        DurableStreamHost? host = null;
        try
        {
            host = Wait(DurableStreamHost.OpenAsync(options, cancellationToken: StopToken));
            Wait(host.StartAsync(StopToken));
        }
        catch (Exception ex) when (ex is not PipelineStoppedException)
        {
            if (host is not null)
            {
                Wait(host.DisposeAsync().AsTask());
            }
            WriteError(ToErrorRecord(ex, dataPath));
            return;
        }
        catch (PipelineStoppedException)
        {
            host?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }

        var info = new DurableStreamServerInfo(
            ServerRegistry.NextId(),
            host,
            memory ? DurableStreamStoreKind.Memory : DurableStreamStoreKind.File,
            dataPath,
            memory ? null : Durability,
            HostName);
        ServerRegistry.Add(info);
        WriteObject(info);
    }

    /// <summary>The -RetentionPolicy rules, then -RetentionMaxAge/-RetentionMaxBytes for every other stream; a bad rule ends the command.</summary>
    private Core.Retention.RetentionPolicies GetRetention()
    {
        var rules = new List<Core.Retention.RetentionRule>();
        var number = 0;
        foreach (var table in RetentionPolicy ?? [])
        {
            number++;
            string? streams = null;
            TimeSpan? maxAge = null;
            long? maxBytes = null;
            string? compaction = null;
            long? compactionMinBytes = null;
            double? compactionRatio = null;
            foreach (System.Collections.DictionaryEntry entry in table)
            {
                var value = entry.Value is PSObject pso ? pso.BaseObject : entry.Value;
                switch (entry.Key?.ToString()?.ToUpperInvariant())
                {
                    case "STREAMS" when value is string { Length: > 0 } pattern:
                        streams = pattern.Trim().TrimStart('/');
                        break;
                    case "MAXAGE" when value is TimeSpan span && span > TimeSpan.Zero:
                        maxAge = span;
                        break;
                    case "MAXAGE" when value is string text && DurationTransformationAttribute.TryParse(text, out var parsed) && parsed > TimeSpan.Zero:
                        maxAge = parsed;
                        break;
                    case "MAXBYTES" when value is int or long && Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) > 0:
                        maxBytes = Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case "COMPACTION" when value is string kind && string.Equals(kind, "state", StringComparison.OrdinalIgnoreCase):
                        compaction = "state";
                        break;
                    case "COMPACTIONMINBYTES" when value is int or long && Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) > 0:
                        compactionMinBytes = Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case "COMPACTIONRATIO" when value is int or long or double && Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture) is var ratio && ratio >= 1 && double.IsFinite(ratio):
                        compactionRatio = ratio;
                        break;
                    default:
                        ThrowTerminatingError(ErrorRecords.InvalidArgument(
                            "InvalidRetentionPolicy",
                            $"-RetentionPolicy rule {number}: invalid {entry.Key} '{value}'. A rule is @{{ Streams = 'logs/**'; MaxAge = '7d'; MaxBytes = 10GB }}: "
                                + $"Streams a stream-name pattern, MaxAge {DurationTransformationAttribute.ExpectedFormat}, MaxBytes a whole number of bytes above zero; "
                                + "Compaction = 'state' (the only kind) turns on State-Protocol compaction, with optional CompactionMinBytes (bytes above zero) and CompactionRatio (at least 1).",
                            table));
                        break;
                }
            }
            if (streams is null)
            {
                ThrowTerminatingError(ErrorRecords.InvalidArgument(
                    "InvalidRetentionPolicy", $"-RetentionPolicy rule {number} has no Streams pattern, for example @{{ Streams = 'logs/**'; MaxAge = '7d' }}.", table));
            }
            if (compaction is null && (compactionMinBytes is not null || compactionRatio is not null))
            {
                ThrowTerminatingError(ErrorRecords.InvalidArgument(
                    "InvalidRetentionPolicy", $"-RetentionPolicy rule {number}: CompactionMinBytes and CompactionRatio need Compaction = 'state'.", table));
            }
            if (compaction is not null && (maxAge is not null || maxBytes is not null))
            {
                // Dropping by age or size would cut into a snapshot, and a reader from -1 would then miss part of the state.
                ThrowTerminatingError(ErrorRecords.InvalidArgument(
                    "InvalidRetentionPolicy", $"-RetentionPolicy rule {number}: Compaction cannot be combined with MaxAge or MaxBytes (retention would drop part of a snapshot); give state streams compaction, other streams retention.", table));
            }
            var policy = new Core.Retention.RetentionPolicy(maxAge, maxBytes);
            if (compaction is not null)
            {
                var state = Core.Compaction.CompactionPolicy.State;
                policy = policy with { Compaction = state with { MinBytes = compactionMinBytes ?? state.MinBytes, MinRatio = compactionRatio ?? state.MinRatio } };
            }
            rules.Add(new(streams!, policy));
        }
        var fallback = new Core.Retention.RetentionPolicy(
            MyInvocation.BoundParameters.ContainsKey(nameof(RetentionMaxAge)) ? RetentionMaxAge : null,
            MyInvocation.BoundParameters.ContainsKey(nameof(RetentionMaxBytes)) ? RetentionMaxBytes : null);
        return rules.Count == 0 && !fallback.DropsData ? Core.Retention.RetentionPolicies.None : new(rules, fallback);
    }

    private ErrorRecord ToErrorRecord(Exception ex, string? dataPath) => ex switch
    {
        DurableStreamHostException { Failure: DurableStreamHostFailure.StoreInUse } => ErrorRecords.Create("DataPathInUse", ErrorCategory.ResourceBusy, ex.Message, dataPath, ex),
        DurableStreamHostException { Failure: DurableStreamHostFailure.StoreUnavailable or DurableStreamHostFailure.SubscriptionStateUnavailable }
            => ErrorRecords.Create("DataPathUnavailable", ErrorCategory.OpenError, ex.Message, dataPath, ex),
        DurableStreamHostException { Failure: DurableStreamHostFailure.InvalidOption } => ErrorRecords.Create("InvalidServerOption", ErrorCategory.InvalidArgument, ex.Message, null, ex),
        DurableStreamHostException => ErrorRecords.Create("ServerStartFailed", ErrorCategory.ResourceUnavailable, ex.Message, null, ex),
        _ => ErrorRecords.Create("ServerStartFailed", ErrorCategory.ResourceUnavailable, $"Could not start the server on {HostName}:{Port}: {ex.Message}", null, ex),
    };
}

/// <summary>
/// <c>Stop-DurableStreamServer</c>: stops servers started by <c>Start-DurableStreamServer</c> and closes their stores;
/// without -Server (and no pipeline input) it stops every server this session started.
/// </summary>
[Cmdlet(VerbsLifecycle.Stop, "DurableStreamServer", SupportsShouldProcess = true)]
public sealed class StopDurableStreamServerCommand : DurableStreamCommandBase
{
    private bool _gotInput;

    /// <summary>The servers to stop; default: every server this session started.</summary>
    [Parameter(Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public DurableStreamServerInfo[]? Server { get; set; }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (Server is null)
        {
            return;
        }
        _gotInput = true;
        Stop(Server);
    }

    /// <inheritdoc/>
    protected override void EndProcessing()
    {
        if (!_gotInput && !MyInvocation.BoundParameters.ContainsKey(nameof(Server)) && !MyInvocation.ExpectingInput)
        {
            Stop(ServerRegistry.Running());
        }
    }

    private void Stop(IEnumerable<DurableStreamServerInfo> servers)
    {
        foreach (var server in servers)
        {
            if (!server.IsRunning || !ShouldProcess(server.BaseUri.ToString(), "Stop server"))
            {
                continue;
            }
            try
            {
                Wait(ServerRegistry.StopAsync(server));
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException)
            {
                WriteError(ErrorRecords.Create("ServerStopFailed", ErrorCategory.CloseError, $"StopToken the server at {server.BaseUri} failed: {ex.Message}", server, ex));
            }
        }
    }
}

/// <summary><c>Get-DurableStreamServer</c>: the servers started in this session that are still running.</summary>
[Cmdlet(VerbsCommon.Get, "DurableStreamServer")]
[OutputType(typeof(DurableStreamServerInfo))]
public sealed class GetDurableStreamServerCommand : PSCmdlet
{
    /// <inheritdoc/>
    protected override void EndProcessing() => WriteObject(ServerRegistry.Running(), enumerateCollection: true);
}
