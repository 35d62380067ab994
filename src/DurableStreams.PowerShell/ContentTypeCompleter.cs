using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace DurableStreams.PowerShell;

/// <summary>Completes <c>-ContentType</c> with the content types streams commonly use (not file names).</summary>
public sealed class ContentTypeCompleter : IArgumentCompleter
{
    private static readonly string[] s_contentTypes =
    [
        "application/json",
        "application/octet-stream",
        "application/x-ndjson",
        "text/plain",
        "text/csv",
        "text/html",
        "text/markdown",
        "application/xml",
        "application/cbor",
        "application/x-protobuf",
    ];

    /// <inheritdoc/>
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var prefix = (wordToComplete ?? string.Empty).Trim('\'', '"');
        return s_contentTypes
            .Where(type => type.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || type.Split('/')[1].StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .Select(type => new CompletionResult(type, type, CompletionResultType.ParameterValue, type));
    }
}
