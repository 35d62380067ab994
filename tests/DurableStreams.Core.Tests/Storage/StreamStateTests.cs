using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Storage;

public sealed class StreamStateTests
{
    private static readonly DateTimeOffset Now = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static StreamState State(long? ttl = null, DateTimeOffset? expiresAt = null) => new()
    {
        ContentType = "text/plain",
        TtlSeconds = ttl,
        ExpiresAt = expiresAt,
        Requested = new StreamConfiguration("text/plain", ttl, expiresAt, null, null, 0),
    };

    private static StreamConfiguration Fork(StreamOffset? offset, long subOffset = 0) =>
        new("text/plain", null, null, "src", offset, subOffset);

    [Fact]
    public void A_stream_without_ttl_or_expiry_never_expires()
    {
        Assert.False(State().IsExpired(DateTimeOffset.MaxValue, Now));
    }

    [Fact]
    public void A_ttl_expires_exactly_ttl_seconds_after_the_last_access()
    {
        var state = State(ttl: 10);

        Assert.False(state.IsExpired(Now.AddSeconds(10).AddTicks(-1), Now));
        Assert.True(state.IsExpired(Now.AddSeconds(10), Now));
    }

    [Fact]
    public void Expires_at_ignores_the_last_access()
    {
        var state = State(expiresAt: Now.AddSeconds(10));

        Assert.False(state.IsExpired(Now.AddSeconds(9), Now.AddSeconds(9)));
        Assert.True(state.IsExpired(Now.AddSeconds(10), Now.AddSeconds(10)));
    }

    [Fact]
    public void A_plain_configuration_matches_the_same_request_only()
    {
        var config = new StreamConfiguration("text/plain", 60, null, null, null, 0);

        Assert.True(config.IsMatchedBy(new CreateStreamRequest { ContentType = "Text/Plain", TtlSeconds = 60 }, currentlyClosed: false));
        Assert.False(config.IsMatchedBy(new CreateStreamRequest { ContentType = "text/plain" }, currentlyClosed: false));
        Assert.False(config.IsMatchedBy(new CreateStreamRequest { ContentType = "text/plain", TtlSeconds = 60, Closed = true }, currentlyClosed: false));
        Assert.True(config.IsMatchedBy(new CreateStreamRequest { ContentType = "text/plain", TtlSeconds = 60, Closed = true }, currentlyClosed: true));
        Assert.False(config.IsMatchedBy(new CreateStreamRequest { ContentType = "text/plain", TtlSeconds = 60 }, currentlyClosed: true));
        Assert.False(config.IsMatchedBy(new CreateStreamRequest { ContentType = "text/plain", TtlSeconds = 60, Fork = new ForkRequest("src", null, 0) }, currentlyClosed: false));
    }

    [Fact]
    public void A_missing_content_type_means_the_default_for_a_plain_stream()
    {
        var config = new StreamConfiguration(ContentTypes.Default, null, null, null, null, 0);

        Assert.True(config.IsMatchedBy(new CreateStreamRequest(), currentlyClosed: false));
        Assert.False(new StreamConfiguration("text/plain", null, null, null, null, 0).IsMatchedBy(new CreateStreamRequest(), currentlyClosed: false));
    }

    [Fact]
    public void A_fork_request_omitting_content_type_and_offset_matches_the_resolved_values()
    {
        var config = Fork(new StreamOffset(3), subOffset: 1);

        Assert.True(config.IsMatchedBy(new CreateStreamRequest { Fork = new ForkRequest("src", null, 1) }, currentlyClosed: false));
        Assert.True(config.IsMatchedBy(new CreateStreamRequest { ContentType = "TEXT/PLAIN", Fork = new ForkRequest("src", new StreamOffset(3), 1) }, currentlyClosed: false));
        Assert.False(config.IsMatchedBy(new CreateStreamRequest { Fork = new ForkRequest("src", new StreamOffset(3), 0) }, currentlyClosed: false));
        Assert.False(config.IsMatchedBy(new CreateStreamRequest { Fork = new ForkRequest("other", new StreamOffset(3), 1) }, currentlyClosed: false));
        Assert.False(config.IsMatchedBy(new CreateStreamRequest { ContentType = "application/json", Fork = new ForkRequest("src", null, 1) }, currentlyClosed: false));
        Assert.False(config.IsMatchedBy(new CreateStreamRequest(), currentlyClosed: false));
    }
}
