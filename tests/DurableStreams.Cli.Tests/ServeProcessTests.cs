using System.Diagnostics;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>Runs the built <c>durable-streams serve</c> as a child process and stops it with a real signal.</summary>
public sealed class ServeProcessTests
{
    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    public async Task Serve_exits_0_when_signalled_right_after_printing_its_url(string signal)
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
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "durable-streams.dll"), "serve", "--port", "0" })
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
            Assert.True(server.ExitCode == 0, $"exit code {server.ExitCode}; stderr: {await errorText}");
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
