using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using DurableStreams.Server;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>serve settings from the command line, DS_* environment variables and a --config JSON file.</summary>
public sealed class ServeConfigurationTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void The_command_line_beats_the_environment_which_beats_the_file_which_beats_the_defaults()
    {
        var config = WriteConfig("""
            {
              // Comments are allowed.
              "port": 1111,
              "host": "127.0.0.3",
              "longPollTimeout": "5s",
              "max-append-bytes": 100,
              "registry": true,
              "cacheControl": "private",
              "corsOrigin": ["https://a.example", "https://b.example"],
              "readTokens": ["file-reader"],
              "writeTokens": ["file-writer"]
            }
            """);
        var environment = new Dictionary<string, string>
        {
            ["DS_CONFIG"] = config,
            ["DS_PORT"] = "2222",
            ["DS_LONG_POLL_TIMEOUT"] = "7s",
            ["DS_METRICS"] = "true",
            ["DS_READ_TOKENS"] = "env-reader-1, env-reader-2",
        };

        var (options, errors) = Resolve(environment, "serve", "--memory", "--port", "3333");

        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors));
        Assert.Equal(3333, options!.Port);
        Assert.Equal(TimeSpan.FromSeconds(7), options.LongPollTimeout);
        Assert.True(options.Metrics);
        Assert.Equal("127.0.0.3", options.Host);
        Assert.Equal(100, options.MaxAppendBytes);
        Assert.True(options.Registry);
        Assert.Equal(DurableStreams.Server.CachePolicy.Private, options.CachePolicy);
        Assert.Equal(["https://a.example", "https://b.example"], options.CorsOrigins);
        Assert.Equal(["env-reader-1", "env-reader-2"], options.ReadTokens);
        Assert.Equal(["file-writer"], options.WriteTokens);
        Assert.Equal(64, options.MaxStreamNameSegments);
        Assert.Equal(HostedStoreKind.Memory, options.Store);
    }

    [Fact]
    public void Admin_tokens_come_from_DS_ADMIN_TOKENS_or_the_config_file()
    {
        var config = WriteConfig("""{ "memory": true, "adminTokens": ["file-admin"] }""");

        var (fromFile, fileErrors) = Resolve([], "serve", "--config", config);
        var (fromVariable, variableErrors) = Resolve(new() { ["DS_ADMIN_TOKENS"] = "env-admin-1,env-admin-2" }, "serve", "--config", config);

        Assert.Empty(fileErrors);
        Assert.Empty(variableErrors);
        Assert.Equal(["file-admin"], fromFile!.AdminTokens);
        Assert.Equal(["env-admin-1", "env-admin-2"], fromVariable!.AdminTokens);
    }

    [Fact]
    public void The_config_option_on_the_command_line_beats_DS_CONFIG_and_memory_skips_file_store_settings_from_lower_sources()
    {
        var used = WriteConfig("""{ "port": 4444, "memory": true, "dataDir": "/ignored" }""");
        var ignored = WriteConfig("""{ "port": 5555 }""");

        var (options, errors) = Resolve(new() { ["DS_CONFIG"] = ignored, ["DS_DURABILITY"] = "none" }, "serve", "--config", used);

        Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors));
        Assert.Equal(4444, options!.Port);
        Assert.Equal(HostedStoreKind.Memory, options.Store);
        Assert.Null(options.DataDirectory);
    }

    [Theory]
    [InlineData("DS_PORT", "abc", "--port", "DS_PORT")]
    [InlineData("DS_MEMORY", "maybe", "--memory", "DS_MEMORY")]
    [InlineData("DS_LOG_FORMAT", "xml", "--log-format", "DS_LOG_FORMAT")]
    public async Task An_invalid_environment_value_stops_start_up_with_exit_code_2_and_one_line_naming_option_and_variable(string variable, string value, string option, string named)
    {
        // The command line leaves the option under test unset, so the variable applies.
        string[] args = variable == "DS_PORT" ? ["serve", "--memory"] : ["serve", "--port", "0", "--data-dir", _directory.Combine("data")];
        var (exitCode, error) = await RunAsync(new() { [variable] = value }, args);

        Assert.Equal(2, exitCode);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains(option, line, StringComparison.Ordinal);
        Assert.Contains(named, line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "prot": 1 }""", "Unknown setting 'prot'")]
    [InlineData("""{ "port": 70000 }""", "--port")]
    [InlineData("""{ "port": [1, 2] }""", "--port")]
    [InlineData("""not json""", "is not valid JSON")]
    [InlineData("""[1]""", "one JSON object")]
    public async Task A_bad_config_file_stops_start_up_with_exit_code_2(string json, string expected)
    {
        var config = WriteConfig(json);

        var (exitCode, error) = await RunAsync([], "serve", "--memory", "--config", config);

        Assert.Equal(2, exitCode);
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_config_file_stops_start_up_with_exit_code_2()
    {
        var (exitCode, error) = await RunAsync([], "serve", "--memory", "--config", _directory.Combine("missing.json"));

        Assert.Equal(2, exitCode);
        Assert.Contains("Could not read the config file", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreadable_tls_certificate_stops_start_up_with_exit_code_1_and_one_line()
    {
        var garbage = WriteConfig("not a certificate");

        var (exitCode, error) = await RunAsync([], "serve", "--memory", "--port", "0", "--tls-cert", garbage, "--tls-key", garbage);

        Assert.Equal(1, exitCode);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), l => !l.StartsWith("Store:", StringComparison.Ordinal));
        Assert.StartsWith("Could not start the server on 127.0.0.1:0", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_logs_at_information_carry_the_start_up_event_with_store_and_durability()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Stops the child with kill(1).");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var startInfo = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "durable-streams.dll"), "serve", "--port", "0", "--data-dir", _directory.Combine("data"), "--durability", "none" })
        {
            startInfo.ArgumentList.Add(argument);
        }
        startInfo.Environment["DS_LOG_LEVEL"] = "information";
        startInfo.Environment["DS_LOG_FORMAT"] = "json";

        using var server = Process.Start(startInfo)!;
        try
        {
            var errorText = server.StandardError.ReadToEndAsync(timeout.Token);
            var firstLine = await server.StandardOutput.ReadLineAsync(timeout.Token);
            Assert.StartsWith("Durable Streams server listening on http://127.0.0.1:", firstLine, StringComparison.Ordinal);
            using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(timeout.Token);
            }
            await server.WaitForExitAsync(timeout.Token);
            var started = (await errorText).Split('\n').Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l)).First(d => d.RootElement.GetProperty("EventId").GetInt32() == 3000);
            var state = started.RootElement.GetProperty("State");
            Assert.Equal("file", state.GetProperty("Store").GetString());
            Assert.Equal(_directory.Combine("data"), state.GetProperty("DataDirectory").GetString());
            Assert.Equal("none", state.GetProperty("Durability").GetString());
            Assert.Equal(firstLine!["Durable Streams server listening on ".Length..], state.GetProperty("Url").GetString());
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
    public void The_config_file_and_DS_ALLOW_LOCAL_WEBHOOKS_turn_local_webhooks_on()
    {
        var config = WriteConfig("""{ "allowLocalWebhooks": true }""");

        var (fromFile, fileErrors) = Resolve(new Dictionary<string, string>(), "serve", "--memory", "--config", config);
        var (fromEnvironment, environmentErrors) = Resolve(new Dictionary<string, string> { ["DS_ALLOW_LOCAL_WEBHOOKS"] = "true" }, "serve", "--memory");
        var (plain, plainErrors) = Resolve(new Dictionary<string, string>(), "serve", "--memory");

        Assert.Empty(fileErrors.Concat(environmentErrors).Concat(plainErrors));
        Assert.True(fromFile!.AllowLocalWebhooks);
        Assert.True(fromEnvironment!.AllowLocalWebhooks);
        Assert.False(plain!.AllowLocalWebhooks);
    }

    private string WriteConfig(string json)
    {
        var path = _directory.Combine($"config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static (ServeOptions? Options, IReadOnlyList<string> Errors) Resolve(Dictionary<string, string> environment, params string[] args)
    {
        var factory = new CommandFactory(new ClientConsole { GetEnvironmentVariable = name => environment.GetValueOrDefault(name) });
        var parseResult = factory.CreateRootCommand().Parse(args);
        Assert.Empty(parseResult.Errors);
        var result = ServeConfiguration.Apply(factory.Serve, parseResult, name => environment.GetValueOrDefault(name));
        if (result.Errors.Count > 0)
        {
            return (null, result.Errors);
        }
        return (factory.Serve.GetOptions(result.ParseResult!) with { ReadTokens = result.ReadTokens, WriteTokens = result.WriteTokens, AdminTokens = result.AdminTokens }, []);
    }

    private static async Task<(int ExitCode, string Error)> RunAsync(Dictionary<string, string> environment, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var factory = new CommandFactory(new ClientConsole { GetEnvironmentVariable = name => environment.GetValueOrDefault(name) });
        var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var exitCode = await factory.CreateRootCommand().Parse(args).InvokeAsync(configuration, timeout.Token);
        return (exitCode, error.ToString());
    }
}
