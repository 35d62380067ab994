using System.Text;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Storage;

public sealed class AppendRulesTests
{
    private static readonly DateTimeOffset Now = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static StreamState NewState(string contentType = "text/plain") => new()
    {
        ContentType = contentType,
        CreatedAt = Now,
        Requested = new StreamConfiguration(contentType, null, null, null, null, 0),
    };

    private static AppendRequest Request(
        string? body = "x",
        string? contentType = "text/plain",
        string? streamSeq = null,
        ProducerClaim? producer = null,
        bool close = false) => new()
        {
            Body = body is null ? ReadOnlyMemory<byte>.Empty : Encoding.UTF8.GetBytes(body),
            ContentType = contentType,
            StreamSeq = streamSeq,
            Producer = producer,
            Close = close,
        };

    private static ProducerClaim Producer(long epoch, long seq, string id = "p1") => new(id, epoch, seq);

    /// <summary>Evaluates and, when accepted, applies as a store would.</summary>
    private static AppendStreamResult Append(StreamState state, AppendRequest request)
    {
        var decision = AppendRules.Evaluate(state, request, JsonFraming.DefaultMaxDepth);
        if (!decision.ShouldCommit)
        {
            Assert.Empty(decision.Messages);
            return decision.Result;
        }
        return AppendRules.Apply(state, request, decision.Messages.Sum(m => (long)m.Length), Now);
    }

    private static AppendDecision Evaluate(StreamState state, AppendRequest request, int maxDepth = JsonFraming.DefaultMaxDepth) =>
        AppendRules.Evaluate(state, request, maxDepth);

    private static string[] Texts(AppendDecision decision) => [.. decision.Messages.Select(m => Encoding.UTF8.GetString(m.Span))];

    [Fact]
    public void A_body_is_committed_as_one_message()
    {
        var decision = Evaluate(NewState(), Request("hello"));

        Assert.True(decision.ShouldCommit);
        Assert.Equal(AppendStatus.Appended, decision.Result.Status);
        Assert.Equal(["hello"], Texts(decision));
    }

    [Fact]
    public void An_empty_body_without_close_is_refused()
    {
        var state = NewState();
        state.Tail = 3;

        var result = Evaluate(state, Request(body: null)).Result;

        Assert.Equal(AppendStatus.EmptyBody, result.Status);
        Assert.Equal(new StreamOffset(3), result.NextOffset);
    }

    [Fact]
    public void A_body_without_a_content_type_is_refused()
    {
        Assert.Equal(AppendStatus.MissingContentType, Evaluate(NewState(), Request("x", contentType: null)).Result.Status);
    }

    [Fact]
    public void A_close_without_body_needs_no_content_type_and_ignores_a_wrong_one()
    {
        Assert.Equal(AppendStatus.Appended, Evaluate(NewState(), Request(body: null, contentType: null, close: true)).Result.Status);
        Assert.Equal(AppendStatus.Appended, Evaluate(NewState(), Request(body: null, contentType: "image/png", close: true)).Result.Status);
    }

    [Fact]
    public void A_different_content_type_is_a_mismatch()
    {
        Assert.Equal(AppendStatus.ContentTypeMismatch, Evaluate(NewState(), Request("x", contentType: "application/json")).Result.Status);
    }

    [Fact]
    public void Content_type_comparison_ignores_case_and_parameters()
    {
        Assert.True(Evaluate(NewState(), Request("x", contentType: "TEXT/Plain; charset=utf-8")).ShouldCommit);
    }

    [Fact]
    public void Stream_seq_compares_lexicographically_so_10_after_2_is_a_regression()
    {
        var state = NewState();
        Assert.Equal(AppendStatus.Appended, Append(state, Request(streamSeq: "2")).Status);

        Assert.Equal(AppendStatus.StreamSeqConflict, Append(state, Request(streamSeq: "10")).Status);
        Assert.Equal("2", state.LastStreamSeq);
    }

