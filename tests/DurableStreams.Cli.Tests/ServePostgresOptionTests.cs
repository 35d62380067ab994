using DurableStreams.Server;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary><c>serve --postgres</c>: parsing and conflicts (the store itself is tested in DurableStreams.Postgres.Tests).</summary>
public sealed class ServePostgresOptionTests
{
    private const string ConnectionString = "Host=127.0.0.1;Port=1;Username=postgres";

    [Fact]
    public void Postgres_selects_the_postgres_store_with_no_data_directory()
    {
        var options = Parse("serve", "--postgres", ConnectionString);

        Assert.Equal(HostedStoreKind.Postgres, options.Store);
        Assert.Equal(ConnectionString, options.PostgresConnectionString);
        Assert.Null(options.DataDirectory);
        Assert.Equal(ConnectionString, options.ToPostgresStoreOptions().ConnectionString);
    }

    [Fact]
    public void Without_postgres_no_connection_string_is_set()
    {
        var options = Parse("serve", "--memory");

        Assert.Equal(HostedStoreKind.Memory, options.Store);
        Assert.Null(options.PostgresConnectionString);
        Assert.Throws<InvalidOperationException>(() => options.ToPostgresStoreOptions());
    }

    [Theory]
    [InlineData("--memory", "--memory")]
    [InlineData("--data-dir", "--data-dir", "x")]
    [InlineData("--durability", "--durability", "none")]
    public async Task Postgres_with_another_store_option_exits_2_naming_it(string option, params string[] args)
    {
        var run = await RunAsync(["serve", "--postgres", ConnectionString, .. args]);

        Assert.Equal(CommandLineRunner.UsageErrorExitCode, run.ExitCode);
        Assert.Contains($"{option} cannot be used with --postgres.", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_database_exits_1_with_one_message()
    {
        var run = await RunAsync("serve", "--port", "0", "--postgres", "Host=127.0.0.1;Port=1;Username=postgres;Timeout=2");

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith("Could not open the PostgreSQL store:", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_the_postgres_option()
    {
        var run = await RunAsync("serve", "--help");

        Assert.Contains("--postgres <connection-string>", run.Output, StringComparison.Ordinal);
    }

    private static ServeOptions Parse(params string[] args) => CliRun.ParseServe(args);

    private static Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args) =>
        CliRun.InvokeAsync(args, TestContext.Current.CancellationToken);
}
