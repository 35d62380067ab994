using System.Diagnostics;
using System.Security.Cryptography;
using Xunit;

[assembly: AssemblyFixture(typeof(DurableStreams.Interop.Tests.ReferenceServer))]

namespace DurableStreams.Interop.Tests;

/// <summary>
/// The Node reference server (<c>@durable-streams/server</c>, pinned in <c>reference/package-lock.json</c>) for the
/// whole test run. The run installs it itself: <c>npm ci</c> into <c>artifacts/interop/reference</c> (again only when
/// the lock file changed), then <c>node start-reference.mjs</c> binds 127.0.0.1 port 0 and prints its URL. Streams are
/// served at that URL's root. Only the started process (by its PID) is stopped at the end. Without node/npm the tests
/// skip themselves with the reason, except under <c>CI=true</c>, where they fail.
/// </summary>
public sealed class ReferenceServer : IAsyncLifetime
{
    /// <summary>The reference's long-poll timeout, short so that a test can see one time out.</summary>
    public static readonly TimeSpan LongPollTimeout = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);

    private Process? _process;

    /// <summary>Why the reference is not running (node or npm missing, install or start failed), or null.</summary>
    public string? UnavailableReason { get; private set; }

    /// <summary>Where the pinned packages are installed (also the official TypeScript client and its read script).</summary>
    public string PackageDirectory { get; private set; } = null!;

    /// <summary>The streams root, e.g. <c>http://127.0.0.1:40123/</c>.</summary>
    public Uri StreamsUrl { get; private set; } = null!;

    /// <summary>Skips the calling test when the reference is not running; under <c>CI=true</c> fails it instead.</summary>
    public void RequireRunning()
    {
        if (UnavailableReason is not { } reason)
        {
            return;
        }
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail("CI=true needs the Node reference server: " + reason);
        }
        Assert.Skip(reason);
    }

    public async ValueTask InitializeAsync()
    {
        var root = RepositoryRoot();
        var source = Path.Combine(root, "tests", "DurableStreams.Interop.Tests", "reference");
        var target = Path.Combine(root, "artifacts", "interop", "reference");
        PackageDirectory = target;
        try
        {
            await InstallAsync(source, target);
            await StartAsync(target);
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or IOException or TimeoutException)
        {
            UnavailableReason = "The Node reference server is unavailable: " + ex.Message;
            await DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is not { } process)
        {
            return;
        }
        _process = null;
        try
        {
            if (!process.HasExited)
            {
                process.StandardInput.Close(); // the script stops the server when stdin ends
                using var exited = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try
                {
                    await process.WaitForExitAsync(exited.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(); // this PID only
                    await process.WaitForExitAsync(CancellationToken.None);
                }
            }
        }
        finally
        {
            process.Dispose();
        }
    }

    /// <summary>Copies the pinned package files next to the start script and runs <c>npm ci</c> when the lock file changed.</summary>
    private static async Task InstallAsync(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var file in new[] { "package.json", "package-lock.json", "start-reference.mjs", "ts-client-read.mjs", "state-materialize.mjs" })
        {
            File.Copy(Path.Combine(source, file), Path.Combine(target, file), overwrite: true);
        }
        var lockHash = Convert.ToHexString(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(target, "package-lock.json"))));
        var stamp = Path.Combine(target, "node_modules", ".package-lock.sha256");
        var entry = Path.Combine(target, "node_modules", "@durable-streams", "server", "package.json");
        var client = Path.Combine(target, "node_modules", "@durable-streams", "client", "package.json");
        if (File.Exists(entry) && File.Exists(client) && File.Exists(stamp) && (await File.ReadAllTextAsync(stamp)).Trim() == lockHash)
        {
            return;
        }
        var (exitCode, output) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], target, InstallTimeout);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"npm ci in {target} exited with code {exitCode}: {output}");
        }
        await File.WriteAllTextAsync(stamp, lockHash);
    }

    private async Task StartAsync(string directory)
    {
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "start-reference.mjs", "--long-poll-ms", ((long)LongPollTimeout.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(argument);
        }
        _process = Process.Start(info) ?? throw new InvalidOperationException("node did not start.");
        var errors = _process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(StartTimeout);
        string? line;
        try
        {
            line = await _process.StandardOutput.ReadLineAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The reference server printed no URL within {StartTimeout.TotalSeconds} s.");
        }
        if (line is null || !Uri.TryCreate(line.Trim(), UriKind.Absolute, out var url))
        {
            throw new InvalidOperationException($"The reference server printed '{line}' instead of its URL: {await errors}");
        }
        StreamsUrl = new Uri(url.GetLeftPart(UriPartial.Authority) + "/");
        _ = _process.StandardOutput.ReadToEndAsync(); // keep the pipe drained
    }

    /// <summary>Runs a process to its end (killed with its children after <paramref name="timeout"/>); returns its exit code and stdout + stderr.</summary>
    internal static async Task<(int ExitCode, string Output)> RunAsync(string file, string[] arguments, string directory, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true); // npm and the children it started for this install
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish within {timeout.TotalMinutes} min.");
        }
        return (process.ExitCode, (await stdout + await stderr).Trim());
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "DurableStreams.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"No DurableStreams.sln above {AppContext.BaseDirectory}.");
    }
}
