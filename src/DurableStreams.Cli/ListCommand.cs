using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DurableStreams.Client;
using DurableStreams.Protocol;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>ls [prefix]</c> command: lists the streams in the server's stream registry (<c>serve --registry</c>), those
/// whose names start with the prefix. <c>-o raw</c> (the default when standard output is not a terminal) writes bare
/// names, one a line; <c>-o table</c> (the default on a terminal), <c>json</c> and <c>jsonl</c> add each stream's size,
/// whether it is closed and its expiry, from one HEAD per listed stream (at most <see cref="MaxDetailedStreams"/>).
/// </summary>
internal sealed class ListCommand
{
    public const string NoRegistryMessage = $"ls: this server keeps no stream registry ({StreamRegistry.RegistryStreamName} is not found); start it with 'serve --registry' to list streams, or use head <stream> to check one stream.";

    /// <summary>
    /// The most streams one <c>ls</c> sends a HEAD for (size, closed, expiry); beyond it those columns are empty and
    /// standard error says so. The registry gives names, content types and creation times without them.
    /// </summary>
    public const int MaxDetailedStreams = 1000;

    /// <summary>How many HEAD requests one <c>ls</c> keeps in flight.</summary>
    private const int HeadConcurrency = 8;

    private static readonly OutputFormat[] s_formats = [OutputFormat.Table, OutputFormat.Json, OutputFormat.JsonLines, OutputFormat.Raw];

