using System.Diagnostics.CodeAnalysis;

namespace DurableStreams.Core;

/// <summary>
/// The store's backing service (for example the PostgreSQL server) cannot be reached or did not answer in time. Nothing
/// was changed, or the change was not acknowledged; the request may be retried. The server answers 503 with Retry-After.
/// </summary>
public sealed class StoreUnavailableException : IOException
{
    public StoreUnavailableException(string message, Exception? innerException = null)
        : base(message, innerException)
    {
    }

    /// <summary>Throws a <see cref="StoreUnavailableException"/>.</summary>
    [DoesNotReturn]
    public static void Throw(string message, Exception? innerException = null) => throw new StoreUnavailableException(message, innerException);
}
