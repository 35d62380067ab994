using System.Diagnostics;
using System.Management.Automation;

namespace DurableStreams.PowerShell;

/// <summary>
/// <c>Show-DurableStream</c>: returns the URL of a stream's view in the server's inspector page (at the server's root)
/// and, on a desktop (<c>DISPLAY</c> or <c>WAYLAND_DISPLAY</c> set and <c>xdg-open</c> on the PATH), opens it. Sends no request.
/// </summary>
[Cmdlet(VerbsCommon.Show, "DurableStream", DefaultParameterSetName = "Uri")]
[OutputType(typeof(Uri))]
public sealed class ShowDurableStreamCommand : StreamCommandBase
{
    /// <summary>Show the stream from this offset (default: its start).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Offset { get; set; }

    /// <summary>Open the view with the live tail on.</summary>
    [Parameter]
    public SwitchParameter Live { get; set; }

    /// <summary>Only return the URL, even on a desktop.</summary>
    [Parameter]
    public SwitchParameter NoBrowser { get; set; }

    /// <inheritdoc/>
    protected override void ProcessRecord()
    {
        if (ResolveTarget() is not { } target)
        {
            return;
        }
        var query = "stream=" + Uri.EscapeDataString(target.Name);
        if (!string.IsNullOrEmpty(Offset))
        {
            query += "&offset=" + Uri.EscapeDataString(Offset);
        }
        if (Live)
        {
            query += "&live=1";
        }
        var url = new UriBuilder(target.BaseUri.Scheme, target.BaseUri.Host, target.BaseUri.Port, "/") { Query = query }.Uri;
        WriteObject(url);
        if (!NoBrowser && HasDesktop() && FindOnPath("xdg-open") is { } xdgOpen)
        {
            try
            {
                using var process = Process.Start(new ProcessStartInfo(xdgOpen, [url.AbsoluteUri]) { UseShellExecute = false });
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                WriteWarning($"Could not start xdg-open: {ex.Message}");
            }
        }
    }

    private static bool HasDesktop() =>
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DISPLAY")) || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("WAYLAND_DISPLAY"));

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, program))
            .FirstOrDefault(File.Exists);
}
