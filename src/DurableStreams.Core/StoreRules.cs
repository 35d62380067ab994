using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>The create rules every store shares: framing of the initial body.</summary>
public static class CreateRules
{
    /// <summary>
    /// The initial body's stored messages (JSON: one per flattened value, <c>[]</c> allowed; otherwise the body as one
    /// message, borrowed from the caller), or why it is refused.
    /// </summary>
    public static CreateStatus FrameBody(string contentType, ReadOnlyMemory<byte> body, int maxJsonDepth, out List<ReadOnlyMemory<byte>> messages) =>
        FrameBody(contentType, body, maxJsonDepth, int.MaxValue, out messages);

    /// <summary>
    /// <see cref="FrameBody(string, ReadOnlyMemory{byte}, int, out List{ReadOnlyMemory{byte}})"/>, refusing a JSON body
    /// of more than <paramref name="maxMessages"/> messages with <see cref="CreateStatus.TooManyMessages"/>.
    /// </summary>
    public static CreateStatus FrameBody(string contentType, ReadOnlyMemory<byte> body, int maxJsonDepth, int maxMessages, out List<ReadOnlyMemory<byte>> messages)
    {
        messages = [];
        if (body.IsEmpty)
        {
            return CreateStatus.Created;
        }
        if (!ContentTypes.IsJson(contentType))
        {
            messages.Add(body);
            return CreateStatus.Created;
        }
        return JsonFraming.TrySplit(body, maxJsonDepth, maxMessages, out messages) switch
        {
            JsonFramingError.None => CreateStatus.Created,
            JsonFramingError.TooManyMessages => CreateStatus.TooManyMessages,
            JsonFramingError.TooDeep => CreateStatus.JsonTooDeep,
            _ => CreateStatus.InvalidJson,
        };
    }
}

/// <summary>The read rules every store shares: where a read starts.</summary>
public static class ReadRules
{
    /// <summary>
    /// Resolves the requested offset against the tail: <c>-1</c> is 0, <c>now</c> is the tail; a position past the
    /// tail, or one that splits a JSON message, is refused.
    /// </summary>
    public static ReadStatus ResolveStart(OffsetQuery offset, long tail, bool isJson, Func<long, bool> isBoundary, out long start)
    {
        ArgumentNullException.ThrowIfNull(isBoundary);
        start = offset.Kind switch
        {
            OffsetKind.Beginning => 0L,
            OffsetKind.Now => tail,
            _ => offset.Offset.Position,
        };
        if (start > tail)
        {
            return ReadStatus.OffsetBeyondTail;
        }
        return isJson && start < tail && !isBoundary(start) ? ReadStatus.OffsetUnaligned : ReadStatus.Ok;
    }
}
