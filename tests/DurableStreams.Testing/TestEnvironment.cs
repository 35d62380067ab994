using Xunit;

namespace DurableStreams.Testing;

/// <summary>
/// Where a test needs something from the machine (PostgreSQL binaries, root, a browser): on a developer machine it
/// skips with the reason; under <c>CI=true</c> a green run must mean everything ran, so it fails instead.
/// </summary>
public static class TestEnvironment
{
    /// <summary>True when the environment variable <c>CI</c> is <c>true</c> (any case), as CI sets it.</summary>
    public static bool IsCI => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Skips the calling test with <paramref name="reason"/>, or fails it under <c>CI=true</c>.</summary>
    public static void SkipOrFailUnderCI(string reason)
    {
        if (IsCI)
        {
            Assert.Fail("CI=true requires it: " + reason);
        }
        Assert.Skip(reason);
    }
}
