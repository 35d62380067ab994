using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Core.Tests;

public sealed class TempDirectoryTests
{
    [Fact]
    public void Each_instance_is_a_new_empty_directory_removed_with_its_contents_on_dispose()
    {
        string path;
        using (var first = new TempDirectory())
        using (var second = new TempDirectory())
        {
            path = first.Path;
            Assert.True(Directory.Exists(path));
            Assert.NotEqual(first.Path, second.Path);
            Assert.Empty(Directory.EnumerateFileSystemEntries(path));
            Directory.CreateDirectory(first.Combine("nested"));
            File.WriteAllText(first.Combine("nested", "file.txt"), "x");
        }

        Assert.False(Directory.Exists(path));
    }

    [Fact]
    public void Dispose_tolerates_a_directory_already_removed()
    {
        var directory = new TempDirectory();
        Directory.Delete(directory.Path);

        directory.Dispose();

        Assert.False(Directory.Exists(directory.Path));
    }
}
