using System.Buffers;
using System.Text;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed class SseFrameWriterTests
{
    private static string Text(string payload)
    {
        var buffer = new ArrayBufferWriter<byte>();
        SseFrameWriter.WriteTextData(Encoding.UTF8.GetBytes(payload), buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string Base64(params byte[][] chunks)
    {
        var buffer = new ArrayBufferWriter<byte>();
        SseFrameWriter.WriteBase64Data([.. chunks.Select(c => (ReadOnlyMemory<byte>)c)], buffer);
        return Encoding.ASCII.GetString(buffer.WrittenSpan);
    }

    private static string Control(SseControl control)
    {
        var buffer = new ArrayBufferWriter<byte>();
        SseFrameWriter.WriteControl(control, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The lines between the event line and the blank line that ends the event.</summary>
    private static string[] DataLines(string frame)
    {
        Assert.EndsWith("\n\n", frame, StringComparison.Ordinal);
        var lines = frame[..^2].Split('\n');
        Assert.Equal("event: data", lines[0]);
        Assert.All(lines[1..], line => Assert.StartsWith("data:", line, StringComparison.Ordinal));
        return lines[1..];
    }

    [Fact]
    public void Text_lines_become_data_lines()
    {
        Assert.Equal("event: data\ndata:line1\ndata:line2\n\n", Text("line1\nline2"));
    }

    [Fact]
    public void Single_line_text_is_one_data_line()
    {
        Assert.Equal("event: data\ndata:hello\n\n", Text("hello"));
    }

    [Fact]
    public void Empty_text_is_one_empty_data_line()
    {
        Assert.Equal("event: data\ndata:\n\n", Text(""));
    }

    [Theory]
    [InlineData("a\r\nb", "event: data\ndata:a\ndata:b\n\n")]
    [InlineData("a\rb", "event: data\ndata:a\ndata:b\n\n")]
    [InlineData("a\n\nb", "event: data\ndata:a\ndata:\ndata:b\n\n")]
    [InlineData("a\r\n\r\nb", "event: data\ndata:a\ndata:\ndata:b\n\n")]
    [InlineData("a\r\rb", "event: data\ndata:a\ndata:\ndata:b\n\n")]
    [InlineData("a\n\rb", "event: data\ndata:a\ndata:\ndata:b\n\n")]
    [InlineData("a\n", "event: data\ndata:a\ndata:\n\n")]
    [InlineData("\n", "event: data\ndata:\ndata:\n\n")]
    [InlineData("a\r", "event: data\ndata:a\ndata:\n\n")]
    public void Line_breaks_of_every_kind_split_lines_without_ending_the_event(string payload, string expected)
    {
        Assert.Equal(expected, Text(payload));
    }

    [Theory]
    [InlineData("a\r\n\r\n\r\nevent: control\ndata:{}\n\nb")]
    [InlineData("\n\n\n")]
    [InlineData("\r\r\r")]
    [InlineData("x\r\n\ny\r\rz\n\r")]
    public void No_payload_produces_a_blank_line_inside_the_event(string payload)
    {
        var frame = Text(payload);

        Assert.Equal(frame.Length - 2, frame.IndexOf("\n\n", StringComparison.Ordinal));
        Assert.DoesNotContain('\r', frame);
        DataLines(frame);
    }

    [Fact]
    public void A_forged_event_line_stays_inside_a_data_line()
    {
        var lines = DataLines(Text("x\nevent: control"));

        Assert.Equal(["data:x", "data:event: control"], lines);
    }

    [Fact]
    public void A_line_starting_with_a_space_gets_one_extra_space()
    {
        Assert.Equal("event: data\ndata:  x\ndata:y\ndata:   z\n\n", Text(" x\ny\n  z"));
    }

    [Fact]
    public void Multi_segment_text_is_joined_before_splitting()
    {
        var buffer = new ArrayBufferWriter<byte>();
        ReadOnlyMemory<byte>[] chunks = ["ab\r"u8.ToArray(), "\ncd"u8.ToArray(), "\ne"u8.ToArray()];

        SseFrameWriter.WriteTextData(chunks, buffer);

        Assert.Equal("event: data\ndata:ab\ndata:cd\ndata:e\n\n", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void Base64_data_is_standard_base64_of_the_bytes()
    {
        Assert.Equal("event: data\ndata:SGVsbG8=\n\n", Base64([0x48, 0x65, 0x6c, 0x6c, 0x6f]));
    }

    [Fact]
    public void Base64_of_several_chunks_encodes_their_concatenation()
    {
        Assert.Equal("event: data\ndata:SGVsbG8=\n\n", Base64([0x48, 0x65], [0x6c], [0x6c, 0x6f]));
    }

    [Fact]
    public void Base64_of_nothing_is_one_empty_data_line()
    {
        Assert.Equal("event: data\ndata:\n\n", Base64([]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3071)]
    [InlineData(3072)]
    [InlineData(3073)]
    [InlineData(10_000)]
    [InlineData(100_001)]
    public void Long_base64_payloads_split_into_lines_of_whole_quanta(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);

        var lines = DataLines(Base64(bytes[..(length / 3)], bytes[(length / 3)..]));

        Assert.Equal((length + 3071) / 3072, lines.Length);
        Assert.All(lines, line => Assert.Equal(0, (line.Length - "data:".Length) % 4));
        var decoded = string.Concat(lines.Select(l => l["data:".Length..]));
        Assert.Equal(bytes, Convert.FromBase64String(decoded));
        Assert.All(lines, line => Assert.DoesNotContain('\r', line));
    }

    [Fact]
    public void Base64_lines_decode_one_by_one()
    {
        var bytes = new byte[7000];
        new Random(7).NextBytes(bytes);

        var decoded = DataLines(Base64(bytes)).SelectMany(l => Convert.FromBase64String(l["data:".Length..])).ToArray();

        Assert.Equal(bytes, decoded);
    }

    [Fact]
    public void Control_event_carries_offset_cursor_and_up_to_date()
    {
        var frame = Control(new SseControl(new StreamOffset(42), "123", UpToDate: true, Closed: false));

        Assert.Equal(
            "event: control\ndata:{\"streamNextOffset\":\"0000000000000000_0000000000000042\",\"streamCursor\":\"123\",\"upToDate\":true}\n\n",
            frame);
    }

    [Fact]
    public void Control_event_omits_up_to_date_when_behind()
    {
        var frame = Control(new SseControl(new StreamOffset(7), "9", UpToDate: false, Closed: false));

        Assert.Equal(
            "event: control\ndata:{\"streamNextOffset\":\"0000000000000000_0000000000000007\",\"streamCursor\":\"9\"}\n\n",
            frame);
    }

    [Fact]
    public void Control_event_for_a_closed_stream_omits_the_cursor()
    {
        var frame = Control(new SseControl(new StreamOffset(5), "123", UpToDate: false, Closed: true));

        Assert.Equal(
            "event: control\ndata:{\"streamNextOffset\":\"0000000000000000_0000000000000005\",\"upToDate\":true,\"streamClosed\":true}\n\n",
            frame);
    }

    [Fact]
    public void Control_event_without_a_cursor_omits_it()
    {
        var frame = Control(new SseControl(new StreamOffset(1), null, UpToDate: true, Closed: false));

        Assert.Equal("event: control\ndata:{\"streamNextOffset\":\"0000000000000000_0000000000000001\",\"upToDate\":true}\n\n", frame);
    }

    [Fact]
    public void Json_data_event_is_the_array_text()
    {
        var buffer = new ArrayBufferWriter<byte>();
        ReadOnlyMemory<byte>[] stored = ["""{"a":1},"""u8.ToArray(), """{"b":"x\ny"},"""u8.ToArray()];

        SseFrameWriter.WriteJsonData(stored, buffer);

        Assert.Equal("event: data\ndata:[{\"a\":1},{\"b\":\"x\\ny\"}]\n\n", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void Json_data_event_with_pretty_printed_messages_splits_lines()
    {
        var buffer = new ArrayBufferWriter<byte>();
        ReadOnlyMemory<byte>[] stored = ["{\n\"a\":1\n},"u8.ToArray()];

        SseFrameWriter.WriteJsonData(stored, buffer);

        Assert.Equal("event: data\ndata:[{\ndata:\"a\":1\ndata:}]\n\n", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }
}
