using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>The README's exit-code table of the client commands matches <see cref="ExitCodes"/>, so they cannot drift.</summary>
public sealed partial class ReadmeExitCodeTests
{
    [Fact]
    public void The_README_exit_code_table_lists_exactly_the_ExitCodes_constants()
    {
        var table = ExitCodeTable();
        var constants = typeof(ExitCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(field => field.IsLiteral && field.FieldType == typeof(int))
            .ToDictionary(field => field.Name, field => (int)field.GetRawConstantValue()!);

        Assert.Equal(constants.Values.Order(), table.Keys.Order());
        Assert.Contains("Success", table[constants[nameof(ExitCodes.Success)]], StringComparison.Ordinal);
        Assert.Contains("Invalid command line", table[constants[nameof(ExitCodes.Usage)]], StringComparison.Ordinal);
        Assert.Contains("not found (404)", table[constants[nameof(ExitCodes.NotFound)]], StringComparison.Ordinal);
        Assert.Contains("`ls`", table[constants[nameof(ExitCodes.NotFound)]], StringComparison.Ordinal);
        Assert.Contains("Conflict (409)", table[constants[nameof(ExitCodes.Conflict)]], StringComparison.Ordinal);
        Assert.Contains("unreachable", table[constants[nameof(ExitCodes.Unreachable)]], StringComparison.Ordinal);
        Assert.Contains("Any other error", table[constants[nameof(ExitCodes.Error)]], StringComparison.Ordinal);
    }

    [Fact]
    public void The_README_ls_row_names_the_exit_code_ls_returns_without_a_registry()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        var lsRow = Assert.Single(readme.Split('\n'), line => line.StartsWith("| `ls ", StringComparison.Ordinal));

        Assert.Contains($"exit `{ExitCodes.NotFound.ToString(CultureInfo.InvariantCulture)}`", lsRow, StringComparison.Ordinal);
    }

    /// <summary>The rows of the table after "Exit codes of the client commands", code → meaning.</summary>
    private static Dictionary<int, string> ExitCodeTable()
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "README.md"));
        var start = Array.FindIndex(lines, line => line.StartsWith("Exit codes of the client commands", StringComparison.Ordinal));
        Assert.True(start >= 0, "README.md has no 'Exit codes of the client commands' table.");
        var rows = new Dictionary<int, string>();
        foreach (var line in lines.Skip(start + 1).SkipWhile(string.IsNullOrWhiteSpace).TakeWhile(line => line.StartsWith('|')))
        {
            if (Row().Match(line) is { Success: true } row)
            {
                rows.Add(int.Parse(row.Groups["code"].Value, CultureInfo.InvariantCulture), row.Groups["meaning"].Value);
            }
        }

        return rows;
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "DurableStreams.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("DurableStreams.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^\| `(?<code>\d+)` \| (?<meaning>.*) \|$")]
    private static partial Regex Row();
}
