using System.Text;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Storage;

public sealed class CreateRulesTests
{
    private static readonly DateTimeOffset Now = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly CreateLimits Limits = new(MaxJsonDepth: 8, MaxMessages: 3, MaxForkDepth: 2);
    private static readonly StoredStreamInfo Info = new("s", 1, "text/plain", new StreamOffset(5), false, null, null, Now);

    private static CreateStreamRequest Request(
        string? body = null,
        string? contentType = "text/plain",
        long? ttl = null,
        DateTimeOffset? expiresAt = null,
        bool closed = false,
        ForkRequest? fork = null) => new()
        {
            Body = body is null ? ReadOnlyMemory<byte>.Empty : Encoding.UTF8.GetBytes(body),
            ContentType = contentType,
            TtlSeconds = ttl,
            ExpiresAt = expiresAt,
            Closed = closed,
            Fork = fork,
        };

    private static ExistingStream Existing(bool softDeleted = false, bool expired = false, bool closed = false, string contentType = "text/plain") =>
        new(softDeleted, expired, new StreamConfiguration(contentType, null, null, null, null, 0), closed, Info);

    private static ForkSource Source(
        bool softDeleted = false, bool expired = false, string contentType = "text/plain", int depth = 0, long tail = 10,
        long? ttl = null, DateTimeOffset? expiresAt = null) =>
        new(softDeleted, expired, contentType, depth, tail, ttl, expiresAt);

    private static ForkRequest Fork(long? offset = null, long subOffset = 0) =>
        new("src", offset is { } o ? new StreamOffset(o) : null, subOffset);

    /// <summary>A source whose messages start at 0, 4 and 7, with its tail at 10.</summary>
    private readonly struct Messages : IStreamBoundaries
    {
        private static readonly long[] Starts = [0, 4, 7, 10];

        public bool IsBoundary(long position) => Array.IndexOf(Starts, position) >= 0;

        public long NextBoundary(long position) => Starts.FirstOrDefault(s => s > position, 10);
    }

    private static CreateDecision Evaluate(CreateStreamRequest request, ForkSource? source = null) =>
        CreateRules.Evaluate(request, source, default(Messages), Limits, Now);

    private static string[] Texts(CreateDecision decision) => [.. decision.Messages.Select(m => Encoding.UTF8.GetString(m.Span))];

    [Fact]
    public void A_soft_deleted_stream_keeps_its_name()
    {
        var answer = CreateRules.CheckExisting(Request(), Existing(softDeleted: true, expired: true), out var expire);

        Assert.Equal(CreateStatus.SoftDeleted, answer?.Status);
        Assert.False(expire);
    }

    [Fact]
    public void An_expired_stream_frees_its_name_and_is_expired_first()
    {
        var answer = CreateRules.CheckExisting(Request(contentType: "application/json"), Existing(expired: true), out var expire);

        Assert.Null(answer);
        Assert.True(expire);
    }

    [Fact]
    public void A_put_that_restates_the_configuration_finds_the_stream()
    {
        var answer = CreateRules.CheckExisting(Request(), Existing(), out var expire);

        Assert.Equal(new CreateStreamResult(CreateStatus.AlreadyExists, Info), answer);
        Assert.False(expire);
    }

    [Fact]
    public void A_put_with_another_configuration_conflicts()
    {
        Assert.Equal(CreateStatus.ConfigurationConflict, CreateRules.CheckExisting(Request(contentType: "application/json"), Existing(), out _)?.Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, CreateRules.CheckExisting(Request(ttl: 60), Existing(), out _)?.Status);
    }

    [Fact]
    public void The_closure_of_a_repeated_put_is_compared_with_the_stream_as_it_is_now()
    {
        Assert.Equal(CreateStatus.AlreadyExists, CreateRules.CheckExisting(Request(closed: true), Existing(closed: true), out _)?.Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, CreateRules.CheckExisting(Request(), Existing(closed: true), out _)?.Status);
    }

    [Fact]
    public void A_plain_stream_is_created_with_the_requested_configuration_and_its_body()
    {
        var expiresAt = Now.AddHours(1);
        var decision = CreateRules.Evaluate(Request("hello", ttl: null, expiresAt: expiresAt, closed: true), Limits, Now);

        Assert.True(decision.ShouldCreate);
        Assert.False(decision.ExpireSource);
        Assert.Equal(new CreateStreamResult(CreateStatus.Created), decision.Result);
        Assert.Equal(0, decision.ForkPosition);
        Assert.Equal(["hello"], Texts(decision));
        var state = decision.State;
        Assert.Equal("text/plain", state.ContentType);
        Assert.Equal(expiresAt, state.ExpiresAt);
        Assert.Null(state.TtlSeconds);
        Assert.Equal(Now, state.CreatedAt);
        Assert.Equal(5, state.Tail);
        Assert.True(state.Closed);
        Assert.Equal(new StreamConfiguration("text/plain", null, expiresAt, null, null, 0), state.Requested);
    }

    [Fact]
    public void A_stream_without_content_type_gets_the_default()
    {
        var decision = CreateRules.Evaluate(Request(contentType: null), Limits, Now);

        Assert.Equal(ContentTypes.Default, decision.State?.ContentType);
        Assert.Empty(decision.Messages);
        Assert.Equal(0, decision.State?.Tail);
    }

