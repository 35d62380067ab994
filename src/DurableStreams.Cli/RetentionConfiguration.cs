using System.Globalization;
using System.Text.Json;
using DurableStreams.Core.Retention;

namespace DurableStreams.Cli;

/// <summary>
/// Reads the <c>retention</c> rules of <c>serve</c>'s config file (or <c>DS_RETENTION</c>, the same array as JSON):
/// <c>[{"streams": "logs/**", "maxAge": "7d", "maxBytes": "10GiB"}]</c>. Each rule needs a <c>streams</c> pattern;
/// <c>maxAge</c> (a duration) and <c>maxBytes</c> (a size or a number of bytes) are optional, and a rule with neither
/// keeps everything for its streams (useful to exempt them from the server-wide default). <c>"compaction": "state"</c>
/// turns on State-Protocol compaction for the rule's streams, with optional <c>compactionMinBytes</c> (a size) and
/// <c>compactionRatio</c> (a number, at least 1); an unknown compaction kind, a compaction threshold without
/// <c>compaction</c>, or <c>compaction</c> with <c>maxAge</c>/<c>maxBytes</c> in one rule, is an error. Keys may be camelCase or kebab-case; anything else is an error naming the rule.
/// </summary>
internal static class RetentionConfiguration
{
    public const string Example = "{\"streams\": \"logs/**\", \"maxAge\": \"7d\", \"maxBytes\": \"10GiB\"}";

    /// <summary>The rules from <paramref name="variable"/> (wins) or the file's <paramref name="fileValue"/>; errors go to <paramref name="errors"/>.</summary>
    public static IReadOnlyList<RetentionRule> Read(string? variable, JsonElement? fileValue, string? configPath, List<string> errors)
    {
        if (!string.IsNullOrWhiteSpace(variable))
        {
            const string source = "in the environment variable " + ServeConfiguration.RetentionVariable;
            try
            {
                using var document = JsonDocument.Parse(variable, new JsonDocumentOptions { AllowTrailingCommas = true });
                return Read(document.RootElement, source, errors);
            }
            catch (JsonException ex)
            {
                errors.Add($"The retention rules {source} are not valid JSON: {ex.Message}");
                return [];
            }
        }
        return fileValue is { } value ? Read(value, $"in the config file '{configPath}'", errors) : [];
    }

    private static List<RetentionRule> Read(JsonElement value, string source, List<string> errors)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            errors.Add($"Invalid value for 'retention' {source}: expected an array of rules like {Example}.");
            return [];
        }
        var rules = new List<RetentionRule>();
        var number = 0;
        foreach (var entry in value.EnumerateArray())
        {
            number++;
            if (ReadRule(entry, number, source, errors) is { } rule)
            {
                rules.Add(rule);
            }
        }
        return rules;
    }

    private static RetentionRule? ReadRule(JsonElement entry, int number, string source, List<string> errors)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"Retention rule {number} {source} is not a JSON object: expected a rule like {Example}."));
            return null;
        }
        string? streams = null;
        TimeSpan? maxAge = null;
        long? maxBytes = null;
        string? compaction = null;
        long? compactionMinBytes = null;
        double? compactionRatio = null;
        var problems = new List<string>();
        var hasStreams = false;
        foreach (var property in entry.EnumerateObject())
        {
            switch (Normalize(property.Name))
            {
                case "STREAMS":
                    hasStreams = true;
                    streams = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()?.Trim().TrimStart('/') : null;
                    if (string.IsNullOrEmpty(streams))
                    {
                        problems.Add($"'{property.Name}' must be a non-empty stream-name pattern such as \"logs/**\"");
                    }
                    break;
                case "MAXAGE":
                    var age = Scalar(property.Value);
                    if (DurationParser.TryParse(age, out var duration) && duration > TimeSpan.Zero)
                    {
                        maxAge = duration;
                    }
                    else
                    {
                        problems.Add($"invalid {property.Name} '{age ?? property.Value.GetRawText()}': expected {DurationParser.ExpectedFormat}, greater than zero");
                    }
                    break;
                case "MAXBYTES":
                    var size = Scalar(property.Value);
                    if (SizeParser.TryParse(size, out var bytes) && bytes > 0)
                    {
                        maxBytes = bytes;
                    }
                    else
                    {
                        problems.Add($"invalid {property.Name} '{size ?? property.Value.GetRawText()}': expected {SizeParser.ExpectedFormat}, greater than zero");
                    }
                    break;
                case "COMPACTION":
                    compaction = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText();
                    if (!string.Equals(compaction, "state", StringComparison.OrdinalIgnoreCase))
                    {
                        problems.Add($"unknown {property.Name} '{compaction}': the only compaction is \"state\" (State-Protocol compaction)");
                    }
                    break;
                case "COMPACTIONMINBYTES":
                    var minimum = Scalar(property.Value);
                    if (SizeParser.TryParse(minimum, out var minimumBytes) && minimumBytes > 0)
                    {
                        compactionMinBytes = minimumBytes;
                    }
                    else
                    {
                        problems.Add($"invalid {property.Name} '{minimum ?? property.Value.GetRawText()}': expected {SizeParser.ExpectedFormat}, greater than zero");
                    }
                    break;
                case "COMPACTIONRATIO":
                    if (property.Value.ValueKind == JsonValueKind.Number && property.Value.TryGetDouble(out var ratio) && ratio >= 1 && double.IsFinite(ratio))
                    {
                        compactionRatio = ratio;
                    }
                    else
                    {
                        problems.Add($"invalid {property.Name} '{property.Value.GetRawText()}': expected a number of at least 1");
                    }
                    break;
                default:
                    problems.Add($"unknown key '{property.Name}' (a rule has streams, maxAge, maxBytes, compaction, compactionMinBytes and compactionRatio)");
                    break;
            }
        }
        if (compaction is null && (compactionMinBytes is not null || compactionRatio is not null))
        {
            problems.Add("compactionMinBytes and compactionRatio need \"compaction\": \"state\"");
        }
        if (compaction is not null && (maxAge is not null || maxBytes is not null))
        {
            // Dropping by age or size would cut into a snapshot, and a reader from -1 would then miss part of the state.
            problems.Add("\"compaction\" cannot be combined with maxAge or maxBytes in one rule: retention would drop part of a snapshot (and so of the state); give state streams compaction, other streams retention");
        }
        if (!hasStreams)
        {
            problems.Add("it has no 'streams' pattern (for example \"logs/**\")");
        }
        if (problems.Count > 0)
        {
            var label = string.IsNullOrEmpty(streams) ? string.Empty : $" (streams '{streams}')";
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"Invalid retention rule {number}{label} {source}: {string.Join("; ", problems)}."));
            return null;
        }
        var policy = new RetentionPolicy(maxAge, maxBytes);
        if (compaction is not null)
        {
            var state = Core.Compaction.CompactionPolicy.State;
            policy = policy with
            {
                Compaction = state with
                {
                    MinBytes = compactionMinBytes ?? state.MinBytes,
                    MinRatio = compactionRatio ?? state.MinRatio,
                },
            };
        }
        return new RetentionRule(streams!, policy);
    }

    private static string Normalize(string key) => key.Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToUpperInvariant();

    private static string? Scalar(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        _ => null,
    };
}
