using System.CommandLine;
using System.Diagnostics;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>The command line as a whole: bare invocation, help, the completion command.</summary>
public sealed class CommandLineTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_bare_invocation_prints_the_root_usage_to_stderr_and_exits_2()
    {
        var run = await CliRun.InvokeAsync([], Token);

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Output);
        Assert.Contains("Usage:", run.Error, StringComparison.Ordinal);
        Assert.Contains("[command] [options]", run.Error, StringComparison.Ordinal);
        Assert.Contains("Commands:", run.Error, StringComparison.Ordinal);
        Assert.Contains("Examples:", run.Error, StringComparison.Ordinal);
    }

    public static TheoryData<string> Commands()
    {
        var data = new TheoryData<string> { "" };
        foreach (var command in new CommandFactory().CreateRootCommand().Subcommands)
        {
            data.Add(command.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task Every_commands_help_ends_with_examples(string command)
    {
        var run = await CliRun.InvokeAsync(command.Length == 0 ? ["--help"] : [command, "--help"], Token);

        Assert.Equal(0, run.ExitCode);
        var help = run.Output.ReplaceLineEndings("\n");
        var examples = help[(help.IndexOf("\nExamples:\n", StringComparison.Ordinal) + 1)..].Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("Examples:", examples[0]);
        Assert.InRange(examples.Length - 1, 2, 3);
        Assert.All(examples[1..], line => Assert.Contains("durable-streams ", line, StringComparison.Ordinal));
        if (command.Length > 0)
        {
            Assert.All(examples[1..], line => Assert.Contains("durable-streams " + (command == "head" ? "" : command), line, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Every_command_has_examples_that_parse()
    {
        var root = new CommandFactory().CreateRootCommand();
        foreach (var command in root.Subcommands.Prepend(root))
        {
            var examples = CommandHelp.Examples[command == root ? "" : command.Name];
            foreach (var example in examples.Where(e => e.StartsWith("durable-streams ", StringComparison.Ordinal)))
            {
                // The first command of the line (before && or |); quoted words stay whole.
                var line = example.Split(" && ")[0].Split(" | ")[0];
                var words = System.Text.RegularExpressions.Regex.Matches(line, "'[^']*'|\\S+").Select(m => m.Value.Trim('\'')).Skip(1).ToArray();
                var redirect = Array.FindIndex(words, w => w is ">" or ">>");
                var parsed = new CommandFactory().CreateRootCommand().Parse(redirect < 0 ? words : words[..redirect]);
                Assert.True(parsed.Errors.Count == 0, $"{example}: {string.Join("; ", parsed.Errors.Select(e => e.Message))}");
            }
        }
    }

    [Fact]
    public async Task Serve_help_lists_only_serve_options_and_client_help_still_lists_the_client_options()
    {
        string[] clientOptions = ["--url", "--streams-path", "--auth", "--timeout", "--verbose", "--max-retries", "--retry-for"];

        var serve = await CliRun.InvokeAsync(["serve", "--help"], Token);
        var read = await CliRun.InvokeAsync(["read", "--help"], Token);
        var serveAgain = await CliRun.InvokeAsync(["serve", "-h"], Token);

        Assert.Equal(0, serve.ExitCode);
        Assert.Contains("--data-dir", serve.Output, StringComparison.Ordinal);
        Assert.All(clientOptions, option => Assert.DoesNotContain(option, serve.Output, StringComparison.Ordinal));
        Assert.Equal(serve.Output, serveAgain.Output);
        Assert.All(clientOptions, option => Assert.Contains(option, read.Output, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("bash", "complete -o default -F _durable_streams_complete durable-streams")]
    [InlineData("zsh", "autoload -U +X bashcompinit && bashcompinit")]
    [InlineData("pwsh", "Register-ArgumentCompleter -Native -CommandName durable-streams")]
    [InlineData("powershell", "Register-ArgumentCompleter -Native -CommandName durable-streams")]
    public async Task Completion_prints_the_registration_snippet_for_each_shell(string shell, string expected)
    {
        var run = await CliRun.InvokeAsync(["completion", shell], Token);

        Assert.Equal(0, run.ExitCode);
        Assert.Contains(expected, run.Output, StringComparison.Ordinal);
        Assert.Contains("[suggest:", run.Output, StringComparison.Ordinal);
        Assert.EndsWith("\n", run.Output, StringComparison.Ordinal);
        Assert.Equal("", run.Error);
    }

    [Fact]
    public async Task Completion_of_an_unknown_shell_is_a_usage_error()
    {
        var run = await CliRun.InvokeAsync(["completion", "fish"], Token);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("fish", run.Error, StringComparison.Ordinal);
    }

    /// <summary>The printed bash snippet, loaded into a real bash, completes through the built tool.</summary>
    [Fact]
    public async Task The_bash_snippet_completes_through_the_tool()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "bash completion is tested on Unix.");
        var snippet = (await CliRun.InvokeAsync(["completion", "bash"], Token)).Output;
        var directory = Directory.CreateTempSubdirectory("ds-completion-");
        try
        {
            var tool = Path.Combine(directory.FullName, "durable-streams");
            var dll = typeof(CommandFactory).Assembly.Location;
            await File.WriteAllTextAsync(tool, $"#!/bin/sh\nexec dotnet '{dll}' \"$@\"\n", Token);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            var snippetFile = Path.Combine(directory.FullName, "snippet.bash");
            await File.WriteAllTextAsync(snippetFile, snippet, Token);
            var script = $"""
                source '{snippetFile}'
                COMP_LINE='durable-streams fo'; COMP_POINT=18; COMP_WORDS=(durable-streams fo); COMP_CWORD=1
                _durable_streams_complete
                echo "${"{"}COMPREPLY[*]{"}"}"
                COMP_LINE='durable-streams read s -o j'; COMP_POINT=27; COMP_WORDS=(durable-streams read s -o j); COMP_CWORD=4
                _durable_streams_complete
                echo "${"{"}COMPREPLY[*]{"}"}"
                complete -p durable-streams
                """;
            var start = new ProcessStartInfo("bash", ["--norc", "--noprofile", "-c", script]) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["PATH"] = directory.FullName + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
            using var bash = Process.Start(start)!;
            var output = await bash.StandardOutput.ReadToEndAsync(Token);
            var error = await bash.StandardError.ReadToEndAsync(Token);
            await bash.WaitForExitAsync(Token);

            Assert.True(bash.ExitCode == 0, error);
            Assert.Equal(["follow fork", "json jsonl", "complete -o default -F _durable_streams_complete durable-streams"], output.TrimEnd('\n').Split('\n'));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
