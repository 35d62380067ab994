using System.Diagnostics;
using System.Globalization;
using DurableStreams.Client;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary><c>follow</c> and <c>read -f</c> across server restarts, retry budgets and <c>--timeout</c>.</summary>
public sealed partial class ClientCommandTests
{
    [Fact]
    public async Task Follow_survives_a_restart_of_serve_on_the_same_port_and_prints_each_byte_once()
    {
        using var directory = new TempDirectory();
        var dataDir = directory.Combine("data");
        var (first, url) = await StartServeAsync(["--port", "0", "--data-dir", dataDir]);
        Process? second = null;
        try
        {
            using var client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = new Uri(url + "/v1/stream/") });
            await client.CreateAsync("restart", new CreateStreamOptions { ContentType = "text/plain", Body = "before\n"u8.ToArray() }, Token);
            var stdout = new SignalingStream();

            var follow = RunAsync(["follow", "restart", "--url", url], stdout: stdout);
            await stdout.FirstWrite.WaitAsync(Token);
            await StopAsync(first);
            // The outage: longer than the old fixed budget (3 attempts, about 0.2 s), and the follow is still waiting.
            await Task.WhenAny(follow, Task.Delay(TimeSpan.FromSeconds(1), Token));
            Assert.False(follow.IsCompleted, follow.IsCompleted ? (await follow).Error : null);
            (second, var secondUrl) = await StartServeAsync(["--port", new Uri(url).Port.ToString(CultureInfo.InvariantCulture), "--data-dir", dataDir]);
            Assert.Equal(url, secondUrl);
            await client.AppendAsync("restart", "after\n", "text/plain", new AppendOptions { Close = true }, Token);
            var run = await follow;

            Assert.Equal(0, run.ExitCode);
            Assert.Equal("before\nafter\n", run.Stdout);
            Assert.Equal("", run.Error);
        }
        finally
        {
            foreach (var process in new[] { first, second })
            {
                if (process is { HasExited: false })
                {
                    process.Kill();
                }
                process?.Dispose();
            }
        }
    }

    [Theory]
    [InlineData("follow", "long-poll")]
    [InlineData("read", "sse")]
    public async Task A_follow_that_runs_out_of_retries_prints_the_offset_to_resume_from(string command, string live)
    {
        await _client.CreateAsync("gone", new CreateStreamOptions { ContentType = "text/plain", Body = "kept\n"u8.ToArray() }, Token);
        var tail = (await _client.GetMetadataAsync("gone", Token)).NextOffset;
        var stdout = new SignalingStream();
        string[] args = command == "follow" ? ["follow", "gone", "--live", live, "--max-retries", "2"] : ["read", "gone", "-f", "--live", live, "--max-retries", "2"];

        var follow = RunAsync(args, stdout: stdout);
        await stdout.FirstWrite.WaitAsync(Token);
        await _server.StopAsync(Token);
        var run = await follow;

        Assert.Equal(5, run.ExitCode);
        Assert.Equal("kept\n", run.Stdout);
        var lines = Lines(run.Error);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith($"Could not reach the server at {Url}", lines[0], StringComparison.Ordinal);
        Assert.Equal($"Stopped at offset {tail}; resume with --offset {tail}.", lines[1]);
    }

    [Fact]
    public async Task A_short_timeout_does_not_end_a_long_poll_the_server_is_holding()
    {
        await _client.CreateAsync("held", new CreateStreamOptions { ContentType = "text/plain" }, Token);

        var follow = RunAsync(["follow", "held", "--timeout", "200ms", "--max-retries", "0"]);
        await _store.WaitStartedAsync("held", Token); // the long-poll is parked
        // Longer than --timeout: the wait the server holds must not be cut off (and, with no retries allowed, end the follow).
        await Task.WhenAny(follow, Task.Delay(TimeSpan.FromSeconds(1), Token));
        Assert.False(follow.IsCompleted, follow.IsCompleted ? (await follow).Error : null);
        await _client.AppendAsync("held", "late", "text/plain", new AppendOptions { Close = true }, Token);
        var run = await follow;

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("late", run.Stdout);
    }

    [Theory]
    [InlineData("--max-retries", "-1")]
    [InlineData("--retry-for", "0s")]
    [InlineData("--retry-for", "soon")]
    public async Task Invalid_retry_budgets_are_usage_errors(string option, string value)
    {
        var run = await RunLineAsync("follow", "s", option, value);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(option, run.Error, StringComparison.Ordinal);
    }

    /// <summary>Starts <c>durable-streams serve</c> and returns it with the server URL it printed.</summary>
    private async Task<(Process Process, string Url)> StartServeAsync(string[] arguments)
    {
        var startInfo = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])[Path.Combine(AppContext.BaseDirectory, "durable-streams.dll"), "serve", .. arguments])
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = Process.Start(startInfo)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        var line = await process.StandardOutput.ReadLineAsync(Token);
        const string Prefix = "Durable Streams server listening on ";
        if (line is null || !line.StartsWith(Prefix, StringComparison.Ordinal))
        {
            process.Kill();
            Assert.Fail($"serve did not start: {line}");
        }

        return (process, line[Prefix.Length..].Trim().TrimEnd('/'));
    }

    private async Task StopAsync(Process process)
    {
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(Token);
        }

        await process.WaitForExitAsync(Token);
    }
}
