namespace DurableStreams.Testing;

/// <summary>
/// A fresh directory under the system temp folder for one test, deleted (with its contents) on dispose, so tests that
/// touch files never share state or leave litter behind.
/// </summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Directory.CreateTempSubdirectory("durable-streams-test-").FullName;

    /// <summary>Absolute path of the directory.</summary>
    public string Path { get; }

    /// <summary>A path inside the directory.</summary>
    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
