using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>compact</c> command: asks the server to compact a State-Protocol stream now (<c>POST __ds/compact/{stream}</c>,
/// admin scope) and prints what happened.
/// </summary>
internal sealed class CompactCommand
{
    private static readonly OutputFormat[] s_formats = [OutputFormat.Table, OutputFormat.Json, OutputFormat.JsonLines];

    private readonly ClientOptions _client;
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    private readonly Option<string?> _output = OutputOption.Create(
        "compact",
        s_formats,
        "table = one summary line; json and jsonl = the server's report as one JSON object on one line (default: table).");

    public CompactCommand(ClientOptions client)
    {
        _client = client;
        Command = new Command("compact", "Compact a State-Protocol JSON stream now: its prefix becomes a snapshot of the live keys (needs an admin token).")
        {
            _stream,
            _output,
        };
        Command.SetAction(RunAsync);
    }

    public Command Command { get; }

    private Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var stream = parseResult.GetRequiredValue(_stream);
        var output = parseResult.InvocationConfiguration.Output;
        return _client.RunAsync(parseResult, stream, async client =>
        {
            var report = await client.CompactAsync(stream, cancellationToken);
            if (OutputOption.Resolve(parseResult, _output, OutputFormat.Table) != OutputFormat.Table)
            {
                using var buffer = new MemoryStream();
                using (var writer = new Utf8JsonWriter(buffer))
                {
                    writer.WriteStartObject();
                    writer.WriteString("stream", stream);
                    writer.WriteString("outcome", report.Outcome);
                    writer.WriteNumber("bytesBefore", report.BytesBefore);
                    writer.WriteNumber("bytesAfter", report.BytesAfter);
                    writer.WriteNumber("messagesBefore", report.MessagesBefore);
                    writer.WriteNumber("liveKeys", report.LiveKeys);
                    writer.WriteNumber("unknownMessages", report.UnknownMessages);
                    writer.WriteBoolean("partial", report.Partial);
                    writer.WriteString("retainedStart", report.RetainedStart);
                    writer.WriteNumber("offsetGeneration", report.OffsetGeneration);
                    writer.WriteString("compactedEnd", report.CompactedEnd);
                    writer.WriteEndObject();
                }
                await output.WriteLineAsync(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
                return ExitCodes.Success;
            }
            await output.WriteLineAsync(Summary(stream, report));
            return ExitCodes.Success;
        }, cancellationToken, baseFromStreamUrl: true);
    }

    /// <summary>One line: what happened, the sizes, and the offset space afterwards.</summary>
    internal static string Summary(string stream, Client.CompactionReport report) => report.Outcome switch
    {
        "compacted" => string.Create(CultureInfo.InvariantCulture,
            $"{stream}: compacted {report.MessagesBefore:N0} messages ({report.BytesBefore:N0} bytes) to {report.LiveKeys:N0} live keys ({report.BytesAfter:N0} bytes){(report.Partial ? $", {report.UnknownMessages:N0} messages kept as they are (partial)" : "")}; generation {report.OffsetGeneration}, retained start {report.RetainedStart}."),
        "notDue" => $"{stream}: nothing to compact (nothing appended since the last compaction).",
        "notSmaller" => string.Create(CultureInfo.InvariantCulture, $"{stream}: not compacted: the snapshot ({report.BytesAfter:N0} bytes) would not be smaller than the {report.BytesBefore:N0} bytes it replaces."),
        "tooLarge" => $"{stream}: not compacted: the snapshot would exceed the server's snapshot size limit.",
        "conflict" => $"{stream}: not compacted: the stream changed while the snapshot was built; try again.",
        _ => $"{stream}: {report.Outcome}.",
    };
}
