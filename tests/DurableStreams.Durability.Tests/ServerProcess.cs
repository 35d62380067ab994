using System.Diagnostics;
using System.Text;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// The built <c>durable-streams serve</c> as a child process on 127.0.0.1 with a free port and the file store in a
/// given directory. Only this process (by its own <see cref="Process"/> handle) is ever killed.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private const string ListeningPrefix = "Durable Streams server listening on ";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly StringBuilder _stderr;
    private readonly Task _stdoutDrain;

    private ServerProcess(Process process, Uri baseUrl, Task stdoutDrain, StringBuilder stderr)
    {
        _process = process;
        BaseUrl = baseUrl;
        _stdoutDrain = stdoutDrain;
        _stderr = stderr;
    }

    /// <summary>Where the server listens, e.g. http://127.0.0.1:41234.</summary>
    public Uri BaseUrl { get; }

    /// <summary>The URL of a stream under the default streams path.</summary>
    public Uri StreamUrl(string name) => new(BaseUrl, "/v1/stream/" + name);

    /// <summary>Everything the server wrote to stderr so far (recovery warnings, errors).</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>The CLI built next to this test assembly: artifacts/bin/DurableStreams.Cli/&lt;config&gt;/durable-streams.dll.</summary>
    public static string CliPath()
    {
        var baseDirectory = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        var configuration = Path.GetFileName(baseDirectory);
        var path = Path.GetFullPath(Path.Combine(baseDirectory, "..", "..", "DurableStreams.Cli", configuration, "durable-streams.dll"));
        Assert.True(File.Exists(path), $"The CLI is not built at {path} (the test project references it, so building the tests builds it).");
        return path;
    }

    /// <summary>Starts <c>serve --port 0 --data-dir dir --durability always</c> and waits for its URL line.</summary>
    public static async Task<ServerProcess> StartAsync(string dataDirectory, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { CliPath(), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDirectory, "--durability", "always" })
        {
            startInfo.ArgumentList.Add(argument);
        }
        var process = Process.Start(startInfo) ?? throw new InvalidOperationException("dotnet did not start.");
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                }
            }
        };
        process.BeginErrorReadLine();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(StartTimeout);
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null || !line.StartsWith(ListeningPrefix, StringComparison.Ordinal))
            {
                await process.WaitForExitAsync(timeout.Token);
                string text;
                lock (stderr)
                {
                    text = stderr.ToString();
                }
                Assert.Fail($"serve did not print its URL (first stdout line: {line ?? "<none>"}; exit code {process.ExitCode}); stderr:\n{text}");
            }
            var url = new Uri(line[ListeningPrefix.Length..].Trim());
            Assert.Equal("127.0.0.1", url.Host);
            // Keep reading stdout so the child never blocks on a full pipe.
            var drain = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            return new ServerProcess(process, url, drain, stderr);
        }
        catch
        {
            KillAndDispose(process);
            throw;
        }
    }

    /// <summary>SIGKILL: no shutdown code runs, as in a crash or an OOM kill.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
        }
        await _process.WaitForExitAsync(CancellationToken.None);
        await _stdoutDrain;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }

    private static void KillAndDispose(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: false);
                process.WaitForExit();
            }
        }
        finally
        {
            process.Dispose();
        }
    }
}
