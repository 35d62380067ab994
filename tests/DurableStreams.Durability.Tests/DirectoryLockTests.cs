using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>One store at a time owns a data directory; a second open fails at once and leaves the first undisturbed.</summary>
public sealed class DirectoryLockTests : FileStoreTestBase
{
    [Fact]
    public async Task A_second_open_of_the_same_directory_fails_until_the_first_store_is_disposed()
    {
        await CreatedAsync("s", body: "before");

        var error = Assert.Throws<InvalidOperationException>(() => OpenStore());
        Assert.Contains(Path.GetFullPath(DataDirectory), error.Message, StringComparison.Ordinal);

        // The failed open neither damaged nor unlocked the running store.
        await AppendedAsync("s", "+after");
        Assert.Equal("before+after", await ReadTextAsync("s"));
        Assert.Throws<InvalidOperationException>(() => OpenStore());

        await StopAsync();

        await using (var second = OpenStore())
        {
            Assert.Equal(1, second.Count);
            Assert.Throws<InvalidOperationException>(() => OpenStore());
        }

        Start();
        Assert.Equal("before+after", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task A_relative_path_to_a_locked_directory_is_refused_too()
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, DataDirectory);
        var error = Assert.Throws<InvalidOperationException>(() => FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = relative, TimeProvider = Time }));
        Assert.Contains(Path.GetFullPath(DataDirectory), error.Message, StringComparison.Ordinal);
        await CreatedAsync("s");
        await AppendedAsync("s", "still works");
    }
}
