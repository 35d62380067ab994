using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

public abstract partial class StreamStoreContractTests
{
    [Fact]
    public async Task Producer_appends_report_their_epoch_and_sequence()
    {
        await CreatedAsync("s");

        var result = await AppendedAsync("s", "a", producer: Producer(2, 0));

        Assert.Equal(2, result.ProducerEpoch);
        Assert.Equal(0, result.ProducerSeq);
        Assert.Equal(At(1), result.NextOffset);
    }

    [Fact]
    public async Task A_duplicate_producer_append_does_not_duplicate_data()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "a", producer: Producer(0, 0));
        await AppendedAsync("s", "b", producer: Producer(0, 1));

        var retry = await AppendAsync("s", "a", producer: Producer(0, 0));

        Assert.Equal(AppendStatus.Duplicate, retry.Status);
        Assert.Equal(0, retry.ProducerEpoch);
        Assert.Equal(1, retry.ProducerSeq);
        Assert.Equal(At(2), retry.NextOffset);
        Assert.Equal("ab", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Producer_fencing_and_gaps_are_enforced_by_the_store()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "a", producer: Producer(1, 0));

        var gap = await AppendAsync("s", "x", producer: Producer(1, 3));
        var stale = await AppendAsync("s", "x", producer: Producer(0, 0));
        var badBump = await AppendAsync("s", "x", producer: Producer(2, 1));
        var newProducerGap = await AppendAsync("s", "x", producer: Producer(0, 4, "other"));

        Assert.Equal(AppendStatus.SequenceGap, gap.Status);
        Assert.Equal(1, gap.ExpectedSeq);
        Assert.Equal(3, gap.ReceivedSeq);
        Assert.Equal(AppendStatus.StaleEpoch, stale.Status);
        Assert.Equal(1, stale.ProducerEpoch);
        Assert.Equal(AppendStatus.InvalidEpochSeq, badBump.Status);
        Assert.Equal(AppendStatus.SequenceGap, newProducerGap.Status);
        Assert.Equal(0, newProducerGap.ExpectedSeq);
        Assert.Equal("a", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Stream_seq_must_increase_per_stream()
    {
        await CreatedAsync("s");
        await CreatedAsync("t");

        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "a", streamSeq: "2")).Status);
        Assert.Equal(AppendStatus.StreamSeqConflict, (await AppendAsync("s", "b", streamSeq: "10")).Status);
        Assert.Equal(AppendStatus.StreamSeqConflict, (await AppendAsync("s", "b", streamSeq: "2")).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "c", streamSeq: "3")).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("t", "d", streamSeq: "1")).Status);
        Assert.Equal("ac", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Appending_to_a_closed_stream_is_refused_with_the_final_offset()
    {
        await CreatedAsync("s", body: "abc");
        var close = await AppendedAsync("s", "de", close: true);
        Assert.True(close.Closed);
        Assert.Equal(At(5), close.NextOffset);

        var append = await AppendAsync("s", "x");
        var appendAndClose = await AppendAsync("s", "x", close: true);

        Assert.Equal(AppendStatus.StreamClosed, append.Status);
        Assert.Equal(At(5), append.NextOffset);
        Assert.True(append.Closed);
        Assert.Equal(AppendStatus.StreamClosed, appendAndClose.Status);
        Assert.Equal("abcde", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Closing_a_closed_stream_again_is_AlreadyClosed()
    {
        await CreatedAsync("s", body: "abc");
        await AppendedAsync("s", null, contentType: null, close: true);

        var again = await AppendAsync("s", null, contentType: null, close: true);

        Assert.Equal(AppendStatus.AlreadyClosed, again.Status);
        Assert.Equal(At(3), again.NextOffset);
        Assert.True(again.Closed);
    }

    [Fact]
    public async Task A_retried_closing_append_is_a_duplicate_and_writes_nothing()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "final", producer: Producer(0, 0), close: true);

        var retry = await AppendAsync("s", "final", producer: Producer(0, 0), close: true);
        var other = await AppendAsync("s", "final", producer: Producer(0, 0, "other"), close: true);

        Assert.Equal(AppendStatus.Duplicate, retry.Status);
        Assert.True(retry.Closed);
        Assert.Equal(At(5), retry.NextOffset);
        Assert.Equal(AppendStatus.StreamClosed, other.Status);
        Assert.Equal("final", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task A_close_only_request_by_another_producer_on_a_closed_stream_is_StreamClosed()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", null, contentType: null, producer: Producer(0, 0), close: true);

        var other = await AppendAsync("s", null, contentType: null, producer: Producer(0, 0, "other"), close: true);
        var nextSeq = await AppendAsync("s", null, contentType: null, producer: Producer(0, 1), close: true);
        var retry = await AppendAsync("s", null, contentType: null, producer: Producer(0, 0), close: true);
        var plain = await AppendAsync("s", null, contentType: null, close: true);

        Assert.Equal(AppendStatus.StreamClosed, other.Status);
        Assert.True(other.Closed);
        Assert.Equal(At(0), other.NextOffset);
        Assert.Equal(AppendStatus.StreamClosed, nextSeq.Status);
        Assert.Equal(AppendStatus.Duplicate, retry.Status);
        Assert.Equal(AppendStatus.AlreadyClosed, plain.Status);
    }

    [Fact]
    public async Task Closing_without_data_keeps_the_data_and_marks_reads_closed()
    {
        await CreatedAsync("s", body: "abc");

        await AppendedAsync("s", null, close: true);
        var read = await ReadFromStartAsync("s");

        Assert.Equal("abc", TextOf(read));
        Assert.True(read.Closed);
        Assert.True((await InfoAsync("s")).Closed);
    }

    [Fact]
    public async Task A_producer_idle_for_the_retention_period_is_treated_as_new()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "a", producer: Producer(3, 0));
        Time.Advance(ProducerRetention - TimeSpan.FromSeconds(1));
        // Still known just inside the retention; the append renews it.
        await AppendedAsync("s", "b", producer: Producer(3, 1));
        Time.Advance(ProducerRetention - TimeSpan.FromSeconds(1));
        await AppendedAsync("s", "c", producer: Producer(3, 2));

        Time.Advance(ProducerRetention);
        var gap = await AppendAsync("s", "x", producer: Producer(3, 3));
        var fresh = await AppendAsync("s", "d", producer: Producer(0, 0));

        // Expired: a new producer must start at seq 0, and its old epoch no longer fences anything.
        Assert.Equal(AppendStatus.SequenceGap, gap.Status);
        Assert.Equal(0, gap.ExpectedSeq);
        Assert.Equal(AppendStatus.Appended, fresh.Status);
        Assert.Equal("abcd", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Expiry_of_one_producer_keeps_the_others_and_survives_a_restart()
    {
        await CreatedAsync("s");
        await AppendedAsync("s", "a", producer: Producer(1, 0, "idle"));
        Time.Advance(ProducerRetention / 2);
        await AppendedAsync("s", "b", producer: Producer(2, 0, "busy"));
        Time.Advance(ProducerRetention / 2);
        // The sweep forgets "idle" here (the first append after its retention).
        await AppendedAsync("s", "c", producer: Producer(2, 1, "busy"));

        await RestartAsync();

        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("s", "c", producer: Producer(2, 1, "busy"))).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "d", producer: Producer(0, 0, "idle"))).Status);
        Assert.Equal("abcd", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Every_producer_survives_a_restart()
    {
        await CreatedAsync("s");
        await CreatedAsync("t");
        for (var i = 0; i < 20; i++)
        {
            await AppendedAsync("s", "x", producer: Producer(i, 0, $"p{i}"));
            await AppendedAsync("s", "y", producer: Producer(i, 1, $"p{i}"));
        }
        var longId = new string('\u00e9', ProducerRules.MaxIdBytes / 2);
        await AppendedAsync("t", "z", producer: Producer(5, 0, longId), close: true);

        await RestartAsync();

        for (var i = 0; i < 20; i++)
        {
            var retry = await AppendAsync("s", "y", producer: Producer(i, 1, $"p{i}"));
            Assert.Equal(AppendStatus.Duplicate, retry.Status);
            Assert.Equal(i, retry.ProducerEpoch);
            Assert.Equal(1, retry.ProducerSeq);
            if (i > 0)
            {
                Assert.Equal(AppendStatus.StaleEpoch, (await AppendAsync("s", "y", producer: Producer(i - 1, 9, $"p{i}"))).Status);
            }
        }
        var closeRetry = await AppendAsync("t", "z", producer: Producer(5, 0, longId), close: true);
        Assert.Equal(AppendStatus.Duplicate, closeRetry.Status);
        Assert.True(closeRetry.Closed);
        Assert.Equal(40, (await ReadTextAsync("s")).Length);
    }
}
