using System.Globalization;
using System.Text;

namespace DurableStreams.Server.Tests.Infrastructure;

/// <summary>One sample line: metric name, labels (unescaped values) and value.</summary>
internal sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>A metric family: its <c># TYPE</c>, <c># HELP</c> and samples (for a histogram the _bucket/_sum/_count lines).</summary>
internal sealed class PrometheusFamily(string name)
{
    public string Name { get; } = name;
    public string Type { get; set; } = "untyped";
    public string? Help { get; set; }
    public List<PrometheusSample> Samples { get; } = [];
}

/// <summary>
/// A strict parser of the Prometheus text exposition format 0.0.4: <c># HELP</c> / <c># TYPE</c> lines, sample lines with
/// label escaping (<c>\\</c>, <c>\"</c>, <c>\n</c> and nothing else), Go float values, optional integer timestamps, one
/// TYPE per family before its samples, a family's samples contiguous, no duplicate series, and histograms with
/// cumulative buckets ending in <c>le="+Inf"</c> equal to <c>_count</c>. Anything else throws <see cref="FormatException"/>
/// naming the line.
/// </summary>
internal static class PrometheusText
{
    private static readonly string[] Types = ["counter", "gauge", "histogram", "summary", "untyped"];

    public static IReadOnlyDictionary<string, PrometheusFamily> Parse(string text)
    {
        var families = new Dictionary<string, PrometheusFamily>(StringComparer.Ordinal);
        var finished = new HashSet<string>(StringComparer.Ordinal);
        var series = new HashSet<string>(StringComparer.Ordinal);
        PrometheusFamily? current = null;
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("The exposition does not end with a line feed.");
        }
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length - 1; i++)
        {
            var line = lines[i];
            var at = $"line {i + 1}: '{line}'";
            if (line.Length == 0 || line.All(c => c is ' ' or '\t'))
            {
                continue;
            }
            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[0] == "#" && parts[1] is "HELP" or "TYPE")
                {
                    var name = parts[2];
                    if (!IsMetricName(name))
                    {
                        throw new FormatException($"Bad metric name in {at}.");
                    }
                    var family = Enter(name);
                    if (parts[1] == "HELP")
                    {
                        if (family.Help is not null)
                        {
                            throw new FormatException($"Second HELP for {name} at {at}.");
                        }
                        family.Help = UnescapeHelp(parts.Length == 4 ? parts[3] : "", at);
                    }
                    else
                    {
                        if (parts.Length != 4 || !Types.Contains(parts[3]))
                        {
                            throw new FormatException($"Bad TYPE at {at}.");
                        }
                        if (family.Samples.Count > 0 || family.Type != "untyped")
                        {
                            throw new FormatException($"TYPE for {name} after its samples or a second time at {at}.");
                        }
                        family.Type = parts[3];
                    }
                }
                continue;
            }
            var sample = ParseSample(line, at);
            var familyName = FamilyOf(sample.Name, families);
            var owner = Enter(familyName);
            if (!series.Add(sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value)) + "}"))
            {
                throw new FormatException($"Duplicate series at {at}.");
            }
            owner.Samples.Add(sample);

            PrometheusFamily Enter(string name)
            {
                if (current?.Name == name)
                {
                    return current;
                }
                if (current is not null)
                {
                    finished.Add(current.Name);
                }
                if (finished.Contains(name))
                {
                    throw new FormatException($"The lines of {name} are not contiguous ({at}).");
                }
                current = new PrometheusFamily(name);
                families.Add(name, current);
                return current;
            }
        }
        foreach (var family in families.Values.Where(f => f.Type == "histogram"))
        {
            CheckHistogram(family);
        }
        return families;
    }

    /// <summary>A histogram's or summary's _bucket/_sum/_count lines belong to the family being written.</summary>
    private static string FamilyOf(string sampleName, Dictionary<string, PrometheusFamily> families)
    {
        foreach (var suffix in (string[])["_bucket", "_sum", "_count"])
        {
            if (sampleName.EndsWith(suffix, StringComparison.Ordinal)
                && families.TryGetValue(sampleName[..^suffix.Length], out var family)
                && family.Type is "histogram" or "summary")
            {
                return family.Name;
            }
        }
        return sampleName;
    }

    private static void CheckHistogram(PrometheusFamily family)
    {
        foreach (var group in family.Samples.GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value))))
        {
            var buckets = group.Where(s => s.Name == family.Name + "_bucket").ToList();
            var count = group.SingleOrDefault(s => s.Name == family.Name + "_count")
                ?? throw new FormatException($"Histogram {family.Name}{{{group.Key}}} has no _count.");
            _ = group.SingleOrDefault(s => s.Name == family.Name + "_sum")
                ?? throw new FormatException($"Histogram {family.Name}{{{group.Key}}} has no _sum.");
            var previousBound = double.NegativeInfinity;
            var previousCount = 0.0;
            foreach (var bucket in buckets)
            {
                if (!bucket.Labels.TryGetValue("le", out var le))
                {
                    throw new FormatException($"A bucket of {family.Name} has no le label.");
                }
                var bound = ParseFloat(le, $"le of {family.Name}");
                if (bound <= previousBound || bucket.Value < previousCount)
                {
                    throw new FormatException($"The buckets of {family.Name}{{{group.Key}}} are not increasing and cumulative.");
                }
                previousBound = bound;
                previousCount = bucket.Value;
            }
            if (!double.IsPositiveInfinity(previousBound) || previousCount != count.Value)
            {
                throw new FormatException($"Histogram {family.Name}{{{group.Key}}} does not end with le=\"+Inf\" equal to _count.");
            }
        }
    }

    private static PrometheusSample ParseSample(string line, string at)
    {
        var i = 0;
        while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] is '_' or ':'))
        {
            i++;
        }
        var name = line[..i];
        if (!IsMetricName(name))
        {
            throw new FormatException($"Bad metric name at {at}.");
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                if (i < line.Length && line[i] == '}')
                {
                    i++;
                    break;
                }
                var start = i;
                while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] == '_'))
                {
                    i++;
                }
                var labelName = line[start..i];
                if (labelName.Length == 0 || char.IsAsciiDigit(labelName[0]) || i + 1 >= line.Length || line[i] != '=' || line[i + 1] != '"')
                {
                    throw new FormatException($"Bad label at {at}.");
                }
                i += 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw new FormatException($"Unterminated label value at {at}.");
                    }
                    var c = line[i++];
                    if (c == '"')
                    {
                        break;
                    }
                    if (c == '\\')
                    {
                        value.Append(i < line.Length ? line[i++] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new FormatException($"Bad escape in a label value at {at}."),
                        } : throw new FormatException($"Bad escape in a label value at {at}."));
                        continue;
                    }
                    value.Append(c);
                }
                if (!labels.TryAdd(labelName, value.ToString()))
                {
                    throw new FormatException($"Label {labelName} twice at {at}.");
                }
                if (i < line.Length && line[i] == ',')
                {
                    i++;
                }
                else if (i >= line.Length || line[i] != '}')
                {
                    throw new FormatException($"Expected ',' or '}}' at {at}.");
                }
            }
        }
        if (i >= line.Length || line[i] is not (' ' or '\t'))
        {
            throw new FormatException($"Expected a blank before the value at {at}.");
        }
        var rest = line[i..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (rest.Length is < 1 or > 2)
        {
            throw new FormatException($"Expected a value and an optional timestamp at {at}.");
        }
        var sampleValue = ParseFloat(rest[0], at);
        if (rest.Length == 2 && !long.TryParse(rest[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
        {
            throw new FormatException($"Bad timestamp at {at}.");
        }
        return new PrometheusSample(name, labels, sampleValue);
    }

    private static double ParseFloat(string text, string at) => text switch
    {
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) => value,
        _ => throw new FormatException($"Bad value '{text}' at {at}."),
    };

    private static string UnescapeHelp(string text, string at)
    {
        var result = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\')
            {
                result.Append(text[i]);
                continue;
            }
            result.Append(++i < text.Length ? text[i] switch
            {
                '\\' => '\\',
                'n' => '\n',
                _ => throw new FormatException($"Bad escape in HELP at {at}."),
            } : throw new FormatException($"Bad escape in HELP at {at}."));
        }
        return result.ToString();
    }

    private static bool IsMetricName(string name) =>
        name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':');
}
