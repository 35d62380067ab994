using DurableStreams.Core;
using DurableStreams.Core.Retention;

namespace DurableStreams.Testing;

/// <summary>
/// The configurable store limits the contract suite varies; every store has options of these names (and passes
/// <see cref="Retention"/>, when set, as its options' <c>Retention</c>).
/// </summary>
public sealed record StoreLimits(int MaxForkDepth, int MaxMessagesPerAppend, RetentionPolicies? Retention = null)
{
    /// <summary>The stores' defaults.</summary>
    public static StoreLimits Default { get; } = new(ForkRules.DefaultMaxForkDepth, AppendRules.DefaultMaxMessagesPerAppend);
}
