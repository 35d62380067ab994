using DurableStreams.Server;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Cli;

/// <summary>
/// Settings read from the <c>serve</c> command line: the server's (<see cref="DurableStreamHostOptions"/>, which
/// <see cref="DurableStreamHost"/> maps to the engine's options) plus the tool's own logging settings, so parsing can be
/// tested without starting a server.
/// </summary>
internal sealed record ServeOptions : DurableStreamHostOptions
{
    /// <summary>Least severe log event written to stderr (<c>--log-level</c>); default warning.</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;

    /// <summary><c>text</c> or <c>json</c> (<c>--log-format</c>); default text.</summary>
    public string LogFormat { get; init; } = "text";
}