    private readonly Argument<string?> _prefix = new("prefix")
    {
        Description = "List only the streams whose names start with this text (default: all).",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private readonly Option<string?> _output = OutputOption.Create(
        "ls",
        s_formats,
        "table = aligned columns: name, content type, size (B, KiB, MiB, ...), closed, created and, when any stream expires, expiry; "
        + "json = one JSON array; jsonl = one JSON object per stream; both with the same fields, sizes in bytes; raw = the names, one a line "
        + "(default: table on a terminal, else raw).");

    private readonly Option<bool> _json = new("--json")
    {
        Description = "Deprecated alias of --output json.",
        Hidden = true,
    };

    private readonly Option<bool> _long = new("--long", "-l")
    {
        Description = "Same as --output table.",
    };

    public ListCommand(ClientOptions client)
    {
        Command = new Command("ls", "List the streams in the server's stream registry (the server must run with --registry).") { _prefix, _output, _long, _json };
        ClientOptions.AddExclusive(Command, _output, _json);
        ClientOptions.AddExclusive(Command, _output, _long);
        ClientOptions.AddExclusive(Command, _json, _long);
        Command.SetAction((parseResult, cancellationToken) => client.RunAsync(parseResult, StreamRegistry.RegistryStreamName, async c =>
        {
            var registered = await StreamRegistry.ListAsync(c, cancellationToken);
            var configuration = parseResult.InvocationConfiguration;
            if (registered is null)
            {
                await configuration.Error.WriteLineAsync(NoRegistryMessage);
                return ExitCodes.NotFound;
            }

            var prefix = parseResult.GetValue(_prefix) ?? string.Empty;
            var streams = registered.Where(s => s.Name.StartsWith(prefix, StringComparison.Ordinal)).ToArray();
            var fallback = parseResult.GetValue(_long) || client.Console.IsOutputTerminal() ? OutputFormat.Table : OutputFormat.Raw;
            var format = OutputOption.Resolve(parseResult, _output, fallback, jsonFlag: _json);
            var output = configuration.Output;
            if (format == OutputFormat.Raw)
            {
                foreach (var stream in streams)
                {
                    await output.WriteLineAsync(stream.Name);
                }

                return ExitCodes.Success;
            }

            var listed = await AddDetailsAsync(c, streams, cancellationToken);
            if (streams.Length > MaxDetailedStreams)
            {
                await configuration.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"ls: size, closed and expiry are shown for the first {MaxDetailedStreams} of {streams.Length} streams (one HEAD request each); give a prefix to narrow the list."));
            }

            switch (format)
            {
                case OutputFormat.Json:
                    await output.WriteLineAsync(FormatJson(listed));
                    break;
                case OutputFormat.JsonLines:
                    foreach (var stream in listed)
                    {
                        await output.WriteLineAsync(FormatJsonObject(stream));
                    }

                    break;
                default:
                    foreach (var line in FormatTable(listed))
                    {
                        await output.WriteLineAsync(line);
                    }

                    break;
            }

            return ExitCodes.Success;
        }, cancellationToken));
    }

    public Command Command { get; }

    /// <summary>
    /// HEADs the first <see cref="MaxDetailedStreams"/> streams, <see cref="HeadConcurrency"/> at a time. A stream deleted
    /// since the registry listed it (404 or 410) is left out; the others beyond the cap are listed without details.
    /// </summary>
    private static async Task<IReadOnlyList<ListedStream>> AddDetailsAsync(DurableStreamClient client, RegisteredStream[] streams, CancellationToken cancellationToken)
    {
        var details = new StreamMetadata?[streams.Length];
        var gone = new bool[streams.Length];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, Math.Min(streams.Length, MaxDetailedStreams)),
            new ParallelOptions { MaxDegreeOfParallelism = HeadConcurrency, CancellationToken = cancellationToken },
            async (index, token) =>
            {
                try
                {
                    details[index] = await client.GetMetadataAsync(streams[index].Name, token);
                }
                catch (DurableStreamException ex) when (ex.ErrorCode is DurableStreamErrorCode.NotFound or DurableStreamErrorCode.Gone)
                {
                    gone[index] = true;
                }
            });
        return streams.Select((stream, index) => (stream, index))
            .Where(s => !gone[s.index])
            .Select(s => new ListedStream(s.stream, details[s.index]))
            .ToArray();
    }

    /// <summary>
    /// A header line and one line per stream, columns padded to the widest value (sizes right-aligned); times in UTC,
    /// ISO 8601. The EXPIRES column appears only when a stream has an expiry or a TTL.
    /// </summary>
    internal static IReadOnlyList<string> FormatTable(IReadOnlyList<ListedStream> streams)
    {
        var withExpiry = streams.Any(s => s.Metadata is { ExpiresAt: not null } or { Ttl: not null });
        var rows = new List<string[]> { withExpiry ? ["NAME", "CONTENT TYPE", "SIZE", "CLOSED", "CREATED (UTC)", "EXPIRES (UTC)"] : ["NAME", "CONTENT TYPE", "SIZE", "CLOSED", "CREATED (UTC)"] };
        foreach (var s in streams)
        {
            var row = new List<string>
            {
                s.Stream.Name,
                s.Stream.ContentType ?? "-",
                s.Size is { } size ? FormatSize(size) : "-",
                s.Metadata is { } metadata ? (metadata.Closed ? "yes" : "no") : "-",
                s.Stream.CreatedAt is { } created ? FormatTime(created) : "-",
            };
            if (withExpiry)
            {
                row.Add(s.Metadata switch
                {
                    { ExpiresAt: { } at } => FormatTime(at),
                    { Ttl: { } ttl } => "TTL " + DurationParser.Format(ttl),
                    _ => "-",
                });
            }

            rows.Add([.. row]);
        }

        var widths = Enumerable.Range(0, rows[0].Length).Select(column => rows.Max(r => r[column].Length)).ToArray();
        return rows.Select(r => string.Join("  ", r.Select((cell, column) => column == 2 ? cell.PadLeft(widths[column]) : cell.PadRight(widths[column]))).TrimEnd()).ToArray();
    }

    /// <summary>The listing as one JSON array of the objects <see cref="FormatJsonObject"/> writes.</summary>
    internal static string FormatJson(IReadOnlyList<ListedStream> streams)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            foreach (var stream in streams)
            {
                WriteObject(json, stream);
            }

            json.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// One stream as a JSON object: <c>name</c>, <c>contentType</c>, <c>size</c> (bytes), <c>closed</c>,
    /// <c>nextOffset</c>, <c>createdAt</c>, <c>expiresAt</c> (RFC 3339, UTC) and <c>ttlSeconds</c>; null when unknown.
    /// </summary>
    internal static string FormatJsonObject(ListedStream stream)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            WriteObject(json, stream);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>A size for people: bytes below 1 KiB, else one decimal in KiB, MiB, GiB or TiB.</summary>
    internal static string FormatSize(long bytes)
    {
        if (bytes < 1024)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{bytes} B");
        }

        string[] units = ["KiB", "MiB", "GiB", "TiB"];
        var value = bytes / 1024.0;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{value:0.0} {units[unit]}");
    }

    private static string FormatTime(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    private static void WriteObject(Utf8JsonWriter json, ListedStream stream)
    {
        json.WriteStartObject();
        json.WriteString("name", stream.Stream.Name);
        WriteStringOrNull(json, "contentType", stream.Stream.ContentType);
        WriteNumberOrNull(json, "size", stream.Size);
        if (stream.Metadata is { } metadata)
        {
            json.WriteBoolean("closed", metadata.Closed);
        }
        else
        {
            json.WriteNull("closed");
        }

        WriteStringOrNull(json, "nextOffset", stream.Metadata?.NextOffset);
        WriteStringOrNull(json, "createdAt", stream.Stream.CreatedAt?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
        WriteStringOrNull(json, "expiresAt", stream.Metadata?.ExpiresAt is { } at ? ExpiryRules.Format(at) : null);
        WriteNumberOrNull(json, "ttlSeconds", stream.Metadata?.Ttl is { } ttl ? (long)ttl.TotalSeconds : null);
        json.WriteEndObject();
    }

    private static void WriteStringOrNull(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null)
        {
            json.WriteNull(name);
        }
        else
        {
            json.WriteString(name, value);
        }
    }

    private static void WriteNumberOrNull(Utf8JsonWriter json, string name, long? value)
    {
        if (value is { } number)
        {
            json.WriteNumber(name, number);
        }
        else
        {
            json.WriteNull(name);
        }
    }
}

/// <summary>A registry entry and, when <c>ls</c> sent a HEAD for it, the stream's metadata.</summary>
internal sealed record ListedStream(RegisteredStream Stream, StreamMetadata? Metadata)
{
    /// <summary>
    /// The stream's size in bytes: its tail offset's byte position (this project's offsets are byte positions); null
    /// without metadata or when the server's offsets are not positions.
    /// </summary>
    public long? Size => Metadata is { } metadata && StreamOffset.TryParse(metadata.NextOffset, out var tail) ? tail.Position : null;
}
