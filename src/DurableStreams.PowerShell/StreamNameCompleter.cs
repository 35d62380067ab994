using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using DurableStreams.Client;
using DurableStreams.PowerShell.Internal;

namespace DurableStreams.PowerShell;

/// <summary>
/// Completes <c>-Name</c> from the stream registry of the server the command line names (<c>-Server</c> or
/// <c>-BaseUri</c>), or of the one server started in this session. Offers nothing when no server is known, the server
/// keeps no registry or does not answer within two seconds: completion must never hang or throw.
/// </summary>
public sealed class StreamNameCompleter : IArgumentCompleter
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(2);

    /// <inheritdoc/>
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var root = KnownRoot(fakeBoundParameters);
        if (root is null)
        {
            return [];
        }
        var prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
        try
        {
            using var timeout = new CancellationTokenSource(s_timeout);
            var target = new StreamTarget(root, "_") { Authorization = Environment.GetEnvironmentVariable(DurableStreamCommandBase.AuthVariable) is { Length: > 0 } auth ? auth.Trim() : null };
            using var client = target.CreateClient();
            var streams = StreamRegistry.ListAsync(client, timeout.Token).GetAwaiter().GetResult();
            if (streams is null)
            {
                return [];
            }
            return streams
                .Where(s => s.Name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                .Select(s => new CompletionResult(Quote(s.Name), s.Name, CompletionResultType.ParameterValue, s.ContentType ?? s.Name))
                .ToArray();
        }
        catch (Exception ex) when (ex is DurableStreamException or OperationCanceledException or HttpRequestException or System.Text.Json.JsonException)
        {
            return [];
        }
    }

    private static Uri? KnownRoot(IDictionary bound)
    {
        var server = Unwrap(bound?["Server"]);
        if (server is DurableStreamServerInfo info)
        {
            return info.BaseUri;
        }
        var baseUri = Unwrap(bound?["BaseUri"]);
        if (baseUri is not null)
        {
            var text = baseUri.ToString();
            return Uri.TryCreate(text, UriKind.Absolute, out var parsed) && StreamTarget.TryNormalizeBaseUri(parsed, out var root, out _) ? root : null;
        }
        var running = ServerRegistry.Running();
        return running.Count == 1 ? running[0].BaseUri : null;
    }

    private static object? Unwrap(object? value) => value is PSObject wrapped ? wrapped.BaseObject : value;

    private static string Quote(string name) =>
        name.Any(c => char.IsWhiteSpace(c) || "'\"`$&@(){}[];,|<>#".Contains(c))
            ? "'" + name.Replace("'", "''", StringComparison.Ordinal) + "'"
            : name;
}
