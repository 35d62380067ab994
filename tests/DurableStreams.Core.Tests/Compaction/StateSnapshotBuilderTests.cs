using System.Text;
using DurableStreams.Core.Compaction;
using Xunit;

namespace DurableStreams.Core.Tests.Compaction;

/// <summary>What a State-Protocol snapshot keeps (<see cref="StateSnapshotBuilder"/>), fed stored messages.</summary>
public sealed class StateSnapshotBuilderTests
{
    private const string Start = """{"headers":{"control":"snapshot-start"}}""";
    private const string End = """{"headers":{"control":"snapshot-end"}}""";
    private const string Reset = """{"headers":{"control":"reset"}}""";

    private static string Change(string operation, string key, int value, string type = "t") =>
        $$$"""{"type":"{{{type}}}","key":"{{{key}}}","value":{{{value}}},"headers":{"operation":"{{{operation}}}"}}""";

    private static string Delete(string key, string type = "t") =>
        $$$"""{"type":"{{{type}}}","key":"{{{key}}}","headers":{"operation":"delete"}}""";

    /// <summary>Feeds <paramref name="messages"/> (stored form, each with its comma) and returns the builder.</summary>
    private static StateSnapshotBuilder Fed(params string[] messages) => Fed(CompactionPolicy.DefaultMaxSnapshotBytes, messages);

    private static StateSnapshotBuilder Fed(long maxBytes, params string[] messages)
    {
        var builder = new StateSnapshotBuilder(maxBytes);
        foreach (var message in messages)
        {
            builder.Add(Encoding.UTF8.GetBytes(message + ","));
        }
        return builder;
    }

    /// <summary>The built snapshot's messages, checking the lengths match the bytes.</summary>
    private static string[] Built(StateSnapshotBuilder builder)
    {
        var (snapshot, lengths) = builder.Build();
        Assert.Equal(builder.SnapshotLength, snapshot.Length);
        Assert.Equal(snapshot.Length, lengths.Sum());
        var messages = new List<string>();
        var position = 0;
        foreach (var length in lengths)
        {
            var stored = Encoding.UTF8.GetString(snapshot, position, length);
            Assert.EndsWith(",", stored, StringComparison.Ordinal);
            messages.Add(stored[..^1]);
            position += length;
        }
        return [.. messages];
    }

    [Fact]
    public void Insert_update_and_upsert_keep_only_the_latest_change_of_each_key_in_its_original_place()
    {
        var builder = Fed(
            Change("insert", "a", 1),
            Change("insert", "b", 1),
            Change("update", "a", 2),
            Change("upsert", "c", 1),
            Change("upsert", "b", 2));

        Assert.Equal([Start, Change("update", "a", 2), Change("upsert", "c", 1), Change("upsert", "b", 2), End], Built(builder));
        Assert.Equal((5, 3, false), (builder.Messages, builder.LiveKeys, builder.Partial));
    }

    [Fact]
    public void A_deleted_key_vanishes_and_a_key_set_again_after_its_delete_comes_back()
    {
        var builder = Fed(
            Change("insert", "a", 1),
            Change("insert", "b", 1),
            Delete("a"),
            Delete("never-set"),
            Delete("b"),
            Change("insert", "b", 3));

        Assert.Equal([Start, Change("insert", "b", 3), End], Built(builder));
    }

    [Fact]
    public void The_same_key_under_two_types_is_two_entries()
    {
        Assert.Equal(
            [Start, Change("upsert", "a", 1, "x"), Change("upsert", "a", 2, "y"), End],
            Built(Fed(Change("upsert", "a", 1, "x"), Change("upsert", "a", 2, "y"))));
    }

    [Fact]
    public void A_reset_clears_the_changes_before_it_but_keeps_unknown_messages()
    {
        var builder = Fed(
            Change("upsert", "a", 1),
            "42",
            Reset,
            Change("upsert", "b", 1));

        Assert.Equal([Start, "42", Change("upsert", "b", 1), End], Built(builder));
        Assert.Equal(1, builder.UnknownMessages);
    }

    [Fact]
    public void An_earlier_snapshots_markers_are_dropped_and_its_changes_compacted_with_the_rest()
    {
        var builder = Fed(Start, Change("upsert", "a", 1), End, Change("upsert", "a", 2), Change("upsert", "b", 1));

        Assert.Equal([Start, Change("upsert", "a", 2), Change("upsert", "b", 1), End], Built(builder));
        Assert.False(builder.Partial);
    }

    [Fact]
    public void Messages_it_does_not_understand_are_kept_in_order_and_make_it_partial()
    {
        string[] unknown =
        [
            """{"hello":"world"}""",
            "[1,2]",
            "\"text\"",
            "null",
            """{"type":"t","key":"a","value":1}""",
            """{"type":"t","key":"a","value":1,"headers":{"operation":"merge"}}""",
            """{"type":"t","key":"a","value":1,"headers":{}}""",
            """{"headers":{"control":"pause"}}""",
            """{"type":"t","key":"a","headers":{"control":"reset"}}""",
        ];
        var builder = Fed([Change("upsert", "a", 1), .. unknown, Change("upsert", "a", 2)]);

        Assert.Equal([Start, .. unknown, Change("upsert", "a", 2), End], Built(builder));
        Assert.True(builder.Partial);
        Assert.Equal(unknown.Length, builder.UnknownMessages);
    }

