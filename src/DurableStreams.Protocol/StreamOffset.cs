using System.Diagnostics.CodeAnalysis;

namespace DurableStreams.Protocol;

/// <summary>
/// A position in a stream's byte space, rendered as <c>GGGGGGGGGGGGGGGG_PPPPPPPPPPPPPPPP</c>: a 16-digit offset-space
/// generation and the 16-digit logical byte position. Fixed width keeps ordinal string order equal to (generation,
/// position) order, the position makes a read an O(1) seek, and the alphabet (digits and '_') never needs URL escaping.
/// </summary>
/// <remarks>
/// The generation is 0 until State-Protocol compaction rewrites a prefix of the stream (issue 18); each compaction
/// starts the next one, and every offset the server issues from then on carries it, so offsets stay strictly increasing
/// as strings for every reader while an offset into a rewritten range is recognisably stale (the read rules answer 410
/// for it, see <c>ReadRules.ResolveStart</c>). The generation is presentation and validation only: equality, ordering
/// and hashing are by <see cref="Position"/>, so code that compares positions is unaffected by it.
/// </remarks>
public readonly record struct StreamOffset(long Position) : IComparable<StreamOffset>
{
    /// <summary>The offset-space generation this offset was issued in (0 until the stream is first compacted).</summary>
    public long Generation { get; init; }

    /// <summary>This position, issued in <paramref name="generation"/>.</summary>
    public StreamOffset InGeneration(long generation) => this with { Generation = generation };

    /// <summary>Equal positions are equal offsets, whatever their generations (see the remarks).</summary>
    public bool Equals(StreamOffset other) => Position == other.Position;

    public override int GetHashCode() => Position.GetHashCode();

    /// <summary>Length of the formatted offset.</summary>
    public const int FormattedLength = 33;

    /// <summary>The largest position representable in 16 decimal digits.</summary>
    public const long MaxPosition = 9_999_999_999_999_999;

    /// <summary>The start of every stream.</summary>
    public static StreamOffset Zero => default;

    public int CompareTo(StreamOffset other) => Position.CompareTo(other.Position);

    public static bool operator <(StreamOffset a, StreamOffset b) => a.Position < b.Position;
    public static bool operator >(StreamOffset a, StreamOffset b) => a.Position > b.Position;
    public static bool operator <=(StreamOffset a, StreamOffset b) => a.Position <= b.Position;
    public static bool operator >=(StreamOffset a, StreamOffset b) => a.Position >= b.Position;

    /// <summary>Writes the offset into <paramref name="destination"/> (at least <see cref="FormattedLength"/> chars).</summary>
    public bool TryFormat(Span<char> destination, out int charsWritten)
    {
        if (destination.Length < FormattedLength || Position is < 0 or > MaxPosition || Generation is < 0 or > MaxPosition)
        {
            charsWritten = 0;
            return false;
        }
        Generation.TryFormat(destination[..16], out _, "D16", System.Globalization.CultureInfo.InvariantCulture);
        destination[16] = '_';
        Position.TryFormat(destination[17..FormattedLength], out _, "D16", System.Globalization.CultureInfo.InvariantCulture);
        charsWritten = FormattedLength;
        return true;
    }

    public override string ToString()
    {
        return string.Create(FormattedLength, this, static (span, offset) =>
        {
            if (!offset.TryFormat(span, out _))
            {
                throw new InvalidOperationException($"Offset position {offset.Position} (generation {offset.Generation}) is outside the representable range.");
            }
        });
    }

    /// <summary>
    /// Parses a formatted offset of any generation. Never throws; anything but the exact format is rejected. Whether
    /// the generation is one the stream issued is the read rules' question, not the parser's.
    /// </summary>
    public static bool TryParse([NotNullWhen(true)] string? text, out StreamOffset offset) => TryParse(text.AsSpan(), out offset);

    /// <inheritdoc cref="TryParse(string?, out StreamOffset)"/>
    public static bool TryParse(ReadOnlySpan<char> text, out StreamOffset offset)
    {
        offset = default;
        if (text.Length != FormattedLength || text[16] != '_')
        {
            return false;
        }
        long generation = 0;
        long position = 0;
        for (var i = 0; i < 16; i++)
        {
            var g = text[i] - '0';
            var p = text[17 + i] - '0';
            if ((uint)g > 9 || (uint)p > 9)
            {
                return false;
            }
            generation = generation * 10 + g;
            position = position * 10 + p;
        }
        offset = new StreamOffset(position) { Generation = generation };
        return true;
    }
}
