using System.Collections.Concurrent;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

public abstract partial class StreamStoreContractTests
{
    [Fact]
    public async Task Every_committed_change_is_raised_on_the_change_feed_in_commit_order()
    {
        var heard = new ConcurrentQueue<StreamChanged>();
        await using (Store.Changes.Subscribe((change, _) =>
        {
            heard.Enqueue(change);
            return ValueTask.CompletedTask;
        }, c => c.IsLocal))
        {
            await CreatedAsync("src", body: "ab");
            Assert.Equal(AppendStatus.Appended, (await AppendAsync("src", "cde")).Status);
            Assert.Equal(AppendStatus.ContentTypeMismatch, (await AppendAsync("src", "{}", Json)).Status);
            await CreatedAsync("fork", fork: ForkOf("src", 2));
            Assert.Equal(AppendStatus.Appended, (await AppendAsync("src", "f", close: true)).Status);
            Assert.Equal(CreateStatus.AlreadyExists, (await CreateAsync("fork", fork: ForkOf("src", 2))).Status);
            Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("fork"));
            await Store.Changes.WhenDeliveredAsync(Ct).WaitAsync(HangGuard, Ct);

            var expected = new[]
            {
                (StreamChangeKind.Created, "src", 2L),
                (StreamChangeKind.Appended, "src", 5L),
                (StreamChangeKind.Created, "fork", 2L),
                (StreamChangeKind.Closed, "src", 6L),
                (StreamChangeKind.Deleted, "fork", 0L),
            };
            Assert.Equal(expected, heard.Select(c => (c.Kind, c.Name, c.Tail.Position)).ToArray());
            Assert.Equal([false, true], heard.Where(c => c.Kind == StreamChangeKind.Created).Select(c => c.Forked));
            var created = heard.First();
            Assert.Equal((TextPlain, StartTime), (created.ContentType, created.At));
        }
    }

    [Fact]
    public async Task An_expiry_is_raised_once_and_refused_requests_raise_nothing()
    {
        await CreatedAsync("s", body: "abc", ttl: 10);
        var heard = new ConcurrentQueue<StreamChanged>();
        await using var subscription = Store.Changes.Subscribe((change, _) =>
        {
            heard.Enqueue(change);
            return ValueTask.CompletedTask;
        }, c => c.IsLocal);

        Assert.Equal(AppendStatus.ContentTypeMismatch, (await AppendAsync("s", "{}", Json)).Status);
        Assert.Equal(CreateStatus.ConfigurationConflict, (await CreateAsync("s", Json)).Status);
        Assert.Equal(DeleteStatus.NotFound, await DeleteAsync("none"));
        Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("s"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("s"));
        await Store.Changes.WhenDeliveredAsync(Ct).WaitAsync(HangGuard, Ct);

        var expired = Assert.Single(heard);
        Assert.Equal((StreamChangeKind.Expired, "s"), (expired.Kind, expired.Name));
    }

    [Fact]
    public async Task A_listener_that_unsubscribes_hears_nothing_more()
    {
        var heard = new ConcurrentQueue<string>();
        var subscription = Store.Changes.Subscribe((change, _) =>
        {
            heard.Enqueue(change.Name);
            return ValueTask.CompletedTask;
        }, c => c.IsLocal);
        await CreatedAsync("before");
        await Store.Changes.WhenDeliveredAsync(Ct).WaitAsync(HangGuard, Ct);

        await subscription.DisposeAsync();
        await CreatedAsync("after");
        await Store.Changes.WhenDeliveredAsync(Ct).WaitAsync(HangGuard, Ct);

        Assert.Equal(["before"], heard);
    }
}
