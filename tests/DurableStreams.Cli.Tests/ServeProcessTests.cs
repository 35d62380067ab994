using System.Diagnostics;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>Runs the built <c>durable-streams serve</c> as a child process and stops it with a real signal.</summary>
public sealed class ServeProcessTests
{
    [Theory]
    [InlineData("TERM", "file")]
    [InlineData("INT", "file")]
    [InlineData("TERM", "memory")]
    [InlineData("INT", "memory")]
    public async Task Serve_exits_0_when_signalled_right_after_printing_its_url(string signal, string store)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Sends POSIX signals with kill(1).");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));

        var startInfo = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var directory = new TempDirectory();
        string[] storeArguments = store == "memory" ? ["--memory"] : ["--data-dir", directory.Combine("data")];
        string[] arguments = [Path.Combine(AppContext.BaseDirectory, "durable-streams.dll"), "serve", "--port", "0", .. storeArguments];
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var server = Process.Start(startInfo)!;
        try
        {
            var errorText = server.StandardError.ReadToEndAsync(timeout.Token);
            var firstLine = await server.StandardOutput.ReadLineAsync(timeout.Token);
            Assert.StartsWith("Durable Streams server listening on http://127.0.0.1:", firstLine, StringComparison.Ordinal);

            // No delay: the signal must be handled as soon as the URL is out, which is when supervisors send it.
            using (var kill = Process.Start("kill", ["-" + signal, server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(timeout.Token);
                Assert.Equal(0, kill.ExitCode);
            }

            await server.WaitForExitAsync(timeout.Token);
            var error = await errorText;
            Assert.True(server.ExitCode == 0, $"exit code {server.ExitCode}; stderr: {error}");
            Assert.StartsWith($"Store: {store}", error, StringComparison.Ordinal);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill();
            }
        }
    }

    [Fact]
    public async Task Serve_on_a_taken_port_prints_one_line_and_no_host_log()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var startInfo = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "durable-streams.dll"), "serve", "--memory", "--host", "127.0.0.1", "--port", port })
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var server = Process.Start(startInfo)!;
        try
        {
            var output = server.StandardOutput.ReadToEndAsync(timeout.Token);
            var error = await server.StandardError.ReadToEndAsync(timeout.Token);
            await server.WaitForExitAsync(timeout.Token);

            Assert.Equal(1, server.ExitCode);
            Assert.Equal("", await output);
            var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.True(lines.Length == 2, $"stderr: {error}");
            Assert.StartsWith("Store: memory", lines[0], StringComparison.Ordinal);
            Assert.StartsWith($"Could not start the server on 127.0.0.1:{port}: ", lines[1], StringComparison.Ordinal);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill();
            }
        }
    }
}
