using System.CommandLine;

namespace DurableStreams.Cli;

/// <summary>What a command that prints data writes to standard output (<c>-o/--output</c>).</summary>
internal enum OutputFormat
{
    /// <summary>Aligned human-readable columns or <c>Key: value</c> lines.</summary>
    Table,

    /// <summary>One JSON document.</summary>
    Json,

    /// <summary>One JSON object or message per line.</summary>
    JsonLines,

    /// <summary>The bytes as stored (<c>read</c>), or bare names one a line (<c>ls</c>).</summary>
    Raw,

    /// <summary>Each message as indented JSON (<c>read</c> only).</summary>
    Pretty,
}

/// <summary>
/// The one <c>-o/--output &lt;format&gt;</c> option of every command that prints data: each command accepts the formats
/// it can write, and any other value is a usage error (exit 2) that lists them. Older spellings (<c>--json</c>,
/// <c>read --format</c>) stay as hidden aliases.
/// </summary>
internal static class OutputOption
{
    private static readonly (string Name, OutputFormat Format)[] s_names =
        [("table", OutputFormat.Table), ("json", OutputFormat.Json), ("jsonl", OutputFormat.JsonLines), ("raw", OutputFormat.Raw), ("pretty", OutputFormat.Pretty)];

    /// <summary>The name of a format on the command line.</summary>
    public static string NameOf(OutputFormat format) => s_names.First(n => n.Format == format).Name;

    /// <summary>An <c>-o/--output</c> option for <paramref name="command"/> that accepts <paramref name="accepted"/> (in help order).</summary>
    public static Option<string?> Create(string command, IReadOnlyList<OutputFormat> accepted, string description) =>
        Create("--output", command, accepted, description, "-o");

    /// <summary>A hidden older spelling of <c>--output</c> (such as <c>read --format</c>) with the same values and checks.</summary>
    public static Option<string?> CreateAlias(string name, string command, IReadOnlyList<OutputFormat> accepted)
    {
        var option = Create(name, command, accepted, $"Deprecated alias of --output.");
        option.Hidden = true;
        return option;
    }

    /// <summary>
    /// The format an invocation asked for: <paramref name="output"/>, else <paramref name="alias"/>, else
    /// <paramref name="jsonFlag"/> (<c>--json</c>) as <see cref="OutputFormat.Json"/>, else <paramref name="fallback"/>.
    /// </summary>
    public static OutputFormat Resolve(ParseResult parseResult, Option<string?> output, OutputFormat fallback, Option<string?>? alias = null, Option<bool>? jsonFlag = null)
    {
        var name = parseResult.GetValue(output) ?? (alias is null ? null : parseResult.GetValue(alias));
        if (name is not null)
        {
            return s_names.First(n => n.Name == name).Format;
        }

        return jsonFlag is not null && parseResult.GetValue(jsonFlag) ? OutputFormat.Json : fallback;
    }

    /// <summary>The formats of a command whose result is one JSON object (create, fork, append): json or jsonl, no default.</summary>
    public static readonly OutputFormat[] ResultFormats = [OutputFormat.Json, OutputFormat.JsonLines];

    /// <summary>
    /// An <c>-o/--output json|jsonl</c> option for a command that prints nothing on standard output unless asked: then
    /// one JSON object on one line describing its result.
    /// </summary>
    public static Option<string?> CreateResult(string command, string fields) => Create(
        command,
        ResultFormats,
        $"Also write the result to standard output as one JSON object on one line ({fields}); json and jsonl are the same here (default: nothing on standard output).");

    /// <summary>Writes one JSON object and a newline to <paramref name="output"/>.</summary>
    public static async Task WriteObjectAsync(TextWriter output, Action<System.Text.Json.Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            write(json);
            json.WriteEndObject();
        }

        await output.WriteLineAsync(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    private static Option<string?> Create(string name, string command, IReadOnlyList<OutputFormat> accepted, string description, params string[] aliases)
    {
        var names = accepted.Select(NameOf).ToArray();
        var option = new Option<string?>(name, aliases)
        {
            Description = description,
            HelpName = string.Join('|', names),
        };
        option.CompletionSources.Add(names);
        option.Validators.Add(result =>
        {
            var text = result.GetValueOrDefault<string?>();
            if (text is null || !names.Contains(text, StringComparer.Ordinal))
            {
                var list = names.Length == 1 ? names[0] : string.Join(", ", names[..^1]) + " or " + names[^1];
                result.AddError($"Invalid value '{text}' for {name}: {command} writes {list}.");
            }
        });
        return option;
    }
}
