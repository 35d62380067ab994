using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>
/// End to end: packs the tool, installs it into a temp tool path, runs <c>serve</c> and the client commands through the
/// installed <c>durable-streams</c> binary. Needs the NuGet sources of this machine (the user-level NuGet config).
/// </summary>
public sealed class ToolPackageTests
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task The_packed_tool_installs_serves_and_runs_the_client_commands()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Stops the server with kill(1).");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(5));
        var token = timeout.Token;
        using var directory = new TempDirectory();
        var version = typeof(CommandFactory).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
        var nupkg = directory.Combine("nupkg");
        var toolPath = directory.Combine("tools");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

        // Same configuration as this test build, so the projects are up to date and pack mostly just packs.
        var pack = await RunAsync(dotnet, ["pack", Path.Combine(RepositoryRoot(), "src", "DurableStreams.Cli", "DurableStreams.Cli.csproj"), "-c", Configuration, "-o", nupkg, "--nologo"], token: token);
        Assert.True(pack.ExitCode == 0, pack.Output + pack.Error);
        var package = Assert.Single(Directory.GetFiles(nupkg, "*.nupkg"));
        Assert.Equal($"DurableStreams.Tool.{version}.nupkg", Path.GetFileName(package));
        using (var archive = System.IO.Compression.ZipFile.OpenRead(package))
        {
            var entries = archive.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains("THIRD-PARTY-NOTICES.txt", entries);
            Assert.Contains("tools/net10.0/any/THIRD-PARTY-NOTICES.txt", entries);
            Assert.Contains("tools/net10.0/any/LightningDB.dll", entries);
            if (OperatingSystem.IsLinux())
            {
                Assert.Contains("tools/net10.0/any/liblmdb.so", entries); // next to LightningDB.dll: the locally compiled LMDB
            }
        }

        // A private packages folder, so an earlier install of the same version cannot be picked up from the global cache.
        var install = await RunAsync(
            dotnet,
            ["tool", "install", "--tool-path", toolPath, "--add-source", nupkg, "DurableStreams.Tool", "--version", version],
            environment: new() { ["NUGET_PACKAGES"] = directory.Combine("packages") },
            token: token);
        Assert.True(install.ExitCode == 0, install.Output + install.Error);
        var tool = Path.Combine(toolPath, "durable-streams");

        using var server = Start(tool, ["serve", "--port", "0", "--data-dir", directory.Combine("data")]);
        try
        {
            var serverErrors = server.StandardError.ReadToEndAsync(token);
            var banner = await server.StandardOutput.ReadLineAsync(token);
            const string Prefix = "Durable Streams server listening on ";
            Assert.True(banner?.StartsWith(Prefix, StringComparison.Ordinal) == true, $"serve printed '{banner}'");
            var url = banner![Prefix.Length..].Trim();
            Assert.StartsWith("http://127.0.0.1:", url, StringComparison.Ordinal);

            string[] at = ["--url", url];
            Assert.Equal(0, (await RunAsync(tool, ["create", "e2e", "--content-type", "text/plain", .. at], token: token)).ExitCode);
            Assert.Equal(0, (await RunAsync(tool, ["append", "e2e", "first|", .. at], token: token)).ExitCode);
            var piped = await RunAsync(tool, ["append", "e2e", "--lines", "--print-offset", .. at], stdin: "second\nthird\n", token: token);
            Assert.Equal(0, piped.ExitCode);
            var read = await RunAsync(tool, ["read", "e2e", "--print-offset", .. at], token: token);
            Assert.Equal((0, "first|second\nthird\n"), (read.ExitCode, read.Output));
            Assert.Equal(piped.Error.Trim(), read.Error.Trim());

            var head = await RunAsync(tool, ["head", "e2e", "--json", .. at], token: token);
            Assert.Equal(0, head.ExitCode);
            using (var metadata = JsonDocument.Parse(head.Output))
            {
                Assert.Equal("text/plain", metadata.RootElement.GetProperty("contentType").GetString());
                Assert.Equal(read.Error.Trim(), metadata.RootElement.GetProperty("nextOffset").GetString());
                Assert.False(metadata.RootElement.GetProperty("closed").GetBoolean());
            }

            Assert.Equal(0, (await RunAsync(tool, ["close", "e2e", .. at], token: token)).ExitCode);
            var late = await RunAsync(tool, ["append", "e2e", "late", .. at], token: token);
            Assert.Equal(4, late.ExitCode);
            Assert.Equal(0, (await RunAsync(tool, ["delete", "e2e", .. at], token: token)).ExitCode);
            Assert.Equal(3, (await RunAsync(tool, ["head", "e2e", .. at], token: token)).ExitCode);

            using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(token);
            }

            await server.WaitForExitAsync(token);
            Assert.True(server.ExitCode == 0, $"serve exited {server.ExitCode}: {await serverErrors}");
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill();
            }
        }
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

        throw new InvalidOperationException("DurableStreams.sln not found above " + AppContext.BaseDirectory);
    }

    private static Process Start(string fileName, string[] arguments, Dictionary<string, string>? environment = null)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        // The tool's launcher finds the runtime through DOTNET_ROOT when dotnet is not in a default location.
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { } host)
        {
            startInfo.Environment["DOTNET_ROOT"] = Path.GetDirectoryName(host);
        }

        startInfo.Environment["STREAM_URL"] = null;
        startInfo.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        startInfo.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (name, value) in environment ?? [])
        {
            startInfo.Environment[name] = value;
        }

        return Process.Start(startInfo)!;
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(
        string fileName,
        string[] arguments,
        string? stdin = null,
        Dictionary<string, string>? environment = null,
        CancellationToken token = default)
    {
        using var process = Start(fileName, arguments, environment);
        try
        {
            var output = process.StandardOutput.ReadToEndAsync(token);
            var error = process.StandardError.ReadToEndAsync(token);
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin.AsMemory(), token);
            }

            process.StandardInput.Close();
            await process.WaitForExitAsync(token).WaitAsync(CommandTimeout, token);
            return (process.ExitCode, await output, await error);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
