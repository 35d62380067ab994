using System.Reflection;
using System.Text.RegularExpressions;
using DurableStreams.Protocol.Diagnostics;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed partial class LogEventsTests
{
    [Fact]
    public void Every_event_id_in_the_table_is_unique()
    {
        var ids = typeof(LogEvents).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral)
            .Select(f => (f.Name, Id: (int)f.GetRawConstantValue()!))
            .ToArray();

        Assert.True(ids.Length >= 30, $"only {ids.Length} ids: the table is the one place every log event id is defined");
        var repeated = ids.GroupBy(i => i.Id).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(i => i.Name))}");
        Assert.Empty(repeated);
    }

    [Fact]
    public void Every_log_message_in_src_takes_its_event_id_from_the_table()
    {
        var root = RepositoryRoot();
        var messages = 0;
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories))
        {
            foreach (Match match in LoggerMessageAttribute().Matches(File.ReadAllText(file)))
            {
                messages++;
                if (!match.Value.Contains("EventId = LogEvents.", StringComparison.Ordinal))
                {
                    offenders.Add($"{Path.GetRelativePath(root, file)}: {match.Value}");
                }
            }
        }

        Assert.True(messages >= 30, $"found only {messages} [LoggerMessage] attributes under src/");
        Assert.Empty(offenders);
    }

    [GeneratedRegex(@"\[LoggerMessage\([^\]]*", RegexOptions.Singleline)]
    private static partial Regex LoggerMessageAttribute();

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "DurableStreams.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"No DurableStreams.sln above {AppContext.BaseDirectory}.");
    }
}
