using System.Diagnostics;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// The built <c>durable-streams serve --postgres</c> as a child process on 127.0.0.1 with a free port. Only this
/// process, by its own handle, is ever killed.
/// </summary>
internal sealed class NodeProcess : IAsyncDisposable
{
    private const string ListeningPrefix = "Durable Streams server listening on ";
    private readonly Process _process;
    private readonly Task _drain;

    private NodeProcess(Process process, Uri baseUrl, Task drain)
    {
        _process = process;
        BaseUrl = baseUrl;
        _drain = drain;
    }

    public Uri BaseUrl { get; }

    public Uri StreamsUrl => new(BaseUrl, "/v1/stream/");

    /// <summary>Starts a node; <paramref name="extraArguments"/> are added to the <c>serve</c> command line.</summary>
    public static async Task<NodeProcess> StartAsync(string connectionString, CancellationToken cancellationToken, params string[] extraArguments)
    {
        var directory = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        var cli = Path.GetFullPath(Path.Combine(directory, "..", "..", "DurableStreams.Cli", Path.GetFileName(directory), "durable-streams.dll"));
        Assert.True(File.Exists(cli), $"The CLI is not built at {cli}.");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])[cli, "serve", "--host", "127.0.0.1", "--port", "0", "--postgres", connectionString, "--allow-local-webhooks", .. extraArguments])
        {
            start.ArgumentList.Add(argument);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null || !line.StartsWith(ListeningPrefix, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"serve printed {line ?? "<nothing>"} instead of its URL.");
            }
            var drain = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            return new NodeProcess(process, new Uri(line[ListeningPrefix.Length..].Trim()), drain);
        }
        catch
        {
            process.Kill();
            process.Dispose();
            throw;
        }
    }

    /// <summary>SIGKILL, as in a crash: no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
        }
        await _process.WaitForExitAsync(CancellationToken.None);
        await _drain;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }
}
