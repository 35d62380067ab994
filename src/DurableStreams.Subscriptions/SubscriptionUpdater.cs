using DurableStreams.Core.Subscriptions;

namespace DurableStreams.Subscriptions;

/// <summary>
/// Conditional writes: reads the subscription, lets a change decide on that copy, and writes it back only if nobody
/// changed it since (a conditional write on its version); a lost race re-reads and decides again. So two nodes (or two
/// requests) never both win a claim, a wake or an ack.
/// </summary>
internal sealed class SubscriptionUpdater(ISubscriptionRepository repository)
{
    /// <summary>Runs <paramref name="change"/> until its write wins; <paramref name="missing"/> answers an absent id.</summary>
    public async Task<T> UpdateAsync<T>(string id, Func<SubscriptionState, Task<Decision<T>>> change, T missing, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await repository.GetAsync(id, cancellationToken) is not { } current)
            {
                return missing;
            }
            var decision = await change(current.State);
            if (!decision.Write || await repository.TryUpdateAsync(current.State, current.Version, cancellationToken))
            {
                return decision.Result;
            }
        }
    }

    /// <inheritdoc cref="UpdateAsync{T}(string, Func{SubscriptionState, Task{Decision{T}}}, T, CancellationToken)"/>
    public Task<T> UpdateAsync<T>(string id, Func<SubscriptionState, Decision<T>> change, T missing, CancellationToken cancellationToken) =>
        UpdateAsync(id, subscription => Task.FromResult(change(subscription)), missing, cancellationToken);

    /// <summary>Write the changed copy, then answer <paramref name="result"/>.</summary>
    public static Decision<T> Save<T>(T result) => new(result, Write: true);

    /// <summary>Write nothing; answer <paramref name="result"/>.</summary>
    public static Decision<T> Keep<T>(T result) => new(result, Write: false);
}

/// <summary>A change's outcome: the caller's result and whether the changed copy is written.</summary>
internal readonly record struct Decision<T>(T Result, bool Write);