    [Fact]
    public void Stream_seq_with_padding_increases_lexicographically()
    {
        var state = NewState();
        Assert.Equal(AppendStatus.Appended, Append(state, Request(streamSeq: "09")).Status);

        Assert.Equal(AppendStatus.Appended, Append(state, Request(streamSeq: "10")).Status);
        Assert.Equal("10", state.LastStreamSeq);
    }

    [Fact]
    public void An_equal_stream_seq_is_a_conflict()
    {
        var state = NewState();
        Append(state, Request(streamSeq: "a"));

        var result = Append(state, Request(streamSeq: "a"));

        Assert.Equal(AppendStatus.StreamSeqConflict, result.Status);
        Assert.Equal(new StreamOffset(1), result.NextOffset);
        Assert.Equal(1, state.Tail);
    }

    [Fact]
    public void Stream_seq_comparison_is_byte_wise_not_culture_aware()
    {
        var state = NewState();
        Append(state, Request(streamSeq: "a"));

        Assert.Equal(AppendStatus.StreamSeqConflict, Append(state, Request(streamSeq: "B")).Status);
        Assert.Equal(AppendStatus.Appended, Append(state, Request(streamSeq: "b")).Status);
    }

    [Fact]
    public void Appends_without_stream_seq_leave_the_last_one_alone()
    {
        var state = NewState();
        Append(state, Request(streamSeq: "5"));

        Assert.Equal(AppendStatus.Appended, Append(state, Request()).Status);
        Assert.Equal("5", state.LastStreamSeq);
        Assert.Equal(AppendStatus.StreamSeqConflict, Append(state, Request(streamSeq: "4")).Status);
    }

    [Fact]
    public void A_new_producer_starting_at_zero_is_accepted()
    {
        var state = NewState();

        var result = Append(state, Request("ab", producer: Producer(0, 0)));

        Assert.Equal(AppendStatus.Appended, result.Status);
        Assert.Equal(0, result.ProducerEpoch);
        Assert.Equal(0, result.ProducerSeq);
        Assert.Equal(new StreamOffset(2), result.NextOffset);
        Assert.Equal(0, state.Producers["p1"].Epoch);
        Assert.Equal(0, state.Producers["p1"].LastSeq);
        Assert.Equal(Now, state.Producers["p1"].UpdatedAt);
    }

    [Fact]
    public void A_new_producer_at_any_epoch_may_start_at_zero()
    {
        var state = NewState();

        var result = Append(state, Request(producer: Producer(7, 0)));

        Assert.Equal(AppendStatus.Appended, result.Status);
        Assert.Equal(7, state.Producers["p1"].Epoch);
    }

    [Fact]
    public void A_new_producer_not_starting_at_zero_has_a_gap_expecting_zero()
    {
        var state = NewState();

        var result = Append(state, Request(producer: Producer(0, 1)));

        Assert.Equal(AppendStatus.SequenceGap, result.Status);
        Assert.Equal(0, result.ExpectedSeq);
        Assert.Equal(1, result.ReceivedSeq);
        Assert.Empty(state.Producers);
        Assert.Equal(0, state.Tail);
    }

