using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DurableStreams.Client;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>ls</c> command: lists the streams in the server's stream registry (<c>serve --registry</c>). Bare names, one a
/// line, when standard output is not a terminal; an aligned table (name, content type, created) on a terminal or with
/// <c>--long</c>; a JSON array with <c>--json</c>.
/// </summary>
internal sealed class ListCommand
{
    public const string NoRegistryMessage = $"ls: this server keeps no stream registry ({StreamRegistry.RegistryStreamName} is not found); start it with 'serve --registry' to list streams, or use head <stream> to check one stream.";

    private static readonly string[] s_header = ["NAME", "CONTENT TYPE", "CREATED (UTC)"];

    private readonly Option<bool> _json = new("--json")
    {
        Description = "Write a JSON array of {name, contentType, createdAt} objects (for scripts).",
    };

    private readonly Option<bool> _long = new("--long", "-l")
    {
        Description = "Write a table with content type and creation time even when the output is not a terminal.",
    };

    public ListCommand(ClientOptions client)
    {
        Command = new Command("ls", "List the streams in the server's stream registry (the server must run with --registry).") { _json, _long };
        ClientOptions.AddExclusive(Command, _json, _long);
        Command.SetAction((parseResult, cancellationToken) => client.RunAsync(parseResult, StreamRegistry.RegistryStreamName, async c =>
        {
            var streams = await StreamRegistry.ListAsync(c, cancellationToken);
            var configuration = parseResult.InvocationConfiguration;
            if (streams is null)
            {
                await configuration.Error.WriteLineAsync(NoRegistryMessage);
                return ExitCodes.NotFound;
            }
            var output = configuration.Output;
            if (parseResult.GetValue(_json))
            {
                await output.WriteLineAsync(FormatJson(streams));
            }
            else if (parseResult.GetValue(_long) || client.Console.IsOutputTerminal())
            {
                foreach (var line in FormatTable(streams))
                {
                    await output.WriteLineAsync(line);
                }
            }
            else
            {
                foreach (var stream in streams)
                {
                    await output.WriteLineAsync(stream.Name);
                }
            }
            return ExitCodes.Success;
        }, cancellationToken));
    }

    public Command Command { get; }

    /// <summary>A header line and one line per stream, columns padded to the widest value; creation times in UTC, ISO 8601.</summary>
    internal static IReadOnlyList<string> FormatTable(IReadOnlyList<RegisteredStream> streams)
    {
        var rows = new List<string[]> { s_header };
        rows.AddRange(streams.Select(s => new[]
        {
            s.Name,
            s.ContentType ?? "-",
            s.CreatedAt?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-",
        }));
        var nameWidth = rows.Max(r => r[0].Length);
        var typeWidth = rows.Max(r => r[1].Length);
        return rows.Select(r => $"{r[0].PadRight(nameWidth)}  {r[1].PadRight(typeWidth)}  {r[2]}".TrimEnd()).ToArray();
    }

    /// <summary>The listing as a JSON array; <c>createdAt</c> is an RFC 3339 UTC time or null.</summary>
    internal static string FormatJson(IReadOnlyList<RegisteredStream> streams)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            foreach (var stream in streams)
            {
                json.WriteStartObject();
                json.WriteString("name", stream.Name);
                if (stream.ContentType is { } type)
                {
                    json.WriteString("contentType", type);
                }
                else
                {
                    json.WriteNull("contentType");
                }
                if (stream.CreatedAt is { } created)
                {
                    json.WriteString("createdAt", created.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
                }
                else
                {
                    json.WriteNull("createdAt");
                }
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
