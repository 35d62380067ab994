using System.Text.Json;

namespace DurableStreams.Core.Compaction;

/// <summary>How <see cref="StateSnapshotBuilder"/> read one message.</summary>
public enum StateMessageKind
{
    /// <summary>A change that sets a (type, key): operation <c>insert</c>, <c>update</c> or <c>upsert</c>.</summary>
    Set,
    /// <summary>A change with operation <c>delete</c>.</summary>
    Delete,
    /// <summary>A <c>reset</c> control message: the state before it is cleared.</summary>
    Reset,
    /// <summary>A <c>snapshot-start</c> or <c>snapshot-end</c> control message (an earlier snapshot's boundary).</summary>
    SnapshotBoundary,
    /// <summary>Anything else: kept as it is, and the compaction is partial.</summary>
    Unknown,
}

/// <summary>
/// Builds the State-Protocol snapshot of a prefix of a JSON stream (STATE-PROTOCOL.md, issue 18), fed its stored messages
/// in order. The snapshot is <c>snapshot-start</c>, then, in their original order, the latest change message of every
/// (type, key) still live at the end of the prefix and every message that is not a State-Protocol change or control
/// message, then <c>snapshot-end</c>. So the snapshot is a subsequence of the prefix (each kept message byte for byte as
/// stored) between two markers: deletes, superseded changes, resets and earlier snapshot markers vanish; nothing it does
/// not understand is lost (such messages make the compaction <see cref="Partial"/>).
/// </summary>
/// <remarks>
/// A change message is a JSON object with non-empty string <c>type</c> and <c>key</c> and a <c>headers</c> object whose
/// <c>operation</c> is <c>insert</c>, <c>update</c>, <c>upsert</c> or <c>delete</c>; a control message has a
/// <c>headers.control</c> of <c>snapshot-start</c>, <c>snapshot-end</c> or <c>reset</c> and no <c>type</c>/<c>key</c>.
/// Keys are compared after JSON unescaping, as a client's map would. A <c>reset</c> clears the live set (every change
/// before it), not the unknown messages. Memory: the kept messages (at most <see cref="CompactionPolicy.MaxSnapshotBytes"/>,
/// else <see cref="TooLarge"/>) plus one entry per live key.
/// </remarks>
public sealed class StateSnapshotBuilder
{
    /// <summary>The stored form of the marker that opens a snapshot.</summary>
    public static ReadOnlyMemory<byte> SnapshotStartMessage { get; } = """{"headers":{"control":"snapshot-start"}},"""u8.ToArray();

    /// <summary>The stored form of the marker that closes a snapshot.</summary>
    public static ReadOnlyMemory<byte> SnapshotEndMessage { get; } = """{"headers":{"control":"snapshot-end"}},"""u8.ToArray();

    private readonly Dictionary<(string Type, string Key), Kept> _live = [];
    private readonly List<Kept> _unknown = [];
    private readonly long _maxBytes;
    private long _keptBytes;
    private long _sequence;

    /// <param name="maxBytes">Most bytes the kept messages may hold at any point (<see cref="CompactionPolicy.MaxSnapshotBytes"/>).</param>
    public StateSnapshotBuilder(long maxBytes = CompactionPolicy.DefaultMaxSnapshotBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        _maxBytes = maxBytes;
    }

    /// <summary>Messages fed so far.</summary>
    public long Messages { get; private set; }

    /// <summary>Stored bytes fed so far.</summary>
    public long BytesIn { get; private set; }

    /// <summary>Messages kept because they are not State-Protocol messages.</summary>
    public int UnknownMessages => _unknown.Count;

    /// <summary>True when some message was not understood (kept as it is).</summary>
    public bool Partial => _unknown.Count > 0;

    /// <summary>True once the kept messages exceeded the limit; the builder then ignores further input.</summary>
    public bool TooLarge { get; private set; }

    /// <summary>Live (type, key) entries so far.</summary>
    public int LiveKeys => _live.Count;