    [Fact]
    public void The_next_sequence_is_accepted()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(0, 0)));

        var result = Append(state, Request(producer: Producer(0, 1)));

        Assert.Equal(AppendStatus.Appended, result.Status);
        Assert.Equal(1, result.ProducerSeq);
        Assert.Equal(1, state.Producers["p1"].LastSeq);
    }

    [Fact]
    public void A_duplicate_reports_the_highest_accepted_sequence_not_the_requested_one()
    {
        var state = NewState();
        Append(state, Request("a", producer: Producer(0, 0)));
        Append(state, Request("b", producer: Producer(0, 1)));
        Append(state, Request("c", producer: Producer(0, 2)));

        var result = Append(state, Request("a", producer: Producer(0, 0)));

        Assert.Equal(AppendStatus.Duplicate, result.Status);
        Assert.Equal(0, result.ProducerEpoch);
        Assert.Equal(2, result.ProducerSeq);
        Assert.Equal(new StreamOffset(3), result.NextOffset);
        Assert.False(result.Closed);
        Assert.Equal(3, state.Tail);
    }

    [Fact]
    public void A_duplicate_wins_over_a_content_type_mismatch_and_stream_seq()
    {
        var state = NewState();
        Append(state, Request("a", streamSeq: "5", producer: Producer(0, 0)));

        Assert.Equal(AppendStatus.Duplicate, Append(state, Request("a", contentType: "image/png", streamSeq: "1", producer: Producer(0, 0))).Status);
    }

    [Fact]
    public void A_sequence_gap_reports_expected_and_received()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(0, 0)));
        Append(state, Request(producer: Producer(0, 1)));

        var result = Append(state, Request(producer: Producer(0, 5)));

        Assert.Equal(AppendStatus.SequenceGap, result.Status);
        Assert.Equal(2, result.ExpectedSeq);
        Assert.Equal(5, result.ReceivedSeq);
        Assert.Equal(1, state.Producers["p1"].LastSeq);
    }

    [Fact]
    public void A_stale_epoch_is_fenced_with_the_current_epoch()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(3, 0)));

        var result = Append(state, Request(producer: Producer(2, 0)));

        Assert.Equal(AppendStatus.StaleEpoch, result.Status);
        Assert.Equal(3, result.ProducerEpoch);
        Assert.Equal(1, state.Tail);
    }

    [Fact]
    public void An_epoch_bump_must_start_at_seq_zero()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(0, 0)));
        Append(state, Request(producer: Producer(0, 1)));

        var result = Append(state, Request(producer: Producer(1, 1)));

        Assert.Equal(AppendStatus.InvalidEpochSeq, result.Status);
        Assert.Equal(0, state.Producers["p1"].Epoch);
        Assert.Equal(1, state.Producers["p1"].LastSeq);
    }

    [Fact]
    public void An_epoch_bump_at_seq_zero_is_accepted_and_resets_the_sequence()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(0, 0)));
        Append(state, Request(producer: Producer(0, 1)));

        var result = Append(state, Request(producer: Producer(1, 0)));

        Assert.Equal(AppendStatus.Appended, result.Status);
        Assert.Equal(1, result.ProducerEpoch);
        Assert.Equal(0, result.ProducerSeq);
        Assert.Equal(1, state.Producers["p1"].Epoch);
        Assert.Equal(0, state.Producers["p1"].LastSeq);
        Assert.Equal(AppendStatus.Appended, Append(state, Request(producer: Producer(1, 1))).Status);
        Assert.Equal(AppendStatus.StaleEpoch, Append(state, Request(producer: Producer(0, 2))).Status);
    }

    [Fact]
    public void Producers_are_tracked_independently()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(0, 0, "a")));
        Append(state, Request(producer: Producer(0, 1, "a")));

        Assert.Equal(AppendStatus.Appended, Append(state, Request(producer: Producer(0, 0, "b"))).Status);
        Assert.Equal(AppendStatus.Duplicate, Append(state, Request(producer: Producer(0, 1, "a"))).Status);
        Assert.Equal(2, state.Producers.Count);
    }

    [Fact]
    public void Producer_ids_are_case_sensitive()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(0, 0, "P")));

        Assert.Equal(AppendStatus.Appended, Append(state, Request(producer: Producer(0, 0, "p"))).Status);
    }

    [Fact]
    public void Data_on_a_closed_stream_is_refused_with_the_final_offset()
    {
        var state = NewState();
        Append(state, Request("abc", close: true));

        var result = Append(state, Request("more"));

        Assert.Equal(AppendStatus.StreamClosed, result.Status);
        Assert.Equal(new StreamOffset(3), result.NextOffset);
        Assert.True(result.Closed);
        Assert.Equal(3, state.Tail);
    }

    [Fact]
    public void Closure_takes_precedence_over_content_type_and_stream_seq()
    {
        var state = NewState();
        Append(state, Request("abc", streamSeq: "9", close: true));

        Assert.Equal(AppendStatus.StreamClosed, Append(state, Request("x", contentType: "image/png", streamSeq: "1")).Status);
    }

    [Fact]
    public void Data_with_close_on_a_closed_stream_is_refused()
    {
        var state = NewState();
        Append(state, Request(body: null, close: true));

        Assert.Equal(AppendStatus.StreamClosed, Append(state, Request("x", close: true)).Status);
    }

    [Fact]
    public void A_close_only_request_on_a_closed_stream_is_already_closed()
    {
        var state = NewState();
        Append(state, Request("abc", close: true));

        var result = Append(state, Request(body: null, contentType: null, close: true));

        Assert.Equal(AppendStatus.AlreadyClosed, result.Status);
        Assert.Equal(new StreamOffset(3), result.NextOffset);
        Assert.True(result.Closed);
    }

    [Fact]
    public void A_retry_of_the_closing_append_is_a_duplicate_of_a_closed_stream()
    {
        var state = NewState();
        Append(state, Request("a", producer: Producer(0, 0)));
        Assert.Equal(AppendStatus.Appended, Append(state, Request("final", producer: Producer(0, 1), close: true)).Status);

        var result = Append(state, Request("final", producer: Producer(0, 1), close: true));

        Assert.Equal(AppendStatus.Duplicate, result.Status);
        Assert.True(result.Closed);
        Assert.Equal(0, result.ProducerEpoch);
        Assert.Equal(1, result.ProducerSeq);
        Assert.Equal(new StreamOffset(6), result.NextOffset);
    }

    [Fact]
    public void A_retry_of_a_close_only_request_is_a_duplicate()
    {
        var state = NewState();
        Assert.Equal(AppendStatus.Appended, Append(state, Request(body: null, contentType: null, producer: Producer(0, 0), close: true)).Status);

        var result = Append(state, Request(body: null, contentType: null, producer: Producer(0, 0), close: true));

        Assert.Equal(AppendStatus.Duplicate, result.Status);
        Assert.True(result.Closed);
    }

    [Fact]
    public void The_next_sequence_after_closure_is_refused_as_closed()
    {
        var state = NewState();
        Append(state, Request("final", producer: Producer(0, 0), close: true));

        Assert.Equal(AppendStatus.StreamClosed, Append(state, Request("x", producer: Producer(0, 1), close: true)).Status);
        Assert.Equal(AppendStatus.StreamClosed, Append(state, Request("x", producer: Producer(0, 0, "other"))).Status);
    }

    [Fact]
    public void A_close_only_request_from_a_producer_that_did_not_close_the_stream_is_refused_as_closed()
    {
        var state = NewState();
        Append(state, Request("final", producer: Producer(0, 0), close: true));

        var other = Append(state, Request(body: null, contentType: null, producer: Producer(0, 0, "other"), close: true));
        var nextSeq = Append(state, Request(body: null, contentType: null, producer: Producer(0, 1), close: true));
        var newEpoch = Append(state, Request(body: null, contentType: null, producer: Producer(1, 0), close: true));

        Assert.Equal(AppendStatus.StreamClosed, other.Status);
        Assert.True(other.Closed);
        Assert.Equal(new StreamOffset(5), other.NextOffset);
        Assert.Equal(AppendStatus.StreamClosed, nextSeq.Status);
        Assert.Equal(AppendStatus.StreamClosed, newEpoch.Status);
        Assert.Equal(AppendStatus.AlreadyClosed, Append(state, Request(body: null, contentType: null, close: true)).Status);
    }

    [Fact]
    public void A_retry_of_an_earlier_append_on_a_closed_stream_is_refused_as_closed()
    {
        var state = NewState();
        Append(state, Request("a", producer: Producer(0, 0)));
        Append(state, Request("b", producer: Producer(0, 1), close: true));

        var result = Append(state, Request("a", producer: Producer(0, 0)));

        Assert.Equal(AppendStatus.StreamClosed, result.Status);
        Assert.True(result.Closed);
        Assert.Equal(new StreamOffset(2), result.NextOffset);
    }

    [Fact]
    public void A_stale_epoch_on_a_closed_stream_is_still_fenced()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(2, 0)));
        Append(state, Request(body: null, close: true));

        var result = Append(state, Request("x", producer: Producer(1, 0)));

        Assert.Equal(AppendStatus.StaleEpoch, result.Status);
        Assert.Equal(2, result.ProducerEpoch);
        Assert.True(result.Closed);
    }

    [Fact]
    public void Json_bodies_are_validated()
    {
        var result = Evaluate(NewState("application/json"), Request("{oops", contentType: "application/json")).Result;

        Assert.Equal(AppendStatus.InvalidJson, result.Status);
    }

    [Fact]
    public void An_empty_json_array_is_refused_on_append()
    {
        Assert.Equal(AppendStatus.EmptyJsonArray, Evaluate(NewState("application/json"), Request("[]", contentType: "application/json")).Result.Status);
    }

    [Fact]
    public void Json_nested_deeper_than_the_limit_is_refused()
    {
        var result = Evaluate(NewState("application/json"), Request("[[[[1]]]]", contentType: "application/json"), maxDepth: 3).Result;

        Assert.Equal(AppendStatus.JsonTooDeep, result.Status);
    }

    [Fact]
    public void A_json_array_is_flattened_into_messages()
    {
        var decision = Evaluate(NewState("application/json"), Request("""[{"a":1}, {"b":2}]""", contentType: "application/json"));

        Assert.True(decision.ShouldCommit);
        Assert.Equal(["""{"a":1},""", """{"b":2},"""], Texts(decision));
    }

    [Fact]
    public void A_json_append_hands_its_values_as_uncopied_slices_of_the_body_until_messages_are_read()
    {
        // The memory store copies values straight from the body (with their commas); copying them here first would
        // copy every JSON append twice.
        var request = Request("""[{"a":1}, {"b":2}]""", contentType: "application/json");
        var decision = Evaluate(NewState("application/json"), request);

        Assert.True(decision.TryGetJsonValues(out var values));
        Assert.Equal(["""{"a":1}""", """{"b":2}"""], values.Select(v => Encoding.UTF8.GetString(v.Span)));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(request.Body, out var body));
        Assert.All(values, v => Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(v, out var slice) && slice.Array == body.Array));

        // A store that reads Messages gets the stored forms, and the values are gone.
        Assert.Equal(["""{"a":1},""", """{"b":2},"""], Texts(decision));
        Assert.False(decision.TryGetJsonValues(out _));
    }

    [Fact]
    public void Json_rules_do_not_apply_to_other_content_types()
    {
        var decision = Evaluate(NewState(), Request("{oops"));

        Assert.True(decision.ShouldCommit);
        Assert.Equal(["{oops"], Texts(decision));
    }

    [Fact]
    public void A_close_only_request_commits_no_messages()
    {
        var decision = Evaluate(NewState("application/json"), Request(body: null, contentType: null, close: true));

        Assert.True(decision.ShouldCommit);
        Assert.Empty(decision.Messages);
    }

    [Fact]
    public void Rejections_do_not_change_the_state()
    {
        var state = NewState();
        Append(state, Request("abc", streamSeq: "5", producer: Producer(1, 0)));

        Append(state, Request("x", streamSeq: "4"));
        Append(state, Request("x", producer: Producer(1, 7)));
        Append(state, Request("x", contentType: "image/png", streamSeq: "9", producer: Producer(1, 1)));

        Assert.Equal(3, state.Tail);
        Assert.Equal("5", state.LastStreamSeq);
        Assert.Equal(0, state.Producers["p1"].LastSeq);
        Assert.False(state.Closed);
    }

    [Fact]
    public void Apply_advances_the_tail_and_records_stream_seq_producer_and_closure()
    {
        var state = NewState();
        state.Tail = 10;
        var request = Request("hello", streamSeq: "s1", producer: Producer(4, 0), close: true);
        Assert.True(AppendRules.Evaluate(state, request, JsonFraming.DefaultMaxDepth).ShouldCommit);

        var result = AppendRules.Apply(state, request, 5, Now.AddMinutes(1));

        Assert.Equal(new AppendStreamResult(AppendStatus.Appended, new StreamOffset(15), Closed: true, ProducerEpoch: 4, ProducerSeq: 0), result);
        Assert.Equal(15, state.Tail);
        Assert.Equal("s1", state.LastStreamSeq);
        Assert.True(state.Closed);
        Assert.Equal(4, state.Producers["p1"].Epoch);
        Assert.Equal(0, state.Producers["p1"].LastSeq);
        Assert.Equal(Now.AddMinutes(1), state.Producers["p1"].UpdatedAt);
    }

    [Fact]
    public void A_producer_idle_for_the_retention_is_evaluated_as_new()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(4, 0)));
        var retention = TimeSpan.FromDays(7);

        var inside = AppendRules.Evaluate(state, Request(producer: Producer(0, 0)), JsonFraming.DefaultMaxDepth, Now + retention - TimeSpan.FromTicks(1), retention);
        var expiredGap = AppendRules.Evaluate(state, Request(producer: Producer(4, 1)), JsonFraming.DefaultMaxDepth, Now + retention, retention);
        var expiredFresh = AppendRules.Evaluate(state, Request(producer: Producer(0, 0)), JsonFraming.DefaultMaxDepth, Now + retention, retention);

        Assert.Equal(AppendStatus.StaleEpoch, inside.Result.Status);
        Assert.Equal(AppendStatus.SequenceGap, expiredGap.Result.Status);
        Assert.Equal(0, expiredGap.Result.ExpectedSeq);
        Assert.True(expiredFresh.ShouldCommit);
    }

    [Fact]
    public void The_producer_sweep_removes_only_expired_producers_and_at_most_once_per_period()
    {
        var state = NewState();
        var retention = TimeSpan.FromMinutes(10);
        AppendRules.Apply(state, Request(producer: Producer(0, 0, "old")), 1, Now);
        AppendRules.Apply(state, Request(producer: Producer(0, 0, "new")), 1, Now + TimeSpan.FromMinutes(5));

        var first = ProducerRules.SweepIfDue(state, Now + retention, retention);
        AppendRules.Apply(state, Request(producer: Producer(0, 0, "later")), 1, Now);
        var tooSoon = ProducerRules.SweepIfDue(state, Now + retention + TimeSpan.FromMinutes(9), retention);
        var next = ProducerRules.SweepIfDue(state, Now + retention + retention, retention);

        Assert.Equal(["old"], first);
        Assert.Null(tooSoon);
        Assert.Equal(["later", "new"], next!.Order(StringComparer.Ordinal));
        Assert.Empty(state.Producers);
    }

    [Fact]
    public void A_clone_shares_the_producer_map_and_an_apply_on_it_leaves_the_original_alone()
    {
        var state = NewState();
        Append(state, Request(producer: Producer(0, 0)));
        var copy = state.Clone();

        Assert.Same(state.Producers, copy.Producers);
        AppendRules.Apply(copy, Request(producer: Producer(0, 1)), 1, Now.AddSeconds(5));

        Assert.Equal(0, state.Producers["p1"].LastSeq);
        Assert.Equal(Now, state.Producers["p1"].UpdatedAt);
        Assert.Equal(1, copy.Producers["p1"].LastSeq);
        Assert.Equal(Now.AddSeconds(5), copy.Producers["p1"].UpdatedAt);
    }

    [Fact]
    public void Apply_without_producer_reports_no_producer_numbers()
    {
        var state = NewState();

        var result = AppendRules.Apply(state, Request("ab"), 2, Now);

        Assert.Equal(new AppendStreamResult(AppendStatus.Appended, new StreamOffset(2)), result);
        Assert.False(state.Closed);
        Assert.Null(state.LastStreamSeq);
    }
}
