using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DurableStreams.Protocol;

namespace DurableStreams.Cli;

/// <summary>The <c>head</c> command (alias <c>info</c>): prints a stream's metadata.</summary>
internal sealed class HeadCommand
{
    private static readonly OutputFormat[] s_formats = [OutputFormat.Table, OutputFormat.Json, OutputFormat.JsonLines];

    private readonly ClientOptions _client;
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    private readonly Option<string?> _output = OutputOption.Create(
        "head",
        s_formats,
        "table = aligned 'Key: value' lines; json and jsonl = one JSON object on one line, ended by a newline (default: table).");

    private readonly Option<bool> _json = new("--json")
    {
        Description = "Deprecated alias of --output json.",
        Hidden = true,
    };

    public HeadCommand(ClientOptions client)
    {
        _client = client;
        Command = new Command("head", "Print a stream's metadata: content type, tail offset, whether it is closed, its expiry.")
        {
            _stream,
            _output,
            _json,
        };
        ClientOptions.AddExclusive(Command, _output, _json);
        Command.Aliases.Add("info");
        Command.SetAction(RunAsync);
    }

    public Command Command { get; }

    private Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var stream = parseResult.GetRequiredValue(_stream);
        var output = parseResult.InvocationConfiguration.Output;
        return _client.RunAsync(parseResult, stream, async client =>
        {
            var metadata = await client.GetMetadataAsync(stream, cancellationToken);
            var ttlSeconds = metadata.Ttl is { } ttl ? (long?)ttl.TotalSeconds : null;
            var expiresAt = metadata.ExpiresAt is { } at ? ExpiryRules.Format(at) : null;
            if (OutputOption.Resolve(parseResult, _output, OutputFormat.Table, jsonFlag: _json) != OutputFormat.Table)
            {
                using var buffer = new MemoryStream();
                using (var writer = new Utf8JsonWriter(buffer))
                {
                    writer.WriteStartObject();
                    writer.WriteString("stream", stream);
                    writer.WriteString("contentType", metadata.ContentType);
                    writer.WriteString("nextOffset", metadata.NextOffset);
                    writer.WriteString("retainedStart", metadata.RetainedStart);
                    writer.WriteNumber("generation", metadata.Generation);
                    writer.WriteBoolean("closed", metadata.Closed);
                    if (ttlSeconds is { } seconds)
                    {
                        writer.WriteNumber("ttlSeconds", seconds);
                    }
                    else
                    {
                        writer.WriteNull("ttlSeconds");
                    }

                    writer.WriteString("expiresAt", expiresAt);
                    writer.WriteEndObject();
                }

                await output.WriteLineAsync(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
                return ExitCodes.Success;
            }

            var lines = new List<(string Key, string Value)>
            {
                ("Stream", stream),
                ("Content-Type", metadata.ContentType ?? "(none)"),
                ("Next-Offset", metadata.NextOffset),
                ("Retained-Start", metadata.RetainedStart ?? "(not reported)"),
                ("Closed", metadata.Closed ? "yes" : "no"),
            };
            if (metadata.Generation > 0)
            {
                lines.Insert(4, ("Generation", metadata.Generation.ToString(CultureInfo.InvariantCulture) + " (compacted)"));
            }
            if (ttlSeconds is { } ttlValue)
            {
                lines.Add(("TTL", DurationParser.Format(TimeSpan.FromSeconds(ttlValue))));
            }

            if (expiresAt is not null)
            {
                lines.Add(("Expires-At", expiresAt));
            }

            var width = lines.Max(line => line.Key.Length) + 1;
            foreach (var (key, value) in lines)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{(key + ":").PadRight(width)} {value}"));
            }

            return ExitCodes.Success;
        }, cancellationToken);
    }
}