    /// <summary>Feeds the next stored message (<c>value,</c>, as a JSON stream stores it); the bytes are copied if kept.</summary>
    public StateMessageKind Add(ReadOnlySpan<byte> storedMessage)
    {
        Messages++;
        BytesIn += storedMessage.Length;
        var kind = Classify(storedMessage, out var type, out var key);
        if (TooLarge)
        {
            return kind;
        }
        switch (kind)
        {
            case StateMessageKind.Set:
                if (_live.Remove((type!, key!), out var previous))
                {
                    _keptBytes -= previous.Bytes.Length;
                }
                _live[(type!, key!)] = Keep(storedMessage);
                break;
            case StateMessageKind.Delete:
                if (_live.Remove((type!, key!), out var deleted))
                {
                    _keptBytes -= deleted.Bytes.Length;
                }
                break;
            case StateMessageKind.Reset:
                foreach (var entry in _live.Values)
                {
                    _keptBytes -= entry.Bytes.Length;
                }
                _live.Clear();
                break;
            case StateMessageKind.Unknown:
                _unknown.Add(Keep(storedMessage));
                break;
        }
        if (_keptBytes > _maxBytes)
        {
            TooLarge = true;
            _live.Clear();
            _unknown.Clear();
            _keptBytes = 0;
        }
        return kind;
    }

    /// <summary>The snapshot's length in stored bytes if built now.</summary>
    public long SnapshotLength => SnapshotStartMessage.Length + _keptBytes + SnapshotEndMessage.Length;

    /// <summary>
    /// The snapshot in stored form and each message's stored length: the start marker, the kept messages in their
    /// original order, the end marker. Throws when <see cref="TooLarge"/>.
    /// </summary>
    public (byte[] Snapshot, int[] MessageLengths) Build()
    {
        if (TooLarge)
        {
            throw new InvalidOperationException("The snapshot exceeded its size limit and was not kept.");
        }
        var kept = new List<Kept>(_live.Count + _unknown.Count);
        kept.AddRange(_live.Values);
        kept.AddRange(_unknown);
        kept.Sort(static (a, b) => a.Sequence.CompareTo(b.Sequence));
        var snapshot = new byte[SnapshotLength];
        var lengths = new int[kept.Count + 2];
        var position = 0;
        var index = 0;
        Append(SnapshotStartMessage.Span);
        foreach (var entry in kept)
        {
            Append(entry.Bytes);
        }
        Append(SnapshotEndMessage.Span);
        return (snapshot, lengths);

        void Append(ReadOnlySpan<byte> message)
        {
            message.CopyTo(snapshot.AsSpan(position));
            position += message.Length;
            lengths[index++] = message.Length;
        }
    }

    private Kept Keep(ReadOnlySpan<byte> storedMessage)
    {
        _keptBytes += storedMessage.Length;
        return new Kept(_sequence++, storedMessage.ToArray());
    }

    /// <summary>Reads one stored message's State-Protocol meaning (the trailing comma, if any, is ignored).</summary>
    public static StateMessageKind Classify(ReadOnlySpan<byte> storedMessage, out string? type, out string? key)
    {
        type = null;
        key = null;
        if (!storedMessage.IsEmpty && storedMessage[^1] == (byte)',')
        {
            storedMessage = storedMessage[..^1];
        }
        string? operation = null;
        string? control = null;
        var hasType = false;
        var hasKey = false;
        try
        {
            var reader = new Utf8JsonReader(storedMessage, new JsonReaderOptions { MaxDepth = 256 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return StateMessageKind.Unknown;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    hasType = true;
                    type = ReadString(ref reader);
                }
                else if (reader.ValueTextEquals("key"u8))
                {
                    hasKey = true;
                    key = ReadString(ref reader);
                }
                else if (reader.ValueTextEquals("headers"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartObject)
                    {
                        operation = control = null;
                        reader.Skip();
                        continue;
                    }
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        if (reader.ValueTextEquals("operation"u8))
                        {
                            operation = ReadString(ref reader);
                        }
                        else if (reader.ValueTextEquals("control"u8))
                        {
                            control = ReadString(ref reader);
                        }
                        else
                        {
                            reader.Read();
                            reader.Skip();
                        }
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            return StateMessageKind.Unknown;
        }
        if (!hasType && !hasKey && operation is null)
        {
            return control switch
            {
                "reset" => StateMessageKind.Reset,
                "snapshot-start" or "snapshot-end" => StateMessageKind.SnapshotBoundary,
                _ => StateMessageKind.Unknown,
            };
        }
        if (control is not null || string.IsNullOrEmpty(type) || string.IsNullOrEmpty(key))
        {
            return StateMessageKind.Unknown;
        }
        return operation switch
        {
            "insert" or "update" or "upsert" => StateMessageKind.Set,
            "delete" => StateMessageKind.Delete,
            _ => StateMessageKind.Unknown,
        };
    }

    /// <summary>The next value as a string, or null (and skipped) when it is not one.</summary>
    private static string? ReadString(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.String)
        {
            return reader.GetString();
        }
        reader.Skip();
        return null;
    }

    private readonly record struct Kept(long Sequence, byte[] Bytes);
}
