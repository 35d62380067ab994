using DurableStreams.Core;

namespace DurableStreams.Testing;

/// <summary>The configurable store limits the contract suite varies; every store has options of these names.</summary>
public sealed record StoreLimits(int MaxForkDepth, int MaxMessagesPerAppend)
{
    /// <summary>The stores' defaults.</summary>
    public static StoreLimits Default { get; } = new(ForkRules.DefaultMaxForkDepth, AppendRules.DefaultMaxMessagesPerAppend);
}
