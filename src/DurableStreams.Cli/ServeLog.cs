using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace DurableStreams.Cli;

/// <summary>The log events of <c>serve</c> (event ids 3000–3099) and its logger factory.</summary>
internal static partial class ServeLog
{
    /// <summary>
    /// Console logging to stderr (stdout keeps the URL lines): the simple formatter on one line per event, or the JSON
    /// formatter. ASP.NET Core's own events are kept to errors, except that debug shows Kestrel's connection events too.
    /// </summary>
    public static ILoggerFactory CreateLoggerFactory(LogLevel level, string format) => LoggerFactory.Create(logging =>
    {
        logging.SetMinimumLevel(level);
        if (format == "json")
        {
            logging.AddJsonConsole(json => json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ");
        }
        else
        {
            logging.AddSimpleConsole(console => console.SingleLine = true);
        }
        logging.AddFilter("Microsoft.AspNetCore", level <= LogLevel.Debug ? LogLevel.Information : LogLevel.Error);
        // While this category is enabled at any level, ASP.NET Core starts an Activity and a log scope for every request
        // (~0.7 µs each here) for its per-request log lines; those are Information, so below debug nothing would use
        // them. Its only error event, a startup exception, also reaches the caller of StartAsync, which reports it.
        logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", level <= LogLevel.Debug ? LogLevel.Information : LogLevel.None);
        // The host logs a startup failure (event 11, an Error with the whole stack trace) before StartAsync throws it to
        // serve, which prints it as one line; Critical keeps only "a background service failed and stopped the host".
        logging.AddFilter("Microsoft.Extensions.Hosting", level <= LogLevel.Debug ? LogLevel.Information : LogLevel.Critical);
        // Event 3000 already names the URL; the host's own "Now listening" lines would repeat it.
        logging.AddFilter("Microsoft.Hosting", level <= LogLevel.Debug ? LogLevel.Information : LogLevel.Warning);
        logging.Services.Configure<ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
    });

    [LoggerMessage(EventId = LogEvents.ServerStarted, Level = LogLevel.Information,
        Message = "Durable Streams server listening on {Url}; store {Store}, data directory {DataDirectory}, durability {Durability}, registry {Registry}, authentication {Authentication}")]
    public static partial void Started(ILogger logger, string url, string store, string dataDirectory, string durability, bool registry, bool authentication);
}
