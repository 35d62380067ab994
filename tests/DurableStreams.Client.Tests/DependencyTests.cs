using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>The built client uses only the protocol assembly of ours, so an application embedding it carries no store,
/// no web stack and no native code (the project-file side of this rule is checked in Core.Tests' DependencyTests).</summary>
public sealed class DependencyTests
{
    [Fact]
    public void The_built_client_uses_no_assembly_of_ours_but_the_protocol_and_no_third_party_package()
    {
        var referenced = typeof(DurableStreamClient).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToArray();

        Assert.Contains("DurableStreams.Protocol", referenced);
        var foreign = referenced.Where(name =>
            name != "DurableStreams.Protocol"
            && !name.StartsWith("System.", StringComparison.Ordinal)
            && name is not ("System" or "netstandard" or "mscorlib")
            && !name.StartsWith("Microsoft.Extensions.Logging.Abstractions", StringComparison.Ordinal)
            && !name.StartsWith("Microsoft.Win32.", StringComparison.Ordinal));
        Assert.Empty(foreign);
    }
}
