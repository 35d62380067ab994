using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DurableStreams.Storage.Files;

/// <summary>
/// CRC-32C (Castagnoli), hardware-accelerated where the CPU has it (SSE4.2, ARMv8 CRC). Every read of committed data
/// is checked, so this is on the catch-up hot path: large inputs run three independent CRC chains side by side (the
/// instruction's latency is three times its throughput) and merge them with a precomputed "append zeros" table.
/// </summary>
internal static class Crc32C
{
    /// <summary>Bytes per chain in the three-way loop (a multiple of 8).</summary>
    private const int Lane = 8192;

    /// <summary>The linear map "advance a CRC state over <see cref="Lane"/> zero bytes", as four byte-indexed tables.</summary>
    private static readonly uint[] s_skipLane = BuildSkipTable(Lane);

    public static uint Compute(ReadOnlySpan<byte> data) => Extend(0, data);

    /// <summary>The CRC of the bytes <paramref name="crc"/> covered followed by <paramref name="data"/>.</summary>
    public static uint Extend(uint crc, ReadOnlySpan<byte> data)
    {
        var state = ~crc;
        while (data.Length >= 3 * Lane)
        {
            state = ThreeLanes(state, data[..(3 * Lane)]);
            data = data[(3 * Lane)..];
        }
        return ~Serial(state, data);
    }

    // The state after A|B|C is skip(skip(crc over A) ^ crc0 over B) ^ crc0 over C, because a raw CRC state update is
    // linear: update(s, m) = update(s, zeros) ^ update(0, m).
    private static uint ThreeLanes(uint crc, ReadOnlySpan<byte> block)
    {
        ref var a = ref Unsafe.As<byte, ulong>(ref MemoryMarshal.GetReference(block));
        ref var b = ref Unsafe.Add(ref a, Lane / 8);
        ref var c = ref Unsafe.Add(ref a, 2 * Lane / 8);
        uint ca = crc, cb = 0, cc = 0;
        for (nint i = 0; i < Lane / 8; i++)
        {
            ca = BitOperations.Crc32C(ca, Unsafe.ReadUnaligned<ulong>(ref Unsafe.As<ulong, byte>(ref Unsafe.Add(ref a, i))));
            cb = BitOperations.Crc32C(cb, Unsafe.ReadUnaligned<ulong>(ref Unsafe.As<ulong, byte>(ref Unsafe.Add(ref b, i))));
            cc = BitOperations.Crc32C(cc, Unsafe.ReadUnaligned<ulong>(ref Unsafe.As<ulong, byte>(ref Unsafe.Add(ref c, i))));
        }
        return SkipLane(SkipLane(ca) ^ cb) ^ cc;
    }

    private static uint Serial(uint crc, ReadOnlySpan<byte> data)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (var word in words)
        {
            crc = BitOperations.Crc32C(crc, word);
        }
        foreach (var b in data[(words.Length * 8)..])
        {
            crc = BitOperations.Crc32C(crc, b);
        }
        return crc;
    }

    private static uint SkipLane(uint state)
    {
        var table = s_skipLane;
        return table[state & 0xFF] ^ table[256 + ((state >> 8) & 0xFF)] ^ table[512 + ((state >> 16) & 0xFF)] ^ table[768 + (state >> 24)];
    }

    private static uint[] BuildSkipTable(int zeroBytes)
    {
        // The image of each single-bit state, then every byte value of every byte position by linearity.
        Span<uint> columns = stackalloc uint[32];
        for (var bit = 0; bit < 32; bit++)
        {
            var state = 1u << bit;
            for (var i = 0; i < zeroBytes / 8; i++)
            {
                state = BitOperations.Crc32C(state, 0UL);
            }
            columns[bit] = state;
        }
        var table = new uint[4 * 256];
        for (var position = 0; position < 4; position++)
        {
            for (var value = 1; value < 256; value++)
            {
                var image = 0u;
                for (var bit = 0; bit < 8; bit++)
                {
                    if ((value & (1 << bit)) != 0)
                    {
                        image ^= columns[(position * 8) + bit];
                    }
                }
                table[(position * 256) + value] = image;
            }
        }
        return table;
    }
}
