using System.Text;
using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Testing;

/// <summary>
/// Retention (issue 18) through <see cref="IStreamRetention"/>: where the retained start moves, what reads below and
/// above it answer, forks, restarts. Stores get their policy table through <see cref="StoreLimits.Retention"/> (it
/// decides which streams record append times); each pass applies the policy it is given, as the retention job does.
/// </summary>
public abstract partial class StreamStoreContractTests
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    /// <summary>Keeps the last <paramref name="bytes"/> bytes.</summary>
    private static RetentionPolicy MaxBytes(long bytes) => new(null, bytes);

    /// <summary>Keeps what is younger than <paramref name="age"/>.</summary>
    private static RetentionPolicy MaxAge(TimeSpan age) => new(age, null);

    /// <summary>Replaces the (still empty) store with one whose policy table is <paramref name="rules"/>, then the default.</summary>
    private Task UseRetentionAsync(RetentionPolicy fallback, params RetentionRule[] rules) =>
        UseLimitsAsync(Limits with { Retention = new RetentionPolicies(rules, fallback) });

    private async Task<RetentionResult> RetainAsync(string name, RetentionPolicy policy)
    {
        var store = Assert.IsAssignableFrom<IStreamRetention>(Store);
        return await store.ApplyRetentionAsync(name, policy, Ct);
    }

    /// <summary>Applies <paramref name="policy"/> and asserts the start moved to <paramref name="start"/>.</summary>
    private async Task<RetentionResult> TrimmedAsync(string name, RetentionPolicy policy, long start)
    {
        var result = await RetainAsync(name, policy);
        Assert.Equal(RetentionStatus.Trimmed, result.Status);
        Assert.Equal(At(start), result.RetainedStart);
        Assert.True(result.BytesFreed >= 0);
        return result;
    }

    /// <summary>Asserts a read at <paramref name="position"/> is refused as below the retained <paramref name="start"/>.</summary>
    private async Task AssertBeforeStartAsync(string name, long position, long start)
    {
        var read = await ReadAsync(name, position);
        Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
        Assert.NotNull(read.Info);
        Assert.Equal(At(start), read.Info.RetainedStart);
        Assert.Empty(read.Chunks);
    }

    /// <summary>A binary stream of three four-byte appends: boundaries 0, 4, 8, 12.</summary>
    private async Task ThreeAppendsAsync(string name = "s")
    {
        await CreatedAsync(name, Binary);
        await AppendedAsync(name, "aaaa", Binary);
        await AppendedAsync(name, "bbbb", Binary);
        await AppendedAsync(name, "cccc", Binary);
    }

    [Fact]
    public async Task Retention_by_size_moves_the_start_up_to_the_next_append_start()
    {
        await UseRetentionAsync(MaxBytes(6));
        await ThreeAppendsAsync();

        // The last six bytes begin inside "bbbb": the start rounds up to the next append, so at most six are kept.
        var result = await TrimmedAsync("s", MaxBytes(6), 8);

        Assert.Equal(8, result.BytesDropped);
        Assert.Equal(At(8), (await InfoAsync("s")).RetainedStart);
        var read = await ReadFromStartAsync("s");
        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Equal(At(8), read.Start);
        Assert.Equal("cccc", TextOf(read));
        Assert.True(read.UpToDate);
    }

    [Fact]
    public async Task Retention_by_size_on_an_append_start_keeps_exactly_the_bound()
    {
        await UseRetentionAsync(MaxBytes(8));
        await ThreeAppendsAsync();

        await TrimmedAsync("s", MaxBytes(8), 4);

        Assert.Equal("bbbbcccc", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Retention_never_splits_a_json_message_even_inside_one_append()
    {
        await UseRetentionAsync(MaxBytes(5));
        await CreatedAsync("j", Json);
        // One append of three messages: every message start is a boundary, not only the append's.
        await AppendedAsync("j", "[1,22,333]", Json);
        var third = "1,".Length + "22,".Length;
        var tail = (await InfoAsync("j")).Tail.Position;

        // The last (tail - 3) bytes begin inside "22,": the start rounds up to the third message.
        var result = await RetainAsync("j", MaxBytes(tail - "1,".Length - 1));

        Assert.Equal(RetentionStatus.Trimmed, result.Status);
        Assert.Equal(At(third), result.RetainedStart);
        Assert.Equal("[333]", await ReadJsonAsync("j"));
        Assert.Equal("[333]", await ReadJsonAsync("j", third));
        await AssertBeforeStartAsync("j", "1,".Length, third);
    }

    [Fact]
    public async Task A_read_below_the_retained_start_is_refused_with_where_data_starts()
    {
        await UseRetentionAsync(MaxBytes(4));
        await ThreeAppendsAsync();
        await TrimmedAsync("s", MaxBytes(4), 8);

        await AssertBeforeStartAsync("s", 0, 8);
        await AssertBeforeStartAsync("s", 4, 8);
        await AssertBeforeStartAsync("s", 7, 8);
        Assert.Equal(ReadStatus.OffsetBeyondTail, (await ReadAsync("s", 13)).Status);
        // "now" is the tail, as before.
        var now = await ReadAsync("s", OffsetQuery.Now);
        Assert.Equal(ReadStatus.Ok, now.Status);
        Assert.Equal(At(12), now.Start);
    }

    [Fact]
    public async Task Reads_above_a_partial_trim_return_the_same_bytes_and_offsets()
    {
        await UseRetentionAsync(MaxBytes(8));
        await ThreeAppendsAsync();
        await AppendedAsync("s", "dddd", Binary);
        var before = new List<(long Position, string Text, StreamOffset Next)>();
        foreach (var position in new long[] { 8, 10, 12, 14 })
        {
            var read = await ReadAsync("s", position, maxBytes: 3);
            before.Add((position, TextOf(read), read.Next));
        }

        await TrimmedAsync("s", MaxBytes(8), 8);

        foreach (var (position, text, next) in before)
        {
            var read = await ReadAsync("s", position, maxBytes: 3);
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.Equal(text, TextOf(read));
            Assert.Equal(next, read.Next);
        }
    }

    [Fact]
    public async Task A_second_pass_with_the_same_policy_changes_nothing_and_the_start_never_moves_back()
    {
        await UseRetentionAsync(MaxBytes(4));
        await ThreeAppendsAsync();
        await TrimmedAsync("s", MaxBytes(4), 8);

        var again = await RetainAsync("s", MaxBytes(4));
        var looser = await RetainAsync("s", MaxBytes(100));
        var keepAll = await RetainAsync("s", RetentionPolicy.KeepAll);

        foreach (var result in new[] { again, looser, keepAll })
        {
            Assert.Equal(RetentionStatus.Unchanged, result.Status);
            Assert.Equal(At(8), result.RetainedStart);
            Assert.Equal(0, result.BytesDropped);
        }
        Assert.Equal(At(8), (await InfoAsync("s")).RetainedStart);
        Assert.Equal("cccc", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task KeepAll_and_a_bound_the_stream_is_within_leave_it_unchanged()
    {
        await ThreeAppendsAsync();

        var keepAll = await RetainAsync("s", RetentionPolicy.KeepAll);
        var within = await RetainAsync("s", MaxBytes(12));

        Assert.Equal(new RetentionResult(RetentionStatus.Unchanged, StreamOffset.Zero), keepAll);
        Assert.Equal(new RetentionResult(RetentionStatus.Unchanged, StreamOffset.Zero), within);
        Assert.Equal(StreamOffset.Zero, (await InfoAsync("s")).RetainedStart);
        Assert.Equal("aaaabbbbcccc", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Retention_of_a_missing_or_deleted_stream_is_NotFound()
    {
        await UseRetentionAsync(MaxBytes(1));
        await ThreeAppendsAsync("gone");
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("gone"));

        Assert.Equal(RetentionStatus.NotFound, (await RetainAsync("missing", MaxBytes(1))).Status);
        Assert.Equal(RetentionStatus.NotFound, (await RetainAsync("gone", MaxBytes(1))).Status);
    }

    [Fact]
    public async Task Metadata_of_a_stream_nothing_was_dropped_from_shows_a_retained_start_of_zero()
    {
        await UseRetentionAsync(MaxBytes(100));
        await ThreeAppendsAsync();

        Assert.Equal(StreamOffset.Zero, (await InfoAsync("s")).RetainedStart);
        Assert.Equal(RetentionStatus.Unchanged, (await RetainAsync("s", MaxBytes(100))).Status);
        Assert.Equal(StreamOffset.Zero, (await InfoAsync("s")).RetainedStart);
    }

    [Fact]
    public async Task Retention_by_age_drops_what_was_appended_before_the_cutoff()
    {
        await UseRetentionAsync(MaxAge(Hour));
        await CreatedAsync("s", Binary);
        foreach (var body in new[] { "aaaa", "bbbb", "cccc", "dddd" })
        {
            await AppendedAsync("s", body, Binary);
            Time.Advance(TimeSpan.FromMinutes(10));
        }
        // Appends at 0, 10, 20 and 30 minutes; now is 40 minutes.
        Assert.Equal(RetentionStatus.Unchanged, (await RetainAsync("s", MaxAge(Hour))).Status);

        // At 85 minutes the cutoff is 25: "cccc" started at 20 but is known to be old only up to the next append's start.
        Time.Advance(TimeSpan.FromMinutes(45));
        var result = await TrimmedAsync("s", MaxAge(Hour), 8);

        Assert.Equal(8, result.BytesDropped);
        Assert.Equal("ccccdddd", await ReadTextAsync("s"));
        await AssertBeforeStartAsync("s", 4, 8);
    }

    [Fact]
    public async Task When_everything_is_older_than_the_bound_the_start_moves_to_the_tail_and_appends_continue_at_the_same_offsets()
    {
        await UseRetentionAsync(MaxAge(Hour));
        await ThreeAppendsAsync();
        Time.Advance(Hour + TimeSpan.FromSeconds(1));

        var result = await TrimmedAsync("s", MaxAge(Hour), 12);

        Assert.Equal(12, result.BytesDropped);
        var empty = await ReadFromStartAsync("s");
        Assert.Equal(ReadStatus.Ok, empty.Status);
        Assert.Equal(At(12), empty.Start);
        Assert.Equal(At(12), empty.Next);
        Assert.True(empty.UpToDate);
        Assert.Equal(0, empty.Length);

        var appended = await AppendedAsync("s", "dd", Binary);

        Assert.Equal(At(14), appended.NextOffset);
        var read = await ReadFromStartAsync("s");
        Assert.Equal(At(12), read.Start);
        Assert.Equal("dd", TextOf(read));
        Assert.Equal("dd", TextOf(await ReadAsync("s", 12)));
        await AssertBeforeStartAsync("s", 0, 12);
        // The new append is young: nothing more is old.
        Assert.Equal(RetentionStatus.Unchanged, (await RetainAsync("s", MaxAge(Hour))).Status);
    }

    [Fact]
    public async Task A_body_given_at_create_ages_like_an_append()
    {
        await UseRetentionAsync(MaxAge(Hour));
        await CreatedAsync("s", TextPlain, body: "abc");
        Time.Advance(Hour - TimeSpan.FromSeconds(1));
        Assert.Equal(RetentionStatus.Unchanged, (await RetainAsync("s", MaxAge(Hour))).Status);

        Time.Advance(TimeSpan.FromSeconds(1));
        await TrimmedAsync("s", MaxAge(Hour), 3);

        Assert.Equal(0, (await ReadFromStartAsync("s")).Length);
    }

    [Fact]
    public async Task A_forks_inherited_range_ages_from_the_forks_creation()
    {
        await UseRetentionAsync(MaxAge(Hour));
        await ThreeAppendsAsync("src");
        Time.Advance(TimeSpan.FromMinutes(30));
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        Time.Advance(TimeSpan.FromMinutes(10));
        await AppendedAsync("fork", "dd", Binary);

        // At 95 minutes the fork (created at 30) is older than the bound: what it inherited is at least as old.
        Time.Advance(TimeSpan.FromMinutes(55));
        await TrimmedAsync("fork", MaxAge(Hour), 12);

        Assert.Equal("dd", await ReadTextAsync("fork"));
        Assert.Equal("aaaabbbbcccc", await ReadTextAsync("src"));
    }

    [Fact]
    public async Task Age_and_size_bounds_together_keep_the_smaller_suffix()
    {
        var both = new RetentionPolicy(Hour, 12);
        await UseRetentionAsync(both);
        await CreatedAsync("s", Binary);
        foreach (var body in new[] { "aaaa", "bbbb", "cccc", "dddd" })
        {
            Time.Advance(TimeSpan.FromMinutes(10));
            await AppendedAsync("s", body, Binary);
        }
        // Appends at 10, 20, 30 and 40 minutes. Size alone: keep the last twelve bytes.
        await TrimmedAsync("s", both, 4);

        // At 95 minutes the cutoff is 35: age allows more than size, up to the start of "cccc" (appended at 30, but
        // known to be old only up to where the next append, at 40, began).
        Time.Advance(TimeSpan.FromMinutes(55));
        await TrimmedAsync("s", both, 8);
        Assert.Equal("ccccdddd", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task An_age_bound_drops_nothing_from_streams_the_store_has_no_age_policy_for()
    {
        // Only "aged/**" has an age policy, so only those streams record append times.
        await UseRetentionAsync(RetentionPolicy.KeepAll, new RetentionRule("aged/**", MaxAge(Hour)));
        await ThreeAppendsAsync("aged/s");
        await ThreeAppendsAsync("plain");
        Time.Advance(2 * Hour);

        await TrimmedAsync("aged/s", MaxAge(Hour), 12);
        var plain = await RetainAsync("plain", MaxAge(Hour));

        Assert.Equal(RetentionStatus.Unchanged, plain.Status);
        Assert.Equal("aaaabbbbcccc", await ReadTextAsync("plain"));
    }

    [Fact]
    public async Task A_closed_stream_is_trimmed_and_still_reads_as_closed()
    {
        await UseRetentionAsync(MaxAge(Hour));
        await ThreeAppendsAsync();
        await AppendedAsync("s", null, Binary, close: true);

        await TrimmedAsync("s", MaxBytes(4), 8);
        var partial = await ReadFromStartAsync("s");
        Assert.Equal("cccc", TextOf(partial));
        Assert.True(partial.Closed);

        Time.Advance(2 * Hour);
        await TrimmedAsync("s", MaxAge(Hour), 12);

        var info = await InfoAsync("s");
        Assert.True(info.Closed);
        Assert.Equal(At(12), info.RetainedStart);
        var empty = await ReadFromStartAsync("s");
        Assert.Equal(ReadStatus.Ok, empty.Status);
        Assert.Equal(0, empty.Length);
        Assert.True(empty.Closed);
        Assert.True(empty.UpToDate);
        Assert.Equal(AppendStatus.StreamClosed, (await AppendAsync("s", "x", Binary)).Status);
    }

    [Fact]
    public async Task The_retained_start_survives_a_restart_and_never_moves_back()
    {
        await UseRetentionAsync(MaxBytes(4));
        await ThreeAppendsAsync();
        await CreatedAsync("j", Json, body: "[1,22,333]");
        var third = "1,".Length + "22,".Length;
        await TrimmedAsync("s", MaxBytes(4), 8);
        await TrimmedAsync("j", MaxBytes(4), third);

        await RestartAsync();

        Assert.Equal(At(8), (await InfoAsync("s")).RetainedStart);
        await AssertBeforeStartAsync("s", 0, 8);
        Assert.Equal("cccc", await ReadTextAsync("s"));
        Assert.Equal("[333]", await ReadJsonAsync("j"));
        await AssertBeforeStartAsync("j", 0, third);
        Assert.Equal(RetentionStatus.Unchanged, (await RetainAsync("s", MaxBytes(4))).Status);
        Assert.Equal(RetentionStatus.Unchanged, (await RetainAsync("s", MaxBytes(100))).Status);

        // Appends after the restart continue at the same offsets and trim from there.
        Assert.Equal(At(16), (await AppendedAsync("s", "dddd", Binary)).NextOffset);
        await TrimmedAsync("s", MaxBytes(4), 12);
        await RestartAsync();
        Assert.Equal("dddd", await ReadTextAsync("s"));
        await AssertBeforeStartAsync("s", 8, 12);
    }

    [Fact]
    public async Task A_forks_first_append_long_after_its_creation_is_not_aged_from_the_creation_after_a_restart()
    {
        await UseRetentionAsync(MaxAge(Hour));
        await ThreeAppendsAsync("src");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        // The fork's creation time is sampled at its fork position; its first append, at that same position, comes
        // 40 minutes later (more than a sample interval), so its time must be known after a restart too.
        Time.Advance(TimeSpan.FromMinutes(40));
        await AppendedAsync("fork", "dd", Binary);

        await RestartAsync();
        // At 80 minutes the append is 40 minutes old: it stays, whatever the inherited range's age.
        Time.Advance(TimeSpan.FromMinutes(40));
        // (A store that keeps one sample per position may age the inherited range from the append: kept longer.)
        var result = await RetainAsync("fork", MaxAge(Hour));
        Assert.True(result.Status == RetentionStatus.Unchanged || (result.Status == RetentionStatus.Trimmed && result.RetainedStart == At(12)), $"{result.Status} to {result.RetainedStart}");
        Assert.EndsWith("dd", await ReadTextAsync("fork"), StringComparison.Ordinal);
        Assert.Equal("aaaabbbbcccc", await ReadTextAsync("src"));
    }

    [Fact]
    public async Task Append_times_survive_a_restart()
    {
        await UseRetentionAsync(MaxAge(Hour));
        await CreatedAsync("s", Binary);
        await AppendedAsync("s", "aaaa", Binary);
        Time.Advance(TimeSpan.FromMinutes(30));
        await AppendedAsync("s", "bbbb", Binary);
        Time.Advance(TimeSpan.FromMinutes(30));
        await AppendedAsync("s", "cccc", Binary);

        await RestartAsync();
        // Now 100 minutes: the cutoff (40) has passed the first two appends' samples, not the third's.
        Time.Advance(TimeSpan.FromMinutes(40));
        await TrimmedAsync("s", MaxAge(Hour), 4);
        // Now 161 minutes: everything is old.
        Time.Advance(TimeSpan.FromMinutes(61));
        await TrimmedAsync("s", MaxAge(Hour), 12);
        Assert.Equal(0, (await ReadFromStartAsync("s")).Length);
    }

    [Fact]
    public async Task A_fork_reading_an_inherited_range_its_source_dropped_is_refused()
    {
        await UseRetentionAsync(MaxBytes(4));
        await ThreeAppendsAsync("src");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        await AppendedAsync("fork", "dd", Binary);

        await TrimmedAsync("src", MaxBytes(4), 8);

        // The fork's effective start is the source's, below the fork position.
        Assert.Equal(At(8), (await InfoAsync("fork")).RetainedStart);
        await AssertBeforeStartAsync("fork", 0, 8);
        await AssertBeforeStartAsync("fork", 4, 8);
        var read = await ReadFromStartAsync("fork");
        Assert.Equal(At(8), read.Start);
        Assert.Equal("ccccdd", TextOf(read));
        Assert.Equal("dd", TextOf(await ReadAsync("fork", 12)));
    }

    [Fact]
    public async Task A_fork_below_whose_position_the_source_dropped_everything_starts_at_its_fork_position()
    {
        await UseRetentionAsync(MaxBytes(4));
        await ThreeAppendsAsync("src");
        await CreatedAsync("early", contentType: null, fork: ForkOf("src", 4));
        await AppendedAsync("early", "xy", Binary);

        await TrimmedAsync("src", MaxBytes(4), 8);

        Assert.Equal(At(4), (await InfoAsync("early")).RetainedStart);
        await AssertBeforeStartAsync("early", 0, 4);
        Assert.Equal("xy", await ReadTextAsync("early"));
        // The source's own reads are untouched by the fork.
        Assert.Equal("cccc", await ReadTextAsync("src"));
    }

    [Fact]
    public async Task Forking_a_trimmed_source_below_or_above_its_retained_start_is_allowed()
    {
        await UseRetentionAsync(MaxBytes(4));
        await ThreeAppendsAsync("src");
        await TrimmedAsync("src", MaxBytes(4), 8);

        var below = await CreatedAsync("below", contentType: null, fork: ForkOf("src", 4));
        var atTail = await CreatedAsync("tail", contentType: null, fork: ForkOf("src"));

        Assert.Equal(At(4), below.Tail);
        Assert.Equal(At(4), below.RetainedStart);
        Assert.Equal(0, (await ReadFromStartAsync("below")).Length);
        await AssertBeforeStartAsync("below", 0, 4);
        Assert.Equal(At(12), atTail.Tail);
        Assert.Equal(At(8), atTail.RetainedStart);
        Assert.Equal("cccc", await ReadTextAsync("tail"));
        await AssertBeforeStartAsync("tail", 4, 8);
    }

    [Fact]
    public async Task A_json_stream_forked_below_its_retained_start_at_any_offset_inherits_nothing_readable()
    {
        await UseRetentionAsync(MaxBytes(8));
        await CreatedAsync("j", Json);
        // Four four-byte messages ("a", plus the stored separator): boundaries 0, 4, 8, 12, tail 16.
        await AppendedAsync("j", """["a","b","c","d"]""", Json);
        await TrimmedAsync("j", MaxBytes(8), 8);

        // Below the retained start alignment cannot be checked any more: 4 started a message before the trim, 6 did
        // not, and both are accepted (the inherited part is gone either way; the fork's own appends start there).
        var aligned = await CreatedAsync("aligned", Json, fork: ForkOf("j", 4));
        var inside = await CreatedAsync("inside", Json, fork: ForkOf("j", 6));
        // A sub-offset counts the dropped range as one message: 2 + 1 lands on the start, 2 + 2 one message past it.
        var one = await CreatedAsync("one", Json, fork: ForkOf("j", 2, subOffset: 1));
        var two = await CreatedAsync("two", Json, fork: ForkOf("j", 2, subOffset: 2));
        // At or above the start the check still applies.
        Assert.Equal(CreateStatus.ForkOffsetUnaligned, (await CreateAsync("above", Json, fork: ForkOf("j", 10))).Status);

        Assert.Equal((At(4), At(4)), (aligned.Tail, aligned.RetainedStart));
        Assert.Equal((At(6), At(6)), (inside.Tail, inside.RetainedStart));
        Assert.Equal((At(8), At(8)), (one.Tail, one.RetainedStart));
        Assert.Equal((At(12), At(8)), (two.Tail, two.RetainedStart));
        await AppendedAsync("inside", """["own"]""", Json);
        Assert.Equal(At(6), (await InfoAsync("inside")).RetainedStart);
        var own = await ReadFromStartAsync("inside");
        Assert.Equal(ReadStatus.Ok, own.Status);
        Assert.Equal((At(6), """["own"]"""), (own.Start, JsonOf(own)));
        Assert.Equal("""["own"]""", await ReadJsonAsync("inside", 6));
        await AssertBeforeStartAsync("inside", 0, 6);
        await AssertBeforeStartAsync("inside", 4, 6);
        var empty = await ReadFromStartAsync("aligned");
        Assert.Equal((ReadStatus.Ok, At(4), 0), (empty.Status, empty.Start, empty.Length));
        await AssertBeforeStartAsync("aligned", 0, 4);
        Assert.Equal("""["c"]""", await ReadJsonAsync("two"));
        await AssertBeforeStartAsync("two", 4, 8);
        // The source reads as before.
        Assert.Equal("""["c","d"]""", await ReadJsonAsync("j"));
    }

    [Fact]
    public async Task A_forks_own_trim_moves_only_the_forks_start()
    {
        await UseRetentionAsync(MaxBytes(6));
        await ThreeAppendsAsync("src");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        await AppendedAsync("fork", "dddd", Binary);
        await AppendedAsync("fork", "eeee", Binary);

        // Own data only: the last six bytes start inside "dddd", so the start rounds up to "eeee".
        await TrimmedAsync("fork", MaxBytes(6), 16);

        Assert.Equal(At(16), (await InfoAsync("fork")).RetainedStart);
        Assert.Equal("eeee", await ReadTextAsync("fork"));
        Assert.Equal(StreamOffset.Zero, (await InfoAsync("src")).RetainedStart);
        Assert.Equal("aaaabbbbcccc", await ReadTextAsync("src"));
    }

    [Fact]
    public async Task A_forks_own_trim_into_its_inherited_range_stops_at_a_source_boundary_and_leaves_the_source_alone()
    {
        await UseRetentionAsync(MaxBytes(8));
        await ThreeAppendsAsync("src");
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        await AppendedAsync("fork", "dd", Binary);

        // The last eight bytes start inside the source's "bbbb" (at 6): the start rounds up to "cccc".
        await TrimmedAsync("fork", MaxBytes(8), 8);

        Assert.Equal("ccccdd", await ReadTextAsync("fork"));
        await AssertBeforeStartAsync("fork", 4, 8);
        Assert.Equal("aaaabbbbcccc", await ReadTextAsync("src"));
        // A later source trim past the fork's own start moves the fork's effective start with it.
        await TrimmedAsync("src", MaxBytes(2), 12);
        Assert.Equal(At(12), (await InfoAsync("fork")).RetainedStart);
        Assert.Equal("dd", await ReadTextAsync("fork"));
    }

    [Fact]
    public async Task ReadInto_below_the_retained_start_is_refused_and_above_it_reads_the_same_bytes()
    {
        await UseRetentionAsync(MaxBytes(4));
        await CreatedAsync("d", Binary);
        var data = await AppendPiecesAsync("d", 100, 50, 30);
        await TrimmedAsync("d", MaxBytes(40), 150);
        await CreatedAsync("fork", Binary, fork: ForkOf("d"));

        foreach (var store in DirectAndFallback)
        {
            foreach (var name in new[] { "d", "fork" })
            {
                Assert.Equal(ReadStatus.BeforeRetainedStart, await store.ReadIntoAsync(name, 0, new byte[10], Ct));
                Assert.Equal(ReadStatus.BeforeRetainedStart, await store.ReadIntoAsync(name, 149, new byte[1], Ct));
                // A range that straddles the start is refused too.
                Assert.Equal(ReadStatus.BeforeRetainedStart, await store.ReadIntoAsync(name, 140, new byte[20], Ct));
                var destination = new byte[25];
                Assert.Equal(ReadStatus.Ok, await store.ReadIntoAsync(name, 152, destination, Ct));
                Assert.Equal(data.AsSpan(152, 25).ToArray(), destination);
            }
        }
    }

    [Fact]
    public async Task A_live_wait_at_the_tail_is_not_woken_by_trims_and_wakes_on_the_next_append()
    {
        await UseRetentionAsync(MaxBytes(4));
        await ThreeAppendsAsync();
        var wait = Store.WaitAsync("s", At(12), WaitTimeout, Ct).AsTask();

        await TrimmedAsync("s", MaxBytes(4), 8);
        // Everything dropped: the start is the tail the reader waits at.
        await TrimmedAsync("s", MaxBytes(0), 12);

        Assert.False(wait.IsCompleted);
        await AppendedAsync("s", "dd", Binary);
        Assert.Equal(WaitOutcome.Changed, await Promptly(wait));
        var read = await ReadAsync("s", 12);
        Assert.Equal("dd", TextOf(read));
        Assert.True(read.UpToDate);
    }

    [Fact]
    public async Task Appends_racing_retention_passes_keep_a_contiguous_suffix()
    {
        await UseRetentionAsync(MaxBytes(64), new RetentionRule("**", MaxBytes(64)));
        await CreatedAsync("s", Binary);
        var all = new StringBuilder();
        for (var i = 0; i < 200; i++)
        {
            all.Append(System.Globalization.CultureInfo.InvariantCulture, $"<{i:D4}>");
        }
        var appends = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await AppendedAsync("s", $"<{i:D4}>", Binary);
            }
        }, Ct);
        var passes = Task.Run(async () =>
        {
            while (!appends.IsCompleted)
            {
                var result = await RetainAsync("s", MaxBytes(64));
                Assert.NotEqual(RetentionStatus.NotFound, result.Status);
                var read = await ReadFromStartAsync("s");
                if (read.Status == ReadStatus.Ok)
                {
                    // Every append is six bytes at a multiple of six: the start is always one of them.
                    Assert.Equal(0, read.Start.Position % 6);
                    Assert.Equal(all.ToString((int)read.Start.Position, (int)read.Length), TextOf(read));
                }
                else
                {
                    // The start moved between the read's resolve and its gather: a refusal, never other bytes.
                    Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
                }
            }
        }, Ct);
        await Task.WhenAll(appends, passes).WaitAsync(HangGuard, Ct);

        await RetainAsync("s", MaxBytes(64));
        var final = await ReadFromStartAsync("s");
        Assert.Equal(1200, final.Next.Position);
        Assert.Equal(60, final.Length);
        Assert.Equal(all.ToString(1140, 60), TextOf(final));
    }
}
