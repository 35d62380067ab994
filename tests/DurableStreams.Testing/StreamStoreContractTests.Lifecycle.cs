using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

public abstract partial class StreamStoreContractTests
{
    [Fact]
    public async Task Delete_removes_the_stream()
    {
        await CreatedAsync("s", body: "abc");

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("s"));

        Assert.Equal(ReadStatus.NotFound, (await ReadFromStartAsync("s")).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("s"));
        Assert.Equal(AppendStatus.NotFound, (await AppendAsync("s", "x")).Status);
        Assert.Equal(DeleteStatus.NotFound, await DeleteAsync("s"));
        Assert.Equal(0, await CountLiveStreamsAsync(Store));
        Assert.Equal(CreateStatus.Created, (await CreateAsync("s", Json)).Status);
    }

    [Fact]
    public async Task Deleting_a_source_with_forks_soft_deletes_it()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("fork", fork: ForkOf("src"));

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("src"));

        Assert.Equal(ReadStatus.Gone, (await ReadFromStartAsync("src")).Status);
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("src"));
        Assert.Equal(AppendStatus.Gone, (await AppendAsync("src", "x")).Status);
        Assert.Equal(AppendStatus.Gone, (await AppendAsync("src", null, close: true)).Status);
        Assert.Equal(DeleteStatus.Gone, await DeleteAsync("src"));
        Assert.Equal(CreateStatus.SoftDeleted, (await CreateAsync("src")).Status);
        Assert.Equal(CreateStatus.SourceSoftDeleted, (await CreateAsync("fork2", fork: ForkOf("src"))).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("fork2"));
        Assert.Equal("abc", await ReadTextAsync("fork"));
        Assert.Equal(1, await CountLiveStreamsAsync(Store));
    }

    [Fact]
    public async Task Deleting_the_last_fork_cleans_up_a_soft_deleted_source()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("a", fork: ForkOf("src"));
        await CreatedAsync("b", fork: ForkOf("src"));
        await DeleteAsync("src");

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("a"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("src"));
        Assert.Equal("abc", await ReadTextAsync("b"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("b"));

        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("src"));
        Assert.Equal(CreateStatus.Created, (await CreateAsync("src")).Status);
        Assert.Equal("", await ReadTextAsync("src"));
    }

    [Fact]
    public async Task Clean_up_cascades_through_three_levels()
    {
        await CreatedAsync("l0", body: "a");
        await CreatedAsync("l1", fork: ForkOf("l0"));
        await AppendedAsync("l1", "b");
        await CreatedAsync("l2", fork: ForkOf("l1"));
        await AppendedAsync("l2", "c");

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("l0"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("l1"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("l0"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("l1"));
        Assert.Equal("abc", await ReadTextAsync("l2"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("l2"));

        foreach (var name in new[] { "l0", "l1", "l2" })
        {
            Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync(name));
            Assert.Equal(CreateStatus.Created, (await CreateAsync(name)).Status);
        }
    }

    [Fact]
    public async Task A_soft_deleted_middle_fork_keeps_serving_its_forks()
    {
        await CreatedAsync("l0", body: "a");
        await CreatedAsync("l1", fork: ForkOf("l0"));
        await AppendedAsync("l1", "b");
        await CreatedAsync("l2", fork: ForkOf("l1"));

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("l1"));

        Assert.Equal("ab", await ReadTextAsync("l2"));
        Assert.Equal("a", await ReadTextAsync("l0"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("l0"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("l0"));
        Assert.Equal("ab", await ReadTextAsync("l2"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("l2"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("l0"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("l1"));
    }

    [Fact]
    public async Task Deleting_a_fork_leaves_its_source_intact_and_fully_deletable()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("fork", fork: ForkOf("src"));

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("fork"));
        Assert.Equal("abc", await ReadTextAsync("src"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("src"));

        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("src"));
    }

    [Fact]
    public async Task Rejected_or_repeated_forks_leave_no_reference_on_the_source()
    {
        await CreatedAsync("src", body: "hello");
        await CreatedAsync("jsrc", Json, body: "[1,2]");
        await CreatedAsync("taken");
        await CreatedAsync("fork", fork: ForkOf("src"));

        Assert.Equal(CreateStatus.ForkOffsetBeyondTail, (await CreateAsync("f1", fork: ForkOf("src", 6))).Status);
        Assert.Equal(CreateStatus.SubOffsetOutOfRange, (await CreateAsync("f2", fork: ForkOf("src", 0, 9))).Status);
        Assert.Equal(CreateStatus.SourceContentTypeMismatch, (await CreateAsync("f3", Json, fork: ForkOf("src"))).Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("taken", fork: ForkOf("src"))).Status);
        Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("fork", fork: ForkOf("src"))).Status);
        Assert.Equal(CreateStatus.ForkOffsetUnaligned, (await CreateAsync("j1", Json, fork: ForkOf("jsrc", 1))).Status);
        Assert.Equal(CreateStatus.InvalidJson, (await CreateAsync("j2", Json, body: "{nope", fork: ForkOf("jsrc"))).Status);
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("fork"));

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("src"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("jsrc"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("src"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("jsrc"));
    }

    [Fact]
    public async Task An_expired_stream_is_NotFound_everywhere()
    {
        await CreatedAsync("s", body: "abc", ttl: 10);

        Time.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(ReadStatus.NotFound, (await ReadFromStartAsync("s")).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("s"));
        Assert.Equal(AppendStatus.NotFound, (await AppendAsync("s", "x")).Status);
        Assert.Equal(DeleteStatus.NotFound, await DeleteAsync("s"));
        Assert.Equal(CreateStatus.SourceNotFound, (await CreateAsync("fork", fork: ForkOf("s"))).Status);
    }

    [Fact]
    public async Task An_expired_stream_can_be_created_again()
    {
        await CreatedAsync("s", body: "abc", ttl: 10);
        Time.Advance(TimeSpan.FromSeconds(11));

        var again = await CreateAsync("s", Json, ttl: 10);

        Assert.Equal(CreateStatus.Created, again.Status);
        Assert.Equal("[]", await ReadJsonAsync("s"));
    }

    [Fact]
    public async Task A_stream_lives_until_its_ttl_has_fully_elapsed()
    {
        await CreatedAsync("s", body: "abc", ttl: 10);

        Time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromMilliseconds(1));

        Assert.Equal(ReadStatus.Ok, await MetadataStatusAsync("s"));
    }

    [Fact]
    public async Task Reads_refresh_the_sliding_ttl()
    {
        await CreatedAsync("s", body: "abc", ttl: 10);

        for (var i = 0; i < 5; i++)
        {
            Time.Advance(TimeSpan.FromSeconds(8));
            Assert.Equal(ReadStatus.Ok, (await ReadFromStartAsync("s")).Status);
        }

        Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("s"));
    }

    [Fact]
    public async Task Appends_refresh_the_sliding_ttl()
    {
        await CreatedAsync("s", ttl: 10);

        for (var i = 0; i < 5; i++)
        {
            Time.Advance(TimeSpan.FromSeconds(8));
            Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "x")).Status);
        }

        Time.Advance(TimeSpan.FromSeconds(8));
        Assert.Equal("xxxxx", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Metadata_does_not_refresh_the_sliding_ttl()
    {
        await CreatedAsync("s", ttl: 10);

        Time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(ReadStatus.Ok, await MetadataStatusAsync("s"));
        Time.Advance(TimeSpan.FromSeconds(4));

        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("s"));
    }

    [Fact]
    public async Task Expires_at_is_not_extended_by_access()
    {
        await CreatedAsync("s", expiresAt: StartTime.AddSeconds(10));

        Time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "x")).Status);
        Assert.Equal("x", await ReadTextAsync("s"));
        Time.Advance(TimeSpan.FromSeconds(4));

        Assert.Equal(ReadStatus.NotFound, (await ReadFromStartAsync("s")).Status);
    }

    [Fact]
    public async Task Expires_at_in_the_past_is_expired_at_once()
    {
        await CreateAsync("s", expiresAt: StartTime.AddSeconds(-1));

        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("s"));
    }

    [Fact]
    public async Task The_sweeper_reclaims_an_expired_stream_nobody_touches()
    {
        await CreatedAsync("expiring", ttl: 5);
        await CreatedAsync("absolute", expiresAt: StartTime.AddSeconds(5));
        await CreatedAsync("forever");
        Assert.Equal(3, await CountLiveStreamsAsync(Store));

        Time.Advance(TimeSpan.FromSeconds(5) + SweepInterval);

        Assert.Equal(1, await CountLiveStreamsAsync(Store));
        Assert.Equal(ReadStatus.Ok, await MetadataStatusAsync("forever"));
    }

    [Fact]
    public async Task The_sweeper_keeps_streams_that_are_in_use()
    {
        await CreatedAsync("s", ttl: 5);

        for (var i = 0; i < 4; i++)
        {
            Time.Advance(TimeSpan.FromSeconds(4));
            await ReadFromStartAsync("s");
        }

        Assert.Equal(1, await CountLiveStreamsAsync(Store));
    }

    [Fact]
    public async Task An_expired_source_with_forks_reads_as_NotFound_while_its_forks_keep_its_data()
    {
        await CreatedAsync("src", body: "abc", ttl: 10);
        await CreatedAsync("fork", ttl: 3600, fork: ForkOf("src"));

        Time.Advance(TimeSpan.FromSeconds(10) + SweepInterval);

        Assert.Equal(ReadStatus.NotFound, (await ReadFromStartAsync("src")).Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("src"));
        Assert.Equal("abc", await ReadTextAsync("fork"));
    }
}
