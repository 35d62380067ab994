using DurableStreams.Core.Subscriptions;

namespace DurableStreams.Subscriptions;

/// <summary>Error codes of the subscription APIs; the server maps them to HTTP.</summary>
internal enum SubscriptionErrorCode
{
    InvalidRequest,
    SubscriptionNotFound,
    SubscriptionAlreadyExists,
    WebhookUrlRejected,
    TokenInvalid,
    Fenced,
    AlreadyClaimed,
    NoPendingWork,
    InvalidOffset,
}

/// <summary>A refused subscription request (a value, not an exception).</summary>
internal sealed record SubscriptionError(SubscriptionErrorCode Code, string Message, string? CurrentHolder = null, long? Generation = null);

/// <summary>A subscription operation's outcome: a value or an error.</summary>
internal readonly record struct SubscriptionResult<T>(T? Value, SubscriptionError? Error)
{
    public static implicit operator SubscriptionResult<T>(SubscriptionError error) => new(default, error);

    public static implicit operator SubscriptionResult<T>(T value) => new(value, null);
}

/// <summary>One linked stream as a wake, a claim or a GET reports it.</summary>
internal sealed record StreamView(string Path, string LinkType, string AckedOffset, string TailOffset, bool HasPending);

/// <summary>A subscription as GET/PUT report it: a copy read from the repository.</summary>
internal sealed record SubscriptionView(SubscriptionState State, string ActiveKid, bool Created);

/// <summary>A successful claim (§7.2).</summary>
internal sealed record ClaimView(string WakeId, long Generation, string Token, IReadOnlyList<StreamView> Streams, int LeaseTtlMs, DateTimeOffset LeaseExpiresAt);

/// <summary>An ack, callback or release request body (§7.1–7.2).</summary>
internal sealed record AckRequest(string? WakeId, long? Generation, IReadOnlyList<(string Stream, string Offset)> Acks, bool Done);

/// <summary>What a PUT asks for, parsed and normalised.</summary>
internal sealed record SubscriptionRequest(SubscriptionConfig Config);
