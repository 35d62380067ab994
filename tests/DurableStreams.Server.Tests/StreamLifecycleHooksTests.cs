using System.Collections.Concurrent;
using System.Net;
using DurableStreams.Core;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

public sealed class StreamLifecycleHooksTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class RecordingHooks : IStreamLifecycleHooks
    {
        public ConcurrentQueue<object> Events { get; } = new();

        public Task OnStreamCreatedAsync(StreamCreatedEvent created, CancellationToken cancellationToken)
        {
            Events.Enqueue(created);
            return Task.CompletedTask;
        }

        public Task OnStreamDeletedAsync(StreamDeletedEvent deleted, CancellationToken cancellationToken)
        {
            Events.Enqueue(deleted);
            return Task.CompletedTask;
        }
    }

    private sealed class FailingHooks : IStreamLifecycleHooks
    {
        public Task OnStreamCreatedAsync(StreamCreatedEvent created, CancellationToken cancellationToken) => throw new InvalidOperationException("hook broke");

        public Task OnStreamDeletedAsync(StreamDeletedEvent deleted, CancellationToken cancellationToken) => Task.FromException(new InvalidOperationException("hook broke"));
    }

    [Fact]
    public async Task Hooks_hear_each_creation_and_deletion_once_with_name_content_type_and_time()
    {
        var hooks = new RecordingHooks();
        await using var harness = await ServerHarness.StartWithFakeClockAsync(o => o.Hooks.Add(hooks), Ct);
        var name = ServerHarness.NewName();

        await harness.CreateAsync(name, "application/json", null, Ct);
        using (var again = await harness.PutAsync(name, "application/json", null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }
        using (var deleted = await harness.SendAsync(HttpMethod.Delete, name, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        using (var missing = await harness.SendAsync(HttpMethod.Delete, name, null, Ct))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        Assert.Collection(
            hooks.Events,
            e => Assert.Equal(new StreamCreatedEvent(name, "application/json", ServerHarness.FakeStart), e),
            e => Assert.Equal(new StreamDeletedEvent(name, ServerHarness.FakeStart), e));
    }

    [Fact]
    public async Task Hooks_hear_streams_created_and_deleted_on_the_store_directly_not_only_through_the_endpoints()
    {
        var hooks = new RecordingHooks();
        await using var harness = await ServerHarness.StartWithFakeClockAsync(o => o.Hooks.Add(hooks), Ct);
        var name = ServerHarness.NewName();

        Assert.Equal(CreateStatus.Created, (await harness.Store.CreateAsync(name, new CreateStreamRequest { ContentType = "text/plain" }, Ct)).Status);
        Assert.Equal(DeleteStatus.Deleted, (await harness.Store.DeleteAsync(name, Ct)).Status);
        await harness.Store.Changes.WhenDeliveredAsync(Ct);

        Assert.Collection(
            hooks.Events,
            e => Assert.Equal(new StreamCreatedEvent(name, "text/plain", ServerHarness.FakeStart), e),
            e => Assert.Equal(new StreamDeletedEvent(name, ServerHarness.FakeStart), e));
    }

    [Fact]
    public async Task A_failing_hook_never_fails_the_request_and_later_hooks_still_run()
    {
        var hooks = new RecordingHooks();
        await using var harness = await ServerHarness.StartAsync(o =>
        {
            o.Hooks.Add(new FailingHooks());
            o.Hooks.Add(hooks);
        }, cancellationToken: Ct);
        var name = ServerHarness.NewName();

        await harness.CreateAsync(name, "text/plain", "x", Ct);
        using var deleted = await harness.SendAsync(HttpMethod.Delete, name, null, Ct);

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal(2, hooks.Events.Count);
    }
}
