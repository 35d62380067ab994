using System.Text;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Many concurrent appenders under <see cref="Storage.Files.DurabilityMode.Always"/>: every acknowledged append is
/// present exactly once, in each writer's order, at the offset it was acknowledged with, and appends share syncs.
/// </summary>
public sealed class GroupCommitTests : FileStoreTestBase
{
    private const int Streams = 16;
    private const int Writers = 64;
    private const int AppendsPerWriter = 100;

    private static string StreamOf(int writer) => "stream-" + (writer % Streams);

    /// <summary>A self-describing record of varying length: <c>w07n042:xxxx;</c>.</summary>
    private static byte[] Payload(int writer, int n) =>
        Encoding.ASCII.GetBytes($"w{writer:D2}n{n:D3}:{new string('x', ((writer * 7) + n) % 40)};");

    [Fact]
    public async Task Concurrent_appenders_share_commits_and_every_acknowledged_append_is_present_once_in_order()
    {
        for (var s = 0; s < Streams; s++)
        {
            await CreatedAsync("stream-" + s, Binary);
        }
        var offsets = new long[Writers, AppendsPerWriter];
        var batchesBefore = Store.CommitBatches;
        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            await go.Task;
            for (var n = 0; n < AppendsPerWriter; n++)
            {
                var result = await Store.AppendAsync(StreamOf(w), new AppendRequest { Body = Payload(w, n), ContentType = Binary }, Ct);
                Assert.Equal(AppendStatus.Appended, result.Status);
                offsets[w, n] = result.NextOffset.Position;
            }
        }, Ct)).ToArray();
        go.SetResult();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        // How many appends share a sync depends on how fast the disk syncs; that they share one at all is checked
        // deterministically below (Appends_queued_while_a_sync_is_in_flight_share_the_next_sync).
        TestContext.Current.TestOutputHelper?.WriteLine($"{Writers * AppendsPerWriter} appends in {Store.CommitBatches - batchesBefore} commit batches");

        await VerifyAsync(offsets);
        await RestartAsync();
        await VerifyAsync(offsets);
    }

    [Fact]
    public async Task Appends_queued_while_a_sync_is_in_flight_share_the_next_sync()
    {
        const int followers = 24;
        for (var s = 0; s < followers + 1; s++)
        {
            await CreatedAsync("stream-" + s, Binary);
        }
        var batchesBefore = Store.CommitBatches;
        using var syncing = new SemaphoreSlim(0);
        using var release = new ManualResetEventSlim();
        var syncs = 0;
        Store.Faults.BeforeSync = () =>
        {
            // Hold the first batch's sync until every follower is queued behind it.
            if (Interlocked.Increment(ref syncs) == 1)
            {
                syncing.Release();
                release.Wait(TimeSpan.FromSeconds(30));
            }
            return null;
        };
        try
        {
            var first = Task.Run(async () => await Store.AppendAsync("stream-0", new AppendRequest { Body = Payload(0, 0), ContentType = Binary }, Ct), Ct);
            Assert.True(await syncing.WaitAsync(TimeSpan.FromSeconds(30), Ct), "the first append never reached its sync");

            // Each append queues its work before AppendAsync returns; the commit role is taken, so none completes yet.
            var queued = Enumerable.Range(1, followers)
                .Select(w => Store.AppendAsync("stream-" + w, new AppendRequest { Body = Payload(w, 0), ContentType = Binary }, Ct).AsTask())
                .ToArray();
            Assert.All(queued, t => Assert.False(t.IsCompleted));
            release.Set();

            Assert.Equal(AppendStatus.Appended, (await first).Status);
            foreach (var result in await Task.WhenAll(queued))
            {
                Assert.Equal(AppendStatus.Appended, result.Status);
            }
        }
        finally
        {
            release.Set();
            Store.Faults.BeforeSync = null;
        }

        // One batch for the first append, one shared by all the followers: two syncs for 25 appends, whatever the disk.
        Assert.Equal(2, Store.CommitBatches - batchesBefore);
        Assert.Equal(2, syncs);
        for (var w = 0; w <= followers; w++)
        {
            Assert.Equal(Payload(w, 0), await ReadBytesAsync("stream-" + w));
        }
    }

    [Fact]
    public async Task A_lone_appender_commits_on_its_own_thread_without_a_hand_off()
    {
        await CreatedAsync("solo", Binary);
        var batchesBefore = Store.CommitBatches;
        for (var n = 0; n < 20; n++)
        {
            // Nothing else is in flight, so the appender takes the commit role itself: the append is durable by the
            // time the call returns, with no wait for another thread.
            var pending = Store.AppendAsync("solo", new AppendRequest { Body = Payload(0, n), ContentType = Binary }, Ct);
            Assert.True(pending.IsCompleted, $"append {n} returned before it was committed");
            Assert.Equal(AppendStatus.Appended, (await pending).Status);
        }
        Assert.Equal(20, Store.CommitBatches - batchesBefore);
        await RestartAsync();
        Assert.Equal(Enumerable.Range(0, 20).SelectMany(n => Payload(0, n)).ToArray(), await ReadBytesAsync("solo"));
    }

    private async Task VerifyAsync(long[,] offsets)
    {
        for (var s = 0; s < Streams; s++)
        {
            var content = await ReadBytesAsync("stream-" + s);
            var expectedLength = 0L;
            var seen = new Dictionary<int, int>();
            foreach (var token in Encoding.ASCII.GetString(content).Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                // Each writer's records appear once each, in the order it appended them (it awaited every ack).
                var writer = int.Parse(token.AsSpan(1, 2), provider: System.Globalization.CultureInfo.InvariantCulture);
                var n = int.Parse(token.AsSpan(4, 3), provider: System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(s, writer % Streams);
                var expectedN = seen.GetValueOrDefault(writer);
                Assert.Equal(expectedN, n);
                seen[writer] = n + 1;
                Assert.Equal(Encoding.ASCII.GetString(Payload(writer, n)), token + ";");
            }
            for (var w = s; w < Writers; w += Streams)
            {
                Assert.Equal(AppendsPerWriter, seen.GetValueOrDefault(w));
                for (var n = 0; n < AppendsPerWriter; n++)
                {
                    // The acknowledged offset is exactly the end of that record.
                    var payload = Payload(w, n);
                    var end = (int)offsets[w, n];
                    Assert.Equal(payload, content[(end - payload.Length)..end]);
                    expectedLength += payload.Length;
                    if (n > 0)
                    {
                        Assert.True(offsets[w, n] > offsets[w, n - 1]);
                    }
                }
            }
            Assert.Equal(expectedLength, content.Length);
        }
    }
}
