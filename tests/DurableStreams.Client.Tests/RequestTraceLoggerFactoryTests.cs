using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;
using Xunit;

namespace DurableStreams.Client.Tests;

public sealed class RequestTraceLoggerFactoryTests
{
    [Fact]
    public void Client_events_become_prefixed_trace_lines_and_trace_level_events_are_dropped()
    {
        var lines = new List<string>();
        using var factory = new RequestTraceLoggerFactory(lines.Add);
        var logger = factory.CreateLogger("DurableStreams.Client");

        logger.Log(LogLevel.Debug, new EventId(LogEvents.ClientRequestStarting), "PUT http://127.0.0.1/s", null, (s, _) => s);
        logger.Log(LogLevel.Debug, new EventId(LogEvents.ClientResponseReceived), "201 Created", null, (s, _) => s);
        logger.Log(LogLevel.Information, new EventId(LogEvents.ClientRetrying), "Retrying in 10 ms", null, (s, _) => s);
        logger.Log(LogLevel.Trace, new EventId(LogEvents.ClientRequestStarting), "not shown", null, (s, _) => s);

        Assert.Equal(["> PUT http://127.0.0.1/s", "< 201 Created", "* Retrying in 10 ms"], lines);
    }

    [Fact]
    public void A_null_sink_is_refused() => Assert.Throws<ArgumentNullException>(() => new RequestTraceLoggerFactory(null!));
}
