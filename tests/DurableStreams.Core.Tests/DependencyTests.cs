using System.Xml.Linq;
using DurableStreams.Core.Live;
using Xunit;

namespace DurableStreams.Core.Tests;

/// <summary>
/// The boundaries of docs/architecture.md, checked twice: in the project files (what may be referenced at all) and in
/// the built assemblies' metadata (what is used). A new reference across a boundary fails here, not in a review.
/// </summary>
public sealed class DependencyTests
{
    // Core holds the contract, the rules, the memory store and live waits: no web stack, no native store, no database.
    private static readonly string[] s_forbiddenInCore =
        ["Microsoft.AspNetCore", "LightningDB", "Npgsql", "DurableStreams.Server", "DurableStreams.Storage", "DurableStreams.Client"];

    [Fact]
    public void Core_references_only_the_protocol_assembly_and_logging_abstractions()
    {
        var project = ProjectFile.Load("src/DurableStreams.Core/DurableStreams.Core.csproj");

        Assert.Equal(["DurableStreams.Protocol"], project.ProjectReferences);
        Assert.Empty(project.FrameworkReferences);
        Assert.Subset(new HashSet<string> { "Microsoft.Extensions.Logging.Abstractions" }, project.PackageReferences.ToHashSet());
    }

    [Fact]
    public void The_built_core_assembly_uses_nothing_from_the_web_stack_the_native_store_or_a_database()
    {
        var referenced = typeof(StreamSignal).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();

        Assert.Contains("DurableStreams.Protocol", referenced);
        Assert.DoesNotContain(referenced, name => s_forbiddenInCore.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)));
    }

    [Fact]
    public void The_client_references_only_the_protocol_assembly_and_logging_abstractions()
    {
        var project = ProjectFile.Load("src/DurableStreams.Client/DurableStreams.Client.csproj");

        Assert.Equal(["DurableStreams.Protocol"], project.ProjectReferences);
        Assert.Empty(project.FrameworkReferences);
        Assert.Subset(new HashSet<string> { "Microsoft.Extensions.Logging.Abstractions" }, project.PackageReferences.ToHashSet());
    }

    [Fact]
    public void The_protocol_assembly_references_nothing()
    {
        var project = ProjectFile.Load("src/DurableStreams.Protocol/DurableStreams.Protocol.csproj");

        Assert.Empty(project.ProjectReferences);
        Assert.Empty(project.PackageReferences);
        Assert.Empty(project.FrameworkReferences);
    }

    [Theory]
    [InlineData("LightningDB", "DurableStreams.Storage.Files")]
    [InlineData("Npgsql", "DurableStreams.Storage.Postgres")]
    public void A_storage_package_is_referenced_by_its_store_assembly_only(string package, string owner)
    {
        var users = ProjectFile.AllUnderSrc().Where(p => p.PackageReferences.Contains(package)).Select(p => p.Name).ToArray();

        Assert.Equal([owner], users);
    }

    [Fact]
    public void The_checks_above_read_real_project_files()
    {
        // Guards the guard: an empty source tree or a renamed folder would make every check above pass vacuously.
        var names = ProjectFile.AllUnderSrc().Select(p => p.Name).ToHashSet();

        Assert.Superset(
            new HashSet<string> { "DurableStreams.Protocol", "DurableStreams.Core", "DurableStreams.Client", "DurableStreams.Storage.Files", "DurableStreams.Storage.Postgres", "DurableStreams.Server" },
            names);
    }

    private sealed record ProjectFile(string Name, string[] ProjectReferences, string[] PackageReferences, string[] FrameworkReferences)
    {
        public static ProjectFile Load(string relativePath) => Parse(Path.Combine(RepositoryRoot(), relativePath));

        public static IEnumerable<ProjectFile> AllUnderSrc() =>
            Directory.EnumerateFiles(Path.Combine(RepositoryRoot(), "src"), "*.csproj", SearchOption.AllDirectories).Select(Parse);

        private static ProjectFile Parse(string path)
        {
            var document = XDocument.Load(path);
            string[] Includes(string item) =>
                [.. document.Descendants(item).Select(e => (string?)e.Attribute("Include")).OfType<string>()];
            return new ProjectFile(
                Path.GetFileNameWithoutExtension(path),
                [.. Includes("ProjectReference").Select(p => Path.GetFileNameWithoutExtension(p.Replace('\\', '/'))).OfType<string>().Order(StringComparer.Ordinal)],
                Includes("PackageReference"),
                Includes("FrameworkReference"));
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

            throw new InvalidOperationException($"No DurableStreams.sln above {AppContext.BaseDirectory}.");
        }
    }
}
