using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using DurableStreams.Core.Retention;

namespace DurableStreams.Cli;

/// <summary>
/// Merges the three sources of <c>serve</c> settings. Precedence: command line, then <c>DS_*</c> environment variables
/// (the option name upper-cased with '-' as '_': <c>--data-dir</c> is <c>DS_DATA_DIR</c>), then the JSON file named by
/// <c>--config</c> (or <c>DS_CONFIG</c>; keys are option names in camelCase or kebab-case: <c>dataDir</c> or
/// <c>data-dir</c>), then the defaults. Values from the environment and the file are appended to the command line as
/// if typed and parsed again, so every source goes through the same parsers and validators; an error names the option
/// and the variable or file that set it.
/// </summary>
internal static class ServeConfiguration
{
    public const string Prefix = "DS_";
    public const string ReadTokensVariable = "DS_READ_TOKENS";
    public const string WriteTokensVariable = "DS_WRITE_TOKENS";
    public const string AdminTokensVariable = "DS_ADMIN_TOKENS";
    public const string RetentionVariable = "DS_RETENTION";

    /// <summary>The merged parse result (null when there are errors), the bearer tokens, and any errors.</summary>
    public sealed record Result(ParseResult? ParseResult, IReadOnlyList<string> ReadTokens, IReadOnlyList<string> WriteTokens, IReadOnlyList<string> Errors)
    {
        /// <summary>
        /// The retention rules of the config file's <c>retention</c> array (or <c>DS_RETENTION</c>, the same array as
        /// JSON), in order: the first whose <c>streams</c> pattern matches a stream name decides its policy.
        /// </summary>
        public IReadOnlyList<RetentionRule> RetentionRules { get; init; } = [];

        /// <summary>Bearer tokens with the admin scope (<c>DS_ADMIN_TOKENS</c> or the config file's <c>adminTokens</c>).</summary>
        public IReadOnlyList<string> AdminTokens { get; init; } = [];
    }

    /// <summary>The environment variable for an option: <c>--data-dir</c> → <c>DS_DATA_DIR</c>.</summary>
    public static string VariableName(Option option) => Prefix + option.Name.TrimStart('-').Replace('-', '_').ToUpperInvariant();

    private static string Normalize(string key) => key.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToUpperInvariant();