    [Theory]
    [InlineData("""{"type":5,"key":"a","value":1,"headers":{"operation":"upsert"}}""")]
    [InlineData("""{"type":"t","key":{"id":1},"value":1,"headers":{"operation":"upsert"}}""")]
    [InlineData("""{"type":"t","key":null,"value":1,"headers":{"operation":"upsert"}}""")]
    [InlineData("""{"type":"","key":"a","value":1,"headers":{"operation":"upsert"}}""")]
    [InlineData("""{"type":"t","key":"","value":1,"headers":{"operation":"upsert"}}""")]
    [InlineData("""{"type":"t","key":"a","value":1,"headers":{"operation":5}}""")]
    [InlineData("""{"type":"t","key":"a","value":1,"headers":"upsert"}""")]
    [InlineData("""{"type":"t","key":"a","value":1,"headers":null}""")]
    [InlineData("""{"type":"t","key":"a","value":1,"headers":["operation","upsert"]}""")]
    [InlineData("""{"type":"t","key":"a","value":1,"headers":{"operation":"upsert","control":"reset"}}""")]
    [InlineData("""{"headers":{"operation":"delete"}}""")]
    [InlineData("""{"headers":{"control":5}}""")]
    public void Non_string_or_missing_type_and_key_and_malformed_headers_are_unknown(string message)
    {
        Assert.Equal(StateMessageKind.Unknown, StateSnapshotBuilder.Classify(Encoding.UTF8.GetBytes(message), out _, out _));

        // Kept as they are, even when a well-formed change of the same key follows.
        Assert.Equal([Start, message, Change("upsert", "a", 2), End], Built(Fed(message, Change("upsert", "a", 2))));
    }

    [Fact]
    public void Keys_and_types_are_compared_after_unescaping()
    {
        var escaped = """{"type":"\u0074","key":"\u0061","value":1,"headers":{"operation":"upsert"}}""";
        var deleteEscaped = """{"type":"t","key":"\u0062","headers":{"operation":"delete"}}""";

        Assert.Equal([Start, Change("upsert", "a", 2), End], Built(Fed(escaped, Change("upsert", "b", 1), Change("upsert", "a", 2), deleteEscaped)));
        Assert.Equal(StateMessageKind.Set, StateSnapshotBuilder.Classify(Encoding.UTF8.GetBytes(escaped), out var type, out var key));
        Assert.Equal(("t", "a"), (type, key));
    }

    [Fact]
    public void Classify_reads_each_kind_with_or_without_the_trailing_comma()
    {
        Assert.Equal(StateMessageKind.Set, StateSnapshotBuilder.Classify(Encoding.UTF8.GetBytes(Change("insert", "a", 1) + ","), out _, out _));
        Assert.Equal(StateMessageKind.Delete, StateSnapshotBuilder.Classify(Encoding.UTF8.GetBytes(Delete("a")), out _, out _));
        Assert.Equal(StateMessageKind.Reset, StateSnapshotBuilder.Classify(Encoding.UTF8.GetBytes(Reset + ","), out _, out _));
        Assert.Equal(StateMessageKind.SnapshotBoundary, StateSnapshotBuilder.Classify(Encoding.UTF8.GetBytes(Start), out _, out _));
        Assert.Equal(StateMessageKind.SnapshotBoundary, StateSnapshotBuilder.Classify(Encoding.UTF8.GetBytes(End), out _, out _));
        // Property order and extra members do not matter.
        Assert.Equal(StateMessageKind.Set, StateSnapshotBuilder.Classify(
            """{"headers":{"txid":"9","operation":"update","timestamp":"x"},"value":{"nested":[1,{"k":"v"}]},"key":"a","extra":true,"type":"t"}"""u8, out var type, out var key));
        Assert.Equal(("t", "a"), (type, key));
    }

    [Fact]
    public void The_snapshot_keeps_each_message_byte_for_byte()
    {
        var spaced = """{ "type" : "t", "key" : "a", "value" : { "x" : [ 1 , 2 ] }, "headers" : { "operation" : "upsert" } }""";

        Assert.Equal([Start, spaced, End], Built(Fed(Change("upsert", "a", 1), spaced)));
    }

    [Fact]
    public void An_empty_prefix_or_one_with_nothing_live_builds_just_the_markers()
    {
        Assert.Equal([Start, End], Built(Fed()));
        Assert.Equal([Start, End], Built(Fed(Change("insert", "a", 1), Delete("a"))));
        Assert.Equal(Encoding.UTF8.GetByteCount(Start + "," + End + ","), Fed().SnapshotLength);
    }

    [Fact]
    public void Kept_messages_past_the_limit_make_it_too_large_and_it_cannot_be_built()
    {
        var one = Change("upsert", "a", 1).Length + 1;
        var builder = Fed(2L * one, Change("upsert", "a", 1), Change("upsert", "b", 1));
        Assert.False(builder.TooLarge);

        builder.Add(Encoding.UTF8.GetBytes(Change("upsert", "c", 1) + ","));

        Assert.True(builder.TooLarge);
        Assert.Throws<InvalidOperationException>(() => builder.Build());
        // Further input is counted but not kept; deleting keys does not bring it back.
        builder.Add(Encoding.UTF8.GetBytes(Delete("a") + ","));
        Assert.True(builder.TooLarge);
        Assert.Equal(4, builder.Messages);
    }

    [Fact]
    public void Superseded_and_deleted_values_do_not_count_against_the_limit()
    {
        var one = Change("upsert", "a", 1).Length + 1;
        var builder = Fed(one, Change("upsert", "a", 1), Change("upsert", "a", 2), Change("upsert", "a", 3), Delete("a"), Change("upsert", "b", 1));

        Assert.False(builder.TooLarge);
        Assert.Equal([Start, Change("upsert", "b", 1), End], Built(builder));
    }
}
