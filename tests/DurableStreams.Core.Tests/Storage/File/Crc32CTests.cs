using System.Text;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Core.Tests.Storage.Files;

public sealed class Crc32CTests
{
    /// <summary>Bit-at-a-time CRC-32C (reflected polynomial 0x82F63B78): slow and obviously right.</summary>
    private static uint Reference(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var bit = 0; bit < 8; bit++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
            }
        }
        return ~crc;
    }

    [Theory]
    [InlineData("", 0x00000000u)]
    [InlineData("a", 0xC1D04330u)]
    [InlineData("123456789", 0xE3069283u)]
    public void Known_check_values(string text, uint expected) =>
        Assert.Equal(expected, Crc32C.Compute(Encoding.ASCII.GetBytes(text)));

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(8191)]
    [InlineData(24_575)]
    [InlineData(24_576)] // exactly one three-lane block
    [InlineData(24_577)]
    [InlineData(49_152 + 13)]
    [InlineData(1_048_576)]
    [InlineData(1_048_576 + 5)]
    public void Matches_the_bitwise_definition_at_every_length_and_alignment(int length)
    {
        var data = new byte[length + 3];
        new Random(length).NextBytes(data);
        for (var skew = 0; skew < 3; skew++)
        {
            var slice = data.AsSpan(skew, length);
            Assert.Equal(Reference(slice), Crc32C.Compute(slice));
        }
    }

    [Fact]
    public void A_flipped_bit_anywhere_in_a_large_buffer_changes_the_checksum()
    {
        var data = new byte[3 * 8192 * 2 + 100];
        new Random(42).NextBytes(data);
        var original = Crc32C.Compute(data);
        foreach (var index in new[] { 0, 8191, 8192, 16_384, 24_576, 40_000, data.Length - 1 })
        {
            data[index] ^= 0x10;
            Assert.NotEqual(original, Crc32C.Compute(data));
            data[index] ^= 0x10;
        }
        Assert.Equal(original, Crc32C.Compute(data));
    }
}
