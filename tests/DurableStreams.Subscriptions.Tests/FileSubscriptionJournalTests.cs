using DurableStreams.Storage.Files;
using System.Text.Json;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

/// <summary>The file-backed subscription state: a snapshot plus a journal of per-change records, and what a crash leaves.</summary>
public sealed class FileSubscriptionJournalTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static SubscriptionState Subscription(string id, long generation = 0)
    {
        var state = SubscriptionState.Create(id, new SubscriptionConfig { Type = SubscriptionType.PullWake, Streams = ["jobs/" + id], WakeStream = "wake" }, Start, "http://127.0.0.1:1/v1/stream");
        state.Generation = generation;
        state.Links["jobs/" + id] = new SubscriptionLink { Explicit = true, AckedOffset = "0000000000000000_0000000000000000" };
        return state;
    }

    private static async Task<Dictionary<string, long>> GenerationsAsync(string directory)
    {
        await using var state = FileSubscriptionStateStore.Open(directory);
        var snapshot = await state.LoadAsync(Token);
        return snapshot.Subscriptions.ToDictionary(s => s.Id, s => s.Generation);
    }

    [Fact]
    public async Task A_change_appends_one_record_to_the_journal_and_leaves_the_snapshot_alone()
    {
        using var directory = new TempDirectory();
        await using var state = FileSubscriptionStateStore.Open(directory.Path);
        for (var i = 0; i < 50; i++)
        {
            await state.SaveAsync(Subscription("s" + i), Token);
        }
        var journal = new FileInfo(state.JournalPath).Length;

        await state.SaveAsync(Subscription("s7", generation: 1), Token);

        var record = new FileInfo(state.JournalPath).Length - journal;
        Assert.InRange(record, 100, JsonSerializer.SerializeToUtf8Bytes(Subscription("s7", generation: 1)).Length + 64);
        Assert.False(File.Exists(state.FilePath)); // no snapshot until the journal outgrows the minimum
    }

    [Fact]
    public async Task A_torn_last_record_is_discarded_on_open_and_later_changes_follow_the_last_whole_one()
    {
        using var directory = new TempDirectory();
        await using (var state = FileSubscriptionStateStore.Open(directory.Path))
        {
            await state.SaveAsync(Subscription("a", 1), Token);
            await state.SaveAsync(Subscription("b", 1), Token);
            await state.SaveAsync(Subscription("a", 2), Token); // torn below: never acknowledged
        }
        var journal = directory.Combine(FileSubscriptionStateStore.JournalFileName);
        var bytes = await File.ReadAllBytesAsync(journal, Token);
        await File.WriteAllBytesAsync(journal, bytes[..^7], Token);

        Assert.Equal(new Dictionary<string, long> { ["a"] = 1, ["b"] = 1 }, await GenerationsAsync(directory.Path));
        await using (var state = FileSubscriptionStateStore.Open(directory.Path))
        {
            await state.SaveAsync(Subscription("c", 5), Token);
            await state.DeleteAsync("b", Token);
        }
        Assert.Equal(new Dictionary<string, long> { ["a"] = 1, ["c"] = 5 }, await GenerationsAsync(directory.Path));
    }

    [Theory]
    [InlineData(1)]  // a byte of the length
    [InlineData(5)]  // a byte of the CRC
    [InlineData(40)] // a byte of the payload
    public async Task A_damaged_last_record_is_discarded_on_open(int fromRecordStart)
    {
        using var directory = new TempDirectory();
        long lastRecord;
        await using (var state = FileSubscriptionStateStore.Open(directory.Path))
        {
            await state.SaveAsync(Subscription("a", 1), Token);
            lastRecord = new FileInfo(state.JournalPath).Length;
            await state.SaveAsync(Subscription("a", 2), Token);
        }
        var journal = directory.Combine(FileSubscriptionStateStore.JournalFileName);
        var bytes = await File.ReadAllBytesAsync(journal, Token);
        bytes[(int)lastRecord + fromRecordStart] ^= 0x5A;
        await File.WriteAllBytesAsync(journal, bytes, Token);

        Assert.Equal(new Dictionary<string, long> { ["a"] = 1 }, await GenerationsAsync(directory.Path));
        Assert.Equal(lastRecord, new FileInfo(journal).Length);
    }

    [Fact]
    public async Task The_journal_is_compacted_into_the_snapshot_once_it_outgrows_it_and_the_state_survives()
    {
        using var directory = new TempDirectory();
        await using (var state = FileSubscriptionStateStore.Open(directory.Path, minimumCompactionBytes: 4096))
        {
            for (var round = 1; round <= 40; round++)
            {
                for (var i = 0; i < 10; i++)
                {
                    await state.SaveAsync(Subscription("s" + i, round), Token);
                }
                await state.SaveSigningKeysAsync([new SigningKeyState { Kid = "k" + round, PrivateKey = "p", PublicKey = "q", CreatedAt = Start }], Token);
            }
            await state.DeleteAsync("s3", Token);
            var snapshot = new FileInfo(state.FilePath).Length;
            Assert.True(snapshot > 0);
            Assert.InRange(new FileInfo(state.JournalPath).Length, 8, Math.Max(4096, 2 * snapshot) + 8);
        }

        await using var reopened = FileSubscriptionStateStore.Open(directory.Path, minimumCompactionBytes: 4096);
        var loaded = await reopened.LoadAsync(Token);
        Assert.Equal(Enumerable.Range(0, 10).Where(i => i != 3).Select(i => "s" + i).Order(), loaded.Subscriptions.Select(s => s.Id).Order());
        Assert.All(loaded.Subscriptions, s => Assert.Equal(40, s.Generation));
        Assert.Equal("k40", Assert.Single(loaded.SigningKeys).Kid);
    }

    [Fact]
    public async Task A_crash_between_the_snapshot_rename_and_the_new_journal_leaves_state_that_replays_to_the_same_result()
    {
        using var compacted = new TempDirectory();
        using var uncompacted = new TempDirectory();
        async Task RunAsync(FileSubscriptionStateStore state)
        {
            for (var round = 1; round <= 30; round++)
            {
                for (var i = 0; i < 5; i++)
                {
                    await state.SaveAsync(Subscription("s" + i, round), Token);
                }
            }
            await state.DeleteAsync("s1", Token);
        }
        await using (var state = FileSubscriptionStateStore.Open(compacted.Path, minimumCompactionBytes: 2048))
        {
            await RunAsync(state);
        }
        await using (var state = FileSubscriptionStateStore.Open(uncompacted.Path, minimumCompactionBytes: long.MaxValue / 4))
        {
            await RunAsync(state);
        }
        Assert.True(File.Exists(compacted.Combine(FileSubscriptionStateStore.FileName)));

        // The newest snapshot with the journal as it was before any compaction (every record), and a half-written new
        // journal and snapshot left as .tmp files.
        File.Copy(uncompacted.Combine(FileSubscriptionStateStore.JournalFileName), compacted.Combine(FileSubscriptionStateStore.JournalFileName), overwrite: true);
        await File.WriteAllBytesAsync(compacted.Combine(FileSubscriptionStateStore.JournalFileName + ".tmp"), [0x44, 0x53], Token);
        await File.WriteAllTextAsync(compacted.Combine(FileSubscriptionStateStore.FileName + ".tmp"), "{ \"subscriptions\": [ { torn", Token);

        var expected = new Dictionary<string, long> { ["s0"] = 30, ["s2"] = 30, ["s3"] = 30, ["s4"] = 30 };
        Assert.Equal(expected, await GenerationsAsync(compacted.Path));
        Assert.Equal(expected, await GenerationsAsync(uncompacted.Path));
        Assert.False(File.Exists(compacted.Combine(FileSubscriptionStateStore.JournalFileName + ".tmp")));
        Assert.False(File.Exists(compacted.Combine(FileSubscriptionStateStore.FileName + ".tmp")));
    }

    [Fact]
    public async Task A_subscriptions_json_in_the_format_before_the_journal_opens_and_is_carried_forward()
    {
        using var directory = new TempDirectory();
        var old = directory.Combine(FileSubscriptionStateStore.FileName);
        // Written by the whole-file store: one JSON object, no journal, default permissions.
        await File.WriteAllTextAsync(old, """
            {"subscriptions":[{"id":"legacy","type":"webhook","pattern":"events/**","streams":[],"webhook_url":"https://hooks.example/h",
            "wake_stream":null,"lease_ttl_ms":30000,"description":null,"config_hash":"h","created_at":"2026-03-01T12:00:00+00:00",
            "base_url":"http://127.0.0.1:1/v1/stream","links":{"events/a":{"explicit":false,"glob":true,"acked_offset":"0000000000000000_0000000000000003"}},
            "generation":4,"wake_id":null,"wake_snapshot":{},"lease_holder":null,"lease_expires_at":null,"retry_count":0,"next_attempt_at":null}],
            "signing_keys":[{"kid":"k1","private_key":"cHJpdmF0ZQ","public_key":"cHVibGlj","created_at":"2026-03-01T12:00:00+00:00","retire_after":null}]}
            """, Token);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(old, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }

        await using (var state = FileSubscriptionStateStore.Open(directory.Path))
        {
            var loaded = await state.LoadAsync(Token);
            var legacy = Assert.Single(loaded.Subscriptions);
            Assert.Equal(("legacy", 4L, "0000000000000000_0000000000000003"), (legacy.Id, legacy.Generation, legacy.Links["events/a"].AckedOffset));
            Assert.Equal("k1", Assert.Single(loaded.SigningKeys).Kid);
            legacy.Generation = 5;
            await state.SaveAsync(legacy, Token);
        }

        Assert.Equal(new Dictionary<string, long> { ["legacy"] = 5 }, await GenerationsAsync(directory.Path));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(old));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(directory.Combine(FileSubscriptionStateStore.JournalFileName)));
        }
    }

    [Fact]
    public async Task Snapshot_and_journal_are_owner_read_write_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // Unix file modes only
        }
        using var directory = new TempDirectory();
        await using var state = FileSubscriptionStateStore.Open(directory.Path, minimumCompactionBytes: 512);
        for (var i = 0; i < 10; i++)
        {
            await state.SaveAsync(Subscription("s" + i, i), Token);
        }

        Assert.True(File.Exists(state.FilePath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(state.FilePath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(state.JournalPath));
    }

    [Fact]
    public async Task A_journal_that_is_not_one_is_refused_and_left_alone()
    {
        using var directory = new TempDirectory();
        var journal = directory.Combine(FileSubscriptionStateStore.JournalFileName);
        await File.WriteAllTextAsync(journal, "not a journal at all", Token);

        var error = Assert.Throws<InvalidOperationException>(() => FileSubscriptionStateStore.Open(directory.Path));

        Assert.Contains(FileSubscriptionStateStore.JournalFileName, error.Message, StringComparison.Ordinal);
        Assert.Equal("not a journal at all", await File.ReadAllTextAsync(journal, Token));
    }
}