    public static Result Apply(ServeCommand serve, ParseResult parseResult, Func<string, string?> environment)
    {
        var errors = new List<string>();
        var configPath = parseResult.GetValue(serve.ConfigOption) ?? NullIfEmpty(environment(Prefix + "CONFIG"));
        Dictionary<string, (string Key, JsonElement Value)>? file = null;
        JsonDocument? document = null;
        try
        {
            if (configPath is not null)
            {
                document = Load(configPath, errors);
                if (document is not null)
                {
                    file = new Dictionary<string, (string, JsonElement)>(StringComparer.Ordinal);
                    foreach (var property in document.RootElement.EnumerateObject())
                    {
                        file[Normalize(property.Name)] = (property.Name, property.Value);
                    }
                }
            }

            var options = serve.ConfigurableOptions.ToList();
            var known = options.Select(o => Normalize(o.Name)).Concat(["READTOKENS", "WRITETOKENS", "ADMINTOKENS", "RETENTION"]).ToHashSet(StringComparer.Ordinal);
            foreach (var (normalized, (key, _)) in file ?? [])
            {
                if (!known.Contains(normalized))
                {
                    errors.Add($"Unknown setting '{key}' in the config file '{configPath}'.");
                }
            }

            var extra = new List<string>();
            var sources = new Dictionary<Option, string>();
            var memory = parseResult.GetValue(serve.MemoryOption);
            var memoryGiven = parseResult.GetResult(serve.MemoryOption) is { Implicit: false };
            // Decide --memory first: it decides whether lower sources may still set the file store's options.
            foreach (var option in options.OrderBy(o => o == serve.MemoryOption ? 0 : 1))
            {
                if (parseResult.GetResult(option) is { Implicit: false })
                {
                    continue;
                }
                if (memory && serve.FileStoreOptions.Contains(option))
                {
                    continue;
                }
                var variable = VariableName(option);
                string source;
                List<string> values;
                if (NullIfEmpty(environment(variable)) is { } text)
                {
                    source = $"environment variable {variable}";
                    values = option.Arity.MaximumNumberOfValues > 1 ? [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)] : [text];
                }
                else if (file is not null && file.TryGetValue(Normalize(option.Name), out var entry))
                {
                    source = $"'{entry.Key}' in the config file '{configPath}'";
                    if (!TryReadJson(entry.Value, option.Arity.MaximumNumberOfValues > 1, out values))
                    {
                        errors.Add($"Invalid value for {option.Name} ({source}): expected a string, number or boolean{(option.Arity.MaximumNumberOfValues > 1 ? " or an array of them" : "")}.");
                        continue;
                    }
                }
                else
                {
                    continue;
                }

                if (option.ValueType == typeof(bool))
                {
                    if (!TryParseFlag(values.FirstOrDefault(), out var on))
                    {
                        errors.Add($"Invalid value '{values.FirstOrDefault()}' for {option.Name} ({source}): expected true or false.");
                        continue;
                    }
                    if (on)
                    {
                        extra.Add(option.Name);
                        sources[option] = source;
                        if (option == serve.MemoryOption && !memoryGiven)
                        {
                            memory = true;
                        }
                    }
                    continue;
                }
                foreach (var value in values)
                {
                    extra.Add(option.Name);
                    extra.Add(value);
                }
                sources[option] = source;
            }

            var readTokens = Tokens(environment(ReadTokensVariable), file, "READTOKENS", configPath, errors);
            var writeTokens = Tokens(environment(WriteTokensVariable), file, "WRITETOKENS", configPath, errors);
            var adminTokens = Tokens(environment(AdminTokensVariable), file, "ADMINTOKENS", configPath, errors);
            var retention = RetentionConfiguration.Read(
                environment(RetentionVariable), file is not null && file.TryGetValue("RETENTION", out var rules) ? rules.Value : null, configPath, errors);
            if (errors.Count > 0)
            {
                return new Result(null, [], [], errors);
            }
            if (extra.Count == 0)
            {
                return new Result(parseResult, readTokens, writeTokens, []) { RetentionRules = retention, AdminTokens = adminTokens };
            }

            var merged = parseResult.RootCommandResult.Command.Parse([.. parseResult.Tokens.Select(t => t.Value), .. extra]);
            foreach (var error in merged.Errors)
            {
                var option = (error.SymbolResult as OptionResult)?.Option ?? ((error.SymbolResult as ArgumentResult)?.Parent as OptionResult)?.Option;
                errors.Add(option is not null && sources.TryGetValue(option, out var source) ? $"{error.Message} (set by {source})" : error.Message);
            }
            return errors.Count > 0 ? new Result(null, [], [], errors) : new Result(merged, readTokens, writeTokens, []) { RetentionRules = retention, AdminTokens = adminTokens };
        }
        finally
        {
            document?.Dispose();
        }
    }

    private static JsonDocument? Load(string path, List<string> errors)
    {
        try
        {
            var document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                errors.Add($"The config file '{path}' must hold one JSON object.");
                return null;
            }
            return document;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add($"Could not read the config file '{path}' (--config): {ex.Message}");
        }
        catch (JsonException ex)
        {
            errors.Add($"The config file '{path}' (--config) is not valid JSON: {ex.Message}");
        }
        return null;
    }

    private static bool TryReadJson(JsonElement value, bool many, out List<string> values)
    {
        values = [];
        if (value.ValueKind == JsonValueKind.Array && many)
        {
            foreach (var item in value.EnumerateArray())
            {
                if (Scalar(item) is not { } text)
                {
                    return false;
                }
                values.Add(text);
            }
            return true;
        }
        if (Scalar(value) is { } single)
        {
            values.Add(single);
            return true;
        }
        return false;
    }

    private static string? Scalar(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => null,
    };

    private static bool TryParseFlag(string? text, out bool value)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "true" or "1" or "yes" or "on":
                value = true;
                return true;
            case "false" or "0" or "no" or "off":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    private static List<string> Tokens(string? variable, Dictionary<string, (string Key, JsonElement Value)>? file, string key, string? configPath, List<string> errors)
    {
        if (NullIfEmpty(variable) is { } text)
        {
            return [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
        }
        if (file is not null && file.TryGetValue(key, out var entry))
        {
            if (!TryReadJson(entry.Value, many: true, out var values) || values.Any(string.IsNullOrWhiteSpace))
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"Invalid value for '{entry.Key}' in the config file '{configPath}': expected an array of non-empty strings."));
                return [];
            }
            return values;
        }
        return [];
    }

    private static string? NullIfEmpty(string? text) => string.IsNullOrWhiteSpace(text) ? null : text;
}
