using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary><c>durable-streams open</c>: the URL of a stream's view in the inspector page.</summary>
public sealed class OpenCommandTests
{
    [Fact]
    public async Task Open_prints_the_view_url_at_the_server_root()
    {
        var (exitCode, output, error) = await CliRun.InvokeAsync(
            ["open", "orders/2026 12", "--url", "http://127.0.0.1:4437/v1/stream", "--offset", "0000000000000000_0000000000000042", "--live", "--no-browser"],
            TestContext.Current.CancellationToken);

        Assert.Equal(0, exitCode);
        Assert.Equal("", error);
        Assert.Equal("http://127.0.0.1:4437/?stream=orders%2F2026%2012&offset=0000000000000000_0000000000000042&live=1" + Environment.NewLine, output);
    }

    [Fact]
    public async Task Open_without_offset_or_live_names_only_the_stream()
    {
        var (exitCode, output, _) = await CliRun.InvokeAsync(
            ["open", "events", "--url", "https://streams.example:8443", "--no-browser"], TestContext.Current.CancellationToken);

        Assert.Equal(0, exitCode);
        Assert.Equal("https://streams.example:8443/?stream=events" + Environment.NewLine, output);
    }
}
