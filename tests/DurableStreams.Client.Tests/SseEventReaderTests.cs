using System.Text;
using DurableStreams.Client.Internal;
using Xunit;

namespace DurableStreams.Client.Tests;

public sealed class SseEventReaderTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Events_join_data_lines_strip_one_space_skip_comments_and_accept_any_line_ending()
    {
        const string body = ": comment\r\nevent: data\r\ndata:  two spaces\rdata:b\n\nevent: control\ndata: {\"x\":1}\n\nevent: data\ndata: unfinished";
        using var reader = new SseEventReader(new MemoryStream(Encoding.UTF8.GetBytes(body)));

        var first = await reader.ReadAsync(Ct);
        var second = await reader.ReadAsync(Ct);
        var end = await reader.ReadAsync(Ct);

        Assert.Equal(new SseEvent("data", " two spaces\nb"), first);
        Assert.Equal(new SseEvent("control", "{\"x\":1}"), second);
        Assert.Null(end);
    }
}
