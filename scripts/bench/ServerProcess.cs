using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace DurableStreams.Bench;

/// <summary>Where the benchmark finds the servers it starts.</summary>
internal sealed class BenchPaths
{
    private BenchPaths(string root, string? oursDll)
    {
        Root = root;
        BenchDir = Path.Combine(root, "scripts", "bench");
        NodeDir = Path.Combine(BenchDir, "node");
        OursDll = oursDll ?? Path.Combine(root, "artifacts", "bin", "DurableStreams.Cli", "release", "durable-streams.dll");
    }

    public string Root { get; }

    public string BenchDir { get; }

    public string NodeDir { get; }

    public string OursDll { get; }

    /// <summary>The same paths with ours run from another copy of the build output.</summary>
    public BenchPaths WithOursDll(string oursDll) => new(Root, oursDll);

    /// <summary>Finds the repository root (the directory holding DurableStreams.sln and scripts/bench).</summary>
    public static BenchPaths Locate(string? oursDll)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "DurableStreams.sln"))
                    && Directory.Exists(Path.Combine(dir.FullName, "scripts", "bench")))
                {
                    return new BenchPaths(dir.FullName, oursDll);
                }
            }
        }

        throw new InvalidOperationException("Cannot find the repository root (DurableStreams.sln with scripts/bench); run from inside the repository.");
    }
}

/// <summary>
/// A server process started by the benchmark on a free loopback port with its own temporary directory. Disposing it
/// sends SIGTERM (then kills it after 10 s) and deletes the directory.
/// </summary>
internal sealed partial class ServerProcess : IAsyncDisposable
{
    private const int MaxLogLines = 40;
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _log = new();
    private readonly TaskCompletionSource<Uri> _url = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _stdout;
    private readonly Task _stderr;
    private bool _disposed;

    private ServerProcess(ServerSpec spec, Process process, string tempDir)
    {
        Spec = spec;
        _process = process;
        TempDir = tempDir;
        _stdout = Task.Run(() => PumpAsync(process.StandardOutput, isStdout: true));
        _stderr = Task.Run(() => PumpAsync(process.StandardError, isStdout: false));
    }

    public ServerSpec Spec { get; }

    public string TempDir { get; }

    public Uri BaseUri { get; private set; } = new("http://127.0.0.1/");

    public bool HasExited => _process.HasExited;

    public int Pid => _process.Id;

    /// <summary>The last lines the server wrote (stdout and stderr), for error reports.</summary>
    public string RecentOutput => string.Join(Environment.NewLine, _log);

    /// <summary>The file store's data directory (also given for the memory stores, which do not use it).</summary>
    public string DataDir { get; private set; } = string.Empty;

    /// <summary>Stopwatch timestamp of the process start (for restart-to-ready times).</summary>
    public long StartedAt { get; private set; }

    /// <summary>
    /// Starts a server. <paramref name="dataDir"/>: reuse this data directory (a restart; it is not deleted on dispose)
    /// instead of a new one in the server's temporary directory; <paramref name="extraArguments"/> go after ours' serve
    /// options (ours only).
    /// </summary>
    public static async Task<ServerProcess> StartAsync(
        ServerSpec spec, BenchPaths paths, CancellationToken cancellationToken, string? dataDir = null, IReadOnlyList<string>? extraArguments = null)
    {
        var tempDir = Directory.CreateTempSubdirectory($"ds-bench-{spec.Name}-").FullName;
        dataDir ??= Path.Combine(tempDir, "data");
        var startInfo = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
        };
        if (spec.IsOurs)
        {
            startInfo.FileName = "dotnet";
            startInfo.WorkingDirectory = tempDir;
            startInfo.ArgumentList.Add(paths.OursDll);
            startInfo.ArgumentList.Add("serve");
            startInfo.ArgumentList.Add("--port");
            startInfo.ArgumentList.Add("0");
            if (spec.IsFile)
            {
                startInfo.ArgumentList.Add("--data-dir");
                startInfo.ArgumentList.Add(dataDir);
                startInfo.ArgumentList.Add("--durability");
                startInfo.ArgumentList.Add("always");
            }
            else
            {
                startInfo.ArgumentList.Add("--memory");
            }

            foreach (var argument in extraArguments ?? [])
            {
                startInfo.ArgumentList.Add(argument);
            }
        }
        else
        {
            startInfo.FileName = "node";
            startInfo.WorkingDirectory = paths.NodeDir;
            startInfo.ArgumentList.Add(Path.Combine(paths.NodeDir, "start-reference.mjs"));
            if (spec.IsFile)
            {
                startInfo.ArgumentList.Add(dataDir);
            }
        }

