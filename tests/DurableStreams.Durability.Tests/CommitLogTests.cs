using System.Text;
using DurableStreams.Storage;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// The commit log carries durability between checkpoints: these tests stop the store the way a crash does — with the
/// log holding changes LMDB has not seen (checkpoints suppressed) — and check that recovery replays them, and only the
/// intact ones.
/// </summary>
public sealed class CommitLogTests : FileStoreTestBase
{
    private string LogPath => Path.Combine(DataDirectory, "commit.log");

    private async Task CrashAsync()
    {
        Store.Faults.SuppressCheckpoints = true;
        await StopAsync();
    }

    [Fact]
    public async Task Acknowledged_changes_only_in_the_log_are_replayed_after_a_crash()
    {
        await CreatedAsync("text", TextPlain, body: "one ");
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("text", "two")).Status);
        await CreatedAsync("json", Json);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("json", "[{\"a\":1},{\"b\":2}]", Json)).Status);
        await CreatedAsync("closed", TextPlain, body: "done", closed: true);
        await CreatedAsync("doomed", TextPlain, body: "x");
        Assert.Equal(DeleteStatus.Deleted, (await Store.DeleteAsync("doomed", Ct)).Status);
        Assert.True(new FileInfo(LogPath).Length > 0);

        await CrashAsync();
        Start();

        Assert.Equal("one two", await ReadTextAsync("text"));
        Assert.Equal("[{\"a\":1},{\"b\":2}]", await ReadJsonAsync("json"));
        Assert.True((await InfoAsync("closed")).Closed);
        Assert.Equal(ReadStatus.NotFound, (await Store.GetMetadataAsync("doomed", Ct)).Status);
        Assert.Equal(0, new FileInfo(LogPath).Length);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("text", " three")).Status);
        Assert.Equal("one two three", await ReadTextAsync("text"));
    }

    [Fact]
    public async Task A_torn_log_tail_is_ignored_and_the_intact_records_are_replayed()
    {
        await CreatedAsync("s", TextPlain, body: "kept");
        await CrashAsync();
        var intact = new FileInfo(LogPath).Length;
        await File.AppendAllTextAsync(LogPath, "DSLG\u0005torn record that never finished", Encoding.Latin1, Ct);

        Start();

        Assert.Equal("kept", await ReadTextAsync("s"));
        Assert.True(intact > 0);
        Assert.Equal(0, new FileInfo(LogPath).Length);
    }

    [Fact]
    public async Task Replay_is_idempotent_when_recovery_itself_is_interrupted()
    {
        await CreatedAsync("s", TextPlain, body: "abc");
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "def")).Status);
        await CrashAsync();
        var log = await File.ReadAllBytesAsync(LogPath, Ct);

        // Recovery applies the log; then the crash happens again before it could be emptied: the same log replays twice.
        Start();
        await CrashAsync();
        await File.WriteAllBytesAsync(LogPath, log, Ct);
        Start();

        Assert.Equal("abcdef", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task A_producer_retry_after_a_crash_is_a_duplicate_when_only_the_log_had_it()
    {
        await CreatedAsync("s", TextPlain);
        var first = await Store.AppendAsync("s", new AppendRequest { ContentType = TextPlain, Body = Bytes("once"), Producer = Producer(0, 0) }, Ct);
        Assert.Equal(AppendStatus.Appended, first.Status);

        await CrashAsync();
        Start();

        var retry = await Store.AppendAsync("s", new AppendRequest { ContentType = TextPlain, Body = Bytes("once"), Producer = Producer(0, 0) }, Ct);
        Assert.Equal(AppendStatus.Duplicate, retry.Status);
        Assert.Equal("once", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Checkpoints_empty_the_log_into_lmdb()
    {
        await CreatedAsync("s", TextPlain, body: "abc");
        Assert.True(new FileInfo(LogPath).Length > 0);

        await Store.CheckpointAsync();

        Assert.Equal(0, new FileInfo(LogPath).Length);
        Assert.True(Store.Checkpoints > 0);
        await CrashAsync();
        Start();
        Assert.Equal("abc", await ReadTextAsync("s"));
    }
}