    [Fact]
    public void A_json_body_is_stored_one_message_per_value()
    {
        var decision = CreateRules.Evaluate(Request("[1,{\"a\":2}]", contentType: "application/json"), Limits, Now);

        // Stored form: each value followed by a comma, so the stream's bytes concatenate into a JSON array body.
        Assert.Equal(["1,", "{\"a\":2},"], Texts(decision));
        Assert.Equal(10, decision.State?.Tail);
    }

    [Theory]
    [InlineData("[1,", CreateStatus.InvalidJson, null)]
    [InlineData("[[[[[[[[[[1]]]]]]]]]]", CreateStatus.JsonTooDeep, null)]
    [InlineData("[1,2,3,4]", CreateStatus.TooManyMessages, 3L)]
    public void A_bad_json_body_is_refused_whole(string body, CreateStatus status, long? limit)
    {
        var decision = CreateRules.Evaluate(Request(body, contentType: "application/json"), Limits, Now);

        Assert.False(decision.ShouldCreate);
        Assert.Equal(new CreateStreamResult(status, Limit: limit), decision.Result);
        Assert.Null(decision.State);
        Assert.Empty(decision.Messages);
    }

    [Fact]
    public void A_fork_of_no_stream_finds_no_source()
    {
        var decision = Evaluate(Request(fork: Fork()), source: null);

        Assert.Equal(CreateStatus.SourceNotFound, decision.Result.Status);
        Assert.False(decision.ExpireSource);
    }

    [Fact]
    public void A_fork_of_an_expired_stream_finds_no_source_and_expires_it()
    {
        var decision = Evaluate(Request(fork: Fork()), Source(expired: true));

        Assert.Equal(CreateStatus.SourceNotFound, decision.Result.Status);
        Assert.True(decision.ExpireSource);
    }

    [Fact]
    public void A_fork_of_a_soft_deleted_stream_is_refused_even_when_its_expiry_passed()
    {
        var decision = Evaluate(Request(fork: Fork()), Source(softDeleted: true, expired: true));

        Assert.Equal(CreateStatus.SourceSoftDeleted, decision.Result.Status);
        Assert.False(decision.ExpireSource);
    }

    [Fact]
    public void A_fork_naming_another_content_type_is_refused()
    {
        var decision = Evaluate(Request(contentType: "application/json", fork: Fork()), Source());

        Assert.Equal(CreateStatus.SourceContentTypeMismatch, decision.Result.Status);
    }

    [Fact]
    public void A_fork_deeper_than_the_limit_is_refused_with_the_limit()
    {
        Assert.True(Evaluate(Request(fork: Fork()), Source(depth: 1)).ShouldCreate);

        var decision = Evaluate(Request(fork: Fork()), Source(depth: 2));

        Assert.Equal(new CreateStreamResult(CreateStatus.ForkTooDeep, Limit: 2), decision.Result);
    }

    [Theory]
    [InlineData(11L, 0L, CreateStatus.ForkOffsetBeyondTail)]
    [InlineData(5L, 0L, CreateStatus.ForkOffsetUnaligned)]
    [InlineData(7L, 2L, CreateStatus.SubOffsetOutOfRange)]
    public void A_json_fork_position_off_the_source_is_refused(long offset, long subOffset, CreateStatus status)
    {
        var decision = Evaluate(Request(contentType: null, fork: Fork(offset, subOffset)), Source(contentType: "application/json"));

        Assert.Equal(status, decision.Result.Status);
    }

    [Fact]
    public void A_binary_sub_offset_may_not_pass_the_end_of_the_anchor_append()
    {
        Assert.Equal(6, Evaluate(Request(fork: Fork(4, 2)), Source()).ForkPosition);

        Assert.Equal(CreateStatus.SubOffsetOutOfRange, Evaluate(Request(fork: Fork(4, 4)), Source()).Result.Status);
    }

    [Fact]
    public void A_fork_takes_the_source_type_and_expiry_and_starts_at_its_position()
    {
        var expiresAt = Now.AddDays(1);
        var decision = Evaluate(
            Request("[3]", contentType: null, fork: Fork(4, 1)),
            Source(contentType: "application/json", ttl: 30, expiresAt: expiresAt));

        Assert.True(decision.ShouldCreate);
        Assert.Equal(7, decision.ForkPosition);
        var state = decision.State;
        Assert.Equal("application/json", state.ContentType);
        Assert.Equal(30, state.TtlSeconds);
        Assert.Equal(expiresAt, state.ExpiresAt);
        Assert.Equal(9, state.Tail);
        Assert.Equal(["3,"], Texts(decision));
        // The anchor as given is what a repeated PUT is compared with; the request named no expiry.
        Assert.Equal(new StreamConfiguration("application/json", null, null, "src", new StreamOffset(4), 1), state.Requested);
    }

    [Fact]
    public void A_fork_that_names_an_expiry_keeps_its_own_and_omitting_the_offset_anchors_at_the_tail()
    {
        var decision = Evaluate(Request(ttl: 5, fork: Fork()), Source(ttl: 30, expiresAt: Now.AddDays(1)));

        var state = decision.State!;
        Assert.Equal(5, state.TtlSeconds);
        Assert.Null(state.ExpiresAt);
        Assert.Equal(10, decision.ForkPosition);
        Assert.Equal(new StreamOffset(10), state.Requested.ForkOffset);
    }

    [Fact]
    public void The_source_is_checked_before_the_body()
    {
        var decision = Evaluate(Request("[1,", contentType: "application/json", fork: Fork()), Source(softDeleted: true, contentType: "application/json"));

        Assert.Equal(CreateStatus.SourceSoftDeleted, decision.Result.Status);
    }
}