        startInfo.Environment["NO_COLOR"] = "1";
        startInfo.Environment["DOTNET_NOLOGO"] = "1";

        Process process;
        var startedAt = Stopwatch.GetTimestamp();
        try
        {
            process = Process.Start(startInfo) ?? throw new InvalidOperationException($"Could not start {startInfo.FileName}.");
        }
        catch
        {
            DeleteDirectory(tempDir);
            throw;
        }

        var server = new ServerProcess(spec, process, tempDir) { DataDir = dataDir, StartedAt = startedAt };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            server.BaseUri = await server._url.Task.WaitAsync(timeout.Token);
            return server;
        }
        catch (Exception ex)
        {
            // Give the pumps a moment to collect the error text of a process that exited.
            await Task.WhenAny(Task.WhenAll(server._stdout, server._stderr), Task.Delay(1000, CancellationToken.None));
            var output = server.RecentOutput;
            await server.DisposeAsync();
            throw new InvalidOperationException(
                $"{spec.Name} did not print its URL ({ex.Message}). Output:{Environment.NewLine}{output}", ex);
        }
    }

    /// <summary>
    /// Stops the process without deleting its directory (a restart follows): SIGTERM and wait for a clean exit, or
    /// SIGKILL (<paramref name="kill"/>) as a crash would.
    /// </summary>
    public async Task StopAsync(bool kill, CancellationToken cancellationToken)
    {
        if (_process.HasExited)
        {
            return;
        }

        _ = SendSignal(_process.Id, kill ? 9 : 15);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(120));
        await _process.WaitForExitAsync(timeout.Token);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            if (!_process.HasExited)
            {
                if (OperatingSystem.IsWindows())
                {
                    _process.Kill(entireProcessTree: false);
                }
                else
                {
                    _ = SendSignal(_process.Id, 15); // SIGTERM: let the server shut down cleanly.
                }

                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await _process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    await Console.Error.WriteLineAsync($"{Spec.Name} (pid {_process.Id}) ignored SIGTERM for 10 s; killing it.");
                    _process.Kill(entireProcessTree: false);
                    await _process.WaitForExitAsync(CancellationToken.None);
                }
            }

            await Task.WhenAny(Task.WhenAll(_stdout, _stderr), Task.Delay(2000, CancellationToken.None));
        }
        finally
        {
            _process.Dispose();
            DeleteDirectory(TempDir);
        }
    }

    private async Task PumpAsync(StreamReader reader, bool isStdout)
    {
        try
        {
            while (await reader.ReadLineAsync() is { } line)
            {
                if (isStdout && !_url.Task.IsCompleted && UrlPattern().Match(line) is { Success: true } match)
                {
                    _url.TrySetResult(new Uri(match.Groups[1].Value.TrimEnd('/') + "/"));
                }

                _log.Enqueue((isStdout ? "out: " : "err: ") + line);
                while (_log.Count > MaxLogLines)
                {
                    _log.TryDequeue(out _);
                }
            }
        }
        catch (IOException)
        {
            // The pipe broke because the process went away; nothing more to read.
        }
        catch (ObjectDisposedException)
        {
            // Same, after DisposeAsync.
        }
        finally
        {
            if (isStdout)
            {
                _url.TrySetException(new InvalidOperationException("the process closed its standard output (exited?)"));
            }
        }
    }

    private static void DeleteDirectory(string path)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }

                return;
            }
            catch (IOException) when (attempt < 4)
            {
                Thread.Sleep(200);
            }
            catch (UnauthorizedAccessException) when (attempt < 4)
            {
                Thread.Sleep(200);
            }
        }
    }

    [GeneratedRegex(@"listening on (https?://\S+)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex UrlPattern();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
