using System.CommandLine;
using System.Diagnostics;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>open</c> command: prints the URL of a stream's view in the server's inspector page and, on a desktop (a
/// <c>DISPLAY</c> or <c>WAYLAND_DISPLAY</c> and <c>xdg-open</c> on the PATH), opens it in the browser. It sends no request.
/// </summary>
internal sealed class OpenCommand
{
    private readonly ClientOptions _client;
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    private readonly Option<string?> _offset = new("--offset")
    {
        Description = "Show the stream from this offset (default: its start).",
        HelpName = "offset",
    };

    private readonly Option<bool> _live = new("--live")
    {
        Description = "Open the view with the live tail on.",
    };

    private readonly Option<bool> _noBrowser = new("--no-browser")
    {
        Description = "Only print the URL, even on a desktop.",
    };

    public OpenCommand(ClientOptions client)
    {
        _client = client;
        Command = new Command("open", "Print the URL of a stream's view in the server's inspector page (serve without --no-ui) and open it on a desktop.")
        {
            _stream,
            _offset,
            _live,
            _noBrowser,
        };
        Command.SetAction(RunAsync);
    }

    public Command Command { get; }

    /// <summary>The inspector lives at the server's root: <c>{scheme}://{host}:{port}/?stream=…&amp;offset=…&amp;live=1</c>.</summary>
    internal static Uri ViewUrl(Uri streamsUrl, string stream, string? offset, bool live)
    {
        var query = "stream=" + Uri.EscapeDataString(stream);
        if (!string.IsNullOrEmpty(offset))
        {
            query += "&offset=" + Uri.EscapeDataString(offset);
        }
        if (live)
        {
            query += "&live=1";
        }
        return new UriBuilder(streamsUrl.Scheme, streamsUrl.Host, streamsUrl.Port, "/") { Query = query }.Uri;
    }

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        ClientOptions.TryNormalizeUrl(parseResult.GetRequiredValue(_client.Url), out var streamsUrl);
        var url = ViewUrl(streamsUrl!, parseResult.GetRequiredValue(_stream), parseResult.GetValue(_offset), parseResult.GetValue(_live));
        await parseResult.InvocationConfiguration.Output.WriteLineAsync(url.AbsoluteUri.AsMemory(), cancellationToken);
        if (!parseResult.GetValue(_noBrowser) && HasDesktop(_client.Console) && FindOnPath(_client.Console, "xdg-open") is { } xdgOpen)
        {
            try
            {
                using var process = Process.Start(new ProcessStartInfo(xdgOpen, [url.AbsoluteUri]) { UseShellExecute = false });
            }
            catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                await parseResult.InvocationConfiguration.Error.WriteLineAsync($"Could not start xdg-open: {ex.Message}".AsMemory(), cancellationToken);
            }
        }
        return ExitCodes.Success;
    }

    private static bool HasDesktop(ClientConsole console) =>
        !string.IsNullOrEmpty(console.GetEnvironmentVariable("DISPLAY")) || !string.IsNullOrEmpty(console.GetEnvironmentVariable("WAYLAND_DISPLAY"));

    private static string? FindOnPath(ClientConsole console, string program)
    {
        foreach (var directory in (console.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}
