using System.Diagnostics.CodeAnalysis;

namespace DurableStreams.Protocol;

/// <summary>
/// A position in a stream's byte space, rendered as <c>GGGGGGGGGGGGGGGG_PPPPPPPPPPPPPPPP</c>: a 16-digit offset-space
/// generation (always 0 today; reserved so retention/compaction can start a new space without ambiguity) and the
/// 16-digit logical byte position. Fixed width keeps ordinal string order equal to position order, the position makes
/// a read an O(1) seek, and the alphabet (digits and '_') never needs URL escaping.
/// </summary>
public readonly record struct StreamOffset(long Position) : IComparable<StreamOffset>
{
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
        if (destination.Length < FormattedLength || Position is < 0 or > MaxPosition)
        {
            charsWritten = 0;
            return false;
        }
        "0000000000000000_".AsSpan().CopyTo(destination);
        Position.TryFormat(destination[17..FormattedLength], out _, "D16", System.Globalization.CultureInfo.InvariantCulture);
        charsWritten = FormattedLength;
        return true;
    }

    public override string ToString()
    {
        return string.Create(FormattedLength, Position, static (span, position) =>
        {
            if (!new StreamOffset(position).TryFormat(span, out _))
            {
                throw new InvalidOperationException($"Offset position {position} is outside the representable range.");
            }
        });
    }

    /// <summary>Parses a formatted offset. Never throws; anything but the exact format is rejected.</summary>
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
        // An offset from another generation can never have been issued by this server.
        if (generation != 0)
        {
            return false;
        }
        offset = new StreamOffset(position);
        return true;
    }
}
