using DurableStreams.Core;
using DurableStreams.Protocol;

namespace DurableStreams.Testing;

/// <summary>
/// An <see cref="IStreamStore"/> that passes every call to <see cref="Inner"/>; a test wrapper derives from it and
/// overrides only what it watches or changes. It implements none of the optional store interfaces
/// (<see cref="IDirectReadStore"/>, <see cref="IStreamCatalog"/>, ...): a wrapper that should keep the server on the
/// production paths declares and forwards them itself (StoreWrapperTests checks the shared wrappers do).
/// </summary>
/// <param name="inner">The store every call goes to.</param>
/// <param name="ownsInner">Whether disposing this disposes <paramref name="inner"/> (false when the test disposes it itself).</param>
public abstract class ForwardingStore(IStreamStore inner, bool ownsInner = true) : IStreamStore
{
    /// <summary>The store every call goes to.</summary>
    public IStreamStore Inner { get; } = inner;

    public virtual IStreamChangeFeed Changes => Inner.Changes;

    public virtual ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default) =>
        Inner.CreateAsync(name, request, cancellationToken);

    public virtual ValueTask<AppendStreamResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default) =>
        Inner.AppendAsync(name, request, cancellationToken);

    public virtual ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default) =>
        Inner.ReadAsync(name, request, cancellationToken);

    public virtual ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default) =>
        Inner.GetMetadataAsync(name, cancellationToken);

    public virtual ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default) =>
        Inner.DeleteAsync(name, cancellationToken);

    public virtual ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Inner.WaitAsync(name, offset, timeout, cancellationToken);

    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ownsInner ? Inner.DisposeAsync() : ValueTask.CompletedTask;
    }
}
