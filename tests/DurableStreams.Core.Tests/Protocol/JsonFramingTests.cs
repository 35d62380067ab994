using System.Buffers;
using System.Text;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed class JsonFramingTests
{
    private static (JsonFramingError Error, string[] Messages) Split(string body, int maxDepth = JsonFraming.DefaultMaxDepth)
    {
        var error = JsonFraming.TrySplit(Encoding.UTF8.GetBytes(body), maxDepth, out var messages);
        return (error, [.. messages.Select(m => Encoding.UTF8.GetString(m.Span))]);
    }

    [Fact]
    public void An_object_is_one_message_stored_with_a_trailing_comma()
    {
        var (error, messages) = Split("""{"a":1}""");

        Assert.Equal(JsonFramingError.None, error);
        Assert.Equal(["""{"a":1},"""], messages);
    }

    [Theory]
    [InlineData("42", "42,")]
    [InlineData("\"text\"", "\"text\",")]
    [InlineData("null", "null,")]
    [InlineData("true", "true,")]
    [InlineData("  {\"a\":1}  \n", "{\"a\":1},")]
    public void A_scalar_or_padded_value_is_one_message(string body, string expected)
    {
        var (error, messages) = Split(body);

        Assert.Equal(JsonFramingError.None, error);
        Assert.Equal([expected], messages);
    }

    [Fact]
    public void A_top_level_array_is_flattened_into_its_elements()
    {
        var (error, messages) = Split("""[{"a":1},{"b":2},3]""");

        Assert.Equal(JsonFramingError.None, error);
        Assert.Equal(["""{"a":1},""", """{"b":2},""", "3,"], messages);
    }

    [Fact]
    public void Flattening_goes_one_level_deep_only()
    {
        var (error, messages) = Split("[[1,2],[3,4]]");

        Assert.Equal(JsonFramingError.None, error);
        Assert.Equal(["[1,2],", "[3,4],"], messages);
    }

    [Fact]
    public void A_triply_nested_array_is_one_message()
    {
        var (error, messages) = Split("[[[1,2,3]]]");

        Assert.Equal(JsonFramingError.None, error);
        Assert.Equal(["[[1,2,3]],"], messages);
    }

    [Fact]
    public void An_empty_array_yields_no_messages_and_no_error()
    {
        var (error, messages) = Split("[]");

        Assert.Equal(JsonFramingError.None, error);
        Assert.Empty(messages);
    }

    [Fact]
    public void Whitespace_between_elements_is_dropped()
    {
        var (error, messages) = Split(" [ {\"a\":1} ,\n\t{\"b\":2}\r\n ] ");

        Assert.Equal(JsonFramingError.None, error);
        Assert.Equal(["""{"a":1},""", """{"b":2},"""], messages);
    }

    [Fact]
    public void Element_text_is_kept_byte_for_byte()
    {
        var (error, messages) = Split("""[{ "a" : "é\u00e9" }]""");

        Assert.Equal(JsonFramingError.None, error);
        Assert.Equal(["""{ "a" : "é\u00e9" },"""], messages);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("{")]
    [InlineData("{\"a\":1")]
    [InlineData("[{\"a\":1}")]
    [InlineData("[[1,2]")]
    [InlineData("[1,2")]
    [InlineData("[1,]")]
    [InlineData("{\"a\":}")]
    [InlineData("{} {}")]
    [InlineData("[1] [2]")]
    [InlineData("{}x")]
    [InlineData("1 2")]
    [InlineData("undefined")]
    [InlineData("{'a':1}")]
    [InlineData("// comment\n{}")]
    [InlineData("[1]]")]
    public void Invalid_json_and_trailing_garbage_are_refused(string body)
    {
        Assert.Equal(JsonFramingError.Invalid, Split(body).Error);
    }

    [Fact]
    public void Invalid_utf8_is_refused()
    {
        var error = JsonFraming.TrySplit(new byte[] { (byte)'"', 0xC3, 0x28, (byte)'"' }, JsonFraming.DefaultMaxDepth, out _);

        Assert.Equal(JsonFramingError.Invalid, error);
    }

    [Fact]
    public void Nesting_up_to_the_limit_is_accepted()
    {
        var (error, messages) = Split("[[[1]]]", maxDepth: 3);

        Assert.Equal(JsonFramingError.None, error);
        Assert.Equal(["[[1]],"], messages);
    }

    [Theory]
    [InlineData("[[[[1]]]]", 3)]
    [InlineData("{\"a\":{\"b\":{\"c\":{}}}}", 3)]
    public void Nesting_deeper_than_the_limit_is_too_deep(string body, int maxDepth)
    {
        var (error, _) = Split(body, maxDepth);

        Assert.Equal(JsonFramingError.TooDeep, error);
    }

    [Fact]
    public void The_default_limit_refuses_a_thousand_levels()
    {
        var body = new string('[', 1000) + new string(']', 1000);

        Assert.Equal(JsonFramingError.TooDeep, Split(body).Error);
    }

    [Fact]
    public void WriteArray_joins_stored_messages_into_one_array()
    {
        var buffer = new ArrayBufferWriter<byte>();
        ReadOnlyMemory<byte>[] stored = ["""{"a":1},"""u8.ToArray(), """{"b":2},"""u8.ToArray()];

        JsonFraming.WriteArray(stored, buffer);

        Assert.Equal("""[{"a":1},{"b":2}]""", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void WriteArray_writes_an_empty_array_for_no_messages()
    {
        var buffer = new ArrayBufferWriter<byte>();

        JsonFraming.WriteArray([], buffer);

        Assert.Equal("[]", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    [Fact]
    public void WriteArray_of_split_messages_round_trips_to_equivalent_json()
    {
        const string body = """[{"a":[1,2]}, "x", 3.5, null, {"b":{"c":true}}]""";
        JsonFraming.TrySplit(Encoding.UTF8.GetBytes(body), JsonFraming.DefaultMaxDepth, out var messages);
        var buffer = new ArrayBufferWriter<byte>();

        JsonFraming.WriteArray(messages, buffer);

        Assert.Equal("""[{"a":[1,2]},"x",3.5,null,{"b":{"c":true}}]""", Encoding.UTF8.GetString(buffer.WrittenSpan));
    }
}
