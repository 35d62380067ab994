using DurableStreams.Server;
using Microsoft.Extensions.Logging;
using Xunit;

namespace DurableStreams.Cli.Tests;

public sealed class ServeLogTests
{
    private const string HostingDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";

    [Theory]
    [InlineData(HostedStoreKind.File, "file")]
    [InlineData(HostedStoreKind.Memory, "memory")]
    [InlineData(HostedStoreKind.Postgres, "postgres")]
    public void The_start_up_event_names_the_store_that_serves(HostedStoreKind store, string label)
    {
        // --postgres was reported as "memory" while only the file store was told apart.
        Assert.Equal(label, ServeCommand.StoreLabel(store));
    }

    [Theory]
    [InlineData(LogLevel.Information)]
    [InlineData(LogLevel.Warning)]
    [InlineData(LogLevel.Error)]
    public void Above_debug_the_per_request_hosting_logger_is_off_so_no_request_pays_for_an_activity(LogLevel level)
    {
        using var factory = ServeLog.CreateLoggerFactory(level, "simple");

        // ASP.NET Core starts an Activity and a log scope per request whenever this logger is enabled at any level.
        Assert.False(factory.CreateLogger(HostingDiagnostics).IsEnabled(LogLevel.Critical));
    }

    [Theory]
    [InlineData("simple")]
    [InlineData("json")]
    public void Above_debug_unhandled_request_errors_are_still_logged(string format)
    {
        using var factory = ServeLog.CreateLoggerFactory(LogLevel.Information, format);

        Assert.True(factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel").IsEnabled(LogLevel.Error));
        Assert.True(factory.CreateLogger("DurableStreams.Server").IsEnabled(LogLevel.Information));
    }

    [Fact]
    public void At_debug_the_per_request_hosting_log_is_on()
    {
        using var factory = ServeLog.CreateLoggerFactory(LogLevel.Debug, "simple");

        Assert.True(factory.CreateLogger(HostingDiagnostics).IsEnabled(LogLevel.Information));
    }
}
