using DurableStreams.Core.Retention;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>serve's retention settings (issue 18): the server-wide flags, the config file's rules, DS_* variables, and their errors.</summary>
public sealed class ServeRetentionOptionTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Without_retention_settings_every_stream_keeps_everything()
    {
        var options = CliRun.ParseServe("serve", "--memory");

        Assert.Same(RetentionPolicies.None, options.Retention);
        Assert.False(options.Retention.Any);
        Assert.Equal(TimeSpan.FromMinutes(1), options.RetentionInterval);
    }

    [Fact]
    public void The_server_wide_flags_set_the_default_policy_and_the_interval()
    {
        var options = CliRun.ParseServe("serve", "--memory", "--retention-max-age", "7d", "--retention-max-bytes", "10GiB", "--retention-interval", "30s");

        Assert.Equal(new RetentionPolicy(TimeSpan.FromDays(7), 10L * 1024 * 1024 * 1024), options.Retention.Default);
        Assert.Empty(options.Retention.Rules);
        Assert.Equal(TimeSpan.FromSeconds(30), options.RetentionInterval);
        Assert.Same(options.Retention, options.ToMemoryStoreOptions().Retention);
    }

    [Fact]
    public void The_config_file_s_rules_come_first_in_order_then_the_server_wide_default()
    {
        var config = WriteConfig("""
            {
              "retention": [
                { "streams": "logs/**", "maxAge": "7d", "maxBytes": "10GiB" },
                { "streams": "metrics/*", "max-bytes": 500000 },
                { "streams": "logs/keep/**" },
              ]
            }
            """);

        var (options, errors) = Resolve([], "serve", "--memory", "--config", config, "--retention-max-bytes", "1MB");

        Assert.Empty(errors);
        Assert.Equal(
            [
                new RetentionRule("logs/**", new RetentionPolicy(TimeSpan.FromDays(7), 10L * 1024 * 1024 * 1024)),
                new RetentionRule("metrics/*", new RetentionPolicy(null, 500_000)),
                new RetentionRule("logs/keep/**", RetentionPolicy.KeepAll),
            ],
            options!.Retention.Rules);
        Assert.Equal(new RetentionPolicy(TimeSpan.FromDays(7), 10L * 1024 * 1024 * 1024), options.Retention.Resolve("logs/app/1"));
        Assert.Equal(new RetentionPolicy(null, 500_000), options.Retention.Resolve("metrics/cpu"));
        Assert.Equal(new RetentionPolicy(null, 1_000_000), options.Retention.Resolve("other"));
    }

    [Fact]
    public void DS_variables_set_the_flags_and_DS_RETENTION_the_rules()
    {
        var (options, errors) = Resolve(
            new()
            {
                ["DS_RETENTION_MAX_AGE"] = "12h",
                ["DS_RETENTION_MAX_BYTES"] = "500MB",
                ["DS_RETENTION_INTERVAL"] = "5m",
                ["DS_RETENTION"] = """[{"streams": "tmp/**", "maxAge": "1h"}]""",
            },
            "serve", "--memory");

        Assert.Empty(errors);
        Assert.Equal(new RetentionPolicy(TimeSpan.FromHours(12), 500_000_000), options!.Retention.Default);
        Assert.Equal([new RetentionRule("tmp/**", new RetentionPolicy(TimeSpan.FromHours(1), null))], options.Retention.Rules);
        Assert.Equal(TimeSpan.FromMinutes(5), options.RetentionInterval);
    }

    [Theory]
    [InlineData("--retention-max-age", "7x", "Invalid value '7x' for --retention-max-age: expected a whole number with an optional unit ms, s, m, h or d")]
    [InlineData("--retention-max-age", "0d", "Invalid value '0d' for --retention-max-age: the duration must be greater than zero.")]
    [InlineData("--retention-max-bytes", "10GB!", "Invalid value '10GB!' for --retention-max-bytes: expected a whole number of bytes with an optional unit")]
    [InlineData("--retention-max-bytes", "0", "Invalid value '0' for --retention-max-bytes: expected a whole number of bytes")]
    [InlineData("--retention-max-bytes", "1.5GiB", "Invalid value '1.5GiB' for --retention-max-bytes")]
    [InlineData("--retention-max-bytes", "99999999999TiB", "Invalid value '99999999999TiB' for --retention-max-bytes")]
    [InlineData("--retention-interval", "never", "Invalid value 'never' for --retention-interval: expected a whole number")]
    public async Task An_invalid_flag_exits_2_with_one_line_naming_it(string option, string value, string expectedStart)
    {
        var run = await CliRun.InvokeAsync(["serve", "--memory", option, value], TestContext.Current.CancellationToken);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        var line = Assert.Single(run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith(expectedStart, line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "retention": { "streams": "a/**" } }""", "Invalid value for 'retention' in the config file")]
    [InlineData("""{ "retention": [ "a/**" ] }""", "Retention rule 1 in the config file")]
    [InlineData("""{ "retention": [ { "maxAge": "7d" } ] }""", "Invalid retention rule 1 in the config file")]
    [InlineData("""{ "retention": [ { "streams": "" } ] }""", "'streams' must be a non-empty stream-name pattern")]
    [InlineData("""{ "retention": [ { "streams": "a/**" }, { "streams": "b/**", "maxAge": "7 days" } ] }""", "Invalid retention rule 2 (streams 'b/**') in the config file")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "maxBytes": "lots" } ] }""", "invalid maxBytes 'lots': expected a whole number of bytes")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "maxBytes": -1 } ] }""", "invalid maxBytes '-1'")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "maxAges": "7d" } ] }""", "unknown key 'maxAges' (a rule has streams, maxAge, maxBytes, compaction")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "compaction": "lww" } ] }""", "Invalid retention rule 1 (streams 'b/**') in the config file")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "compaction": "lww" } ] }""", "unknown compaction 'lww': the only compaction is \"state\"")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "compaction": "state", "compactionRatio": 0.5 } ] }""", "invalid compactionRatio '0.5': expected a number of at least 1")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "compaction": "state", "compactionMinBytes": "big" } ] }""", "invalid compactionMinBytes 'big'")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "compactionRatio": 3 } ] }""", "compactionMinBytes and compactionRatio need \"compaction\": \"state\"")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "compaction": "state", "maxBytes": "1GiB" } ] }""", "\"compaction\" cannot be combined with maxAge or maxBytes in one rule")]
    [InlineData("""{ "retention": [ { "streams": "b/**", "maxAge": "7d", "compaction": "state" } ] }""", "retention would drop part of a snapshot")]
    public async Task A_bad_retention_rule_stops_start_up_with_exit_code_2_and_one_line_naming_the_rule(string json, string expected)
    {
        var config = WriteConfig(json);

        var run = await CliRun.InvokeAsync(["serve", "--memory", "--config", config], TestContext.Current.CancellationToken);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        var line = Assert.Single(run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.Contains(config, line, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rule_may_turn_on_state_compaction_with_its_thresholds_and_DS_RETENTION_may_too()
    {
        var config = WriteConfig("""
            { "retention": [
                { "streams": "state/**", "compaction": "state", "compactionMinBytes": "4MiB", "compaction-ratio": 3 },
                { "streams": "plain/**", "compaction": "state" },
                { "streams": "logs/**", "maxAge": "7d" } ] }
            """);

        var (options, errors) = Resolve([], "serve", "--memory", "--config", config);
        var (fromVariable, variableErrors) = Resolve(new() { ["DS_RETENTION"] = """[{"streams": "s/**", "compaction": "state"}]""" }, "serve", "--memory");

        Assert.Empty(errors);
        Assert.Empty(variableErrors);
        var state = options!.Retention.Resolve("state/a");
        Assert.Equal(DurableStreams.Core.Compaction.CompactionPolicy.State with { MinBytes = 4L << 20, MinRatio = 3 }, state.Compaction);
        Assert.False(state.DropsData);
        Assert.Equal(DurableStreams.Core.Compaction.CompactionPolicy.State, options.Retention.Resolve("plain/a").Compaction);
        Assert.Null(options.Retention.Resolve("plain/a").MaxAge);
        Assert.Null(options.Retention.Resolve("logs/a").Compaction);
        Assert.True(options.Retention.AnyCompaction);
        Assert.Equal(DurableStreams.Core.Compaction.CompactionPolicy.State, fromVariable!.Retention.Resolve("s/x").Compaction);
    }

    [Fact]
    public void DS_RETENTION_that_is_not_JSON_is_an_error_naming_the_variable()
    {
        var (_, errors) = Resolve(new() { ["DS_RETENTION"] = "logs/**=7d" }, "serve", "--memory");

        var error = Assert.Single(errors);
        Assert.StartsWith("The retention rules in the environment variable DS_RETENTION are not valid JSON", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_the_retention_flags()
    {
        var run = await CliRun.InvokeAsync(["serve", "--help"], TestContext.Current.CancellationToken);

        Assert.Contains("--retention-max-age <duration>", run.Output, StringComparison.Ordinal);
        Assert.Contains("--retention-max-bytes <size>", run.Output, StringComparison.Ordinal);
        Assert.Contains("--retention-interval <duration>", run.Output, StringComparison.Ordinal);
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
        return result.Errors.Count > 0 ? (null, result.Errors) : (factory.Serve.GetOptions(result.ParseResult!, result.RetentionRules), []);
    }
}
