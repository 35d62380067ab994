using System.Buffers.Binary;
using System.Text;
using DurableStreams.Core;
using DurableStreams.Storage.Files;
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

    private bool _crashBeforeLogRestart;

    protected override FileStreamStoreOptions StoreOptions
    {
        get
        {
            var options = base.StoreOptions;
            return new FileStreamStoreOptions
            {
                DataDirectory = options.DataDirectory,
                TimeProvider = options.TimeProvider,
                Durability = options.Durability,
                MetadataMapSize = options.MetadataMapSize,
                SweepInterval = options.SweepInterval,
                CrashBeforeLogRestart = _crashBeforeLogRestart,
            };
        }
    }

    private async Task CrashAsync()
    {
        Store.Faults.SuppressCheckpoints = true;
        await StopAsync();
    }

    /// <summary>The current generation's records as (offset, header+payload length, payload), read the way recovery does.</summary>
    internal static List<(long Offset, int Length, byte[] Payload)> ReadLog(byte[] log)
    {
        var records = new List<(long, int, byte[])>();
        long position = 0;
        long? generation = null;
        while (position + 24 <= log.Length && BinaryPrimitives.ReadUInt32LittleEndian(log.AsSpan((int)position)) == 0x324C5344)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(log.AsSpan((int)position + 4));
            var recordGeneration = BinaryPrimitives.ReadInt64LittleEndian(log.AsSpan((int)position + 8));
            if (generation is { } g && g != recordGeneration)
            {
                break;
            }
            generation = recordGeneration;
            records.Add((position, 24 + length, log.AsSpan((int)position + 24, length).ToArray()));
            position += 24 + length;
        }
        return records;
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
        Assert.True(Store.CommitLogLength > 0);

        await CrashAsync();
        Start();

        Assert.Equal("one two", await ReadTextAsync("text"));
        Assert.Equal("[{\"a\":1},{\"b\":2}]", await ReadJsonAsync("json"));
        Assert.True((await InfoAsync("closed")).Closed);
        Assert.Equal(ReadStatus.NotFound, (await Store.GetMetadataAsync("doomed", Ct)).Status);
        Assert.Equal(0, Store.CommitLogLength);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("text", " three")).Status);
        Assert.Equal("one two three", await ReadTextAsync("text"));
    }

    [Fact]
    public async Task A_torn_log_tail_is_ignored_and_the_intact_records_are_replayed()
    {
        await CreatedAsync("s", TextPlain, body: "kept");
        await CrashAsync();
        var log = await File.ReadAllBytesAsync(LogPath, Ct);
        var records = ReadLog(log);
        Assert.NotEmpty(records);
        var end = records[^1].Offset + records[^1].Length;
        // A record that never finished, over the end marker: right magic and generation, payload cut short.
        var torn = log.AsSpan((int)records[0].Offset, 16).ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(torn.AsSpan(4), 1000);
        await using (var file = File.OpenWrite(LogPath))
        {
            file.Position = end;
            await file.WriteAsync(torn.Concat(Encoding.ASCII.GetBytes("torn record that never finished")).ToArray(), Ct);
        }

        Start();

        Assert.Equal("kept", await ReadTextAsync("s"));
        Assert.Equal(0, Store.CommitLogLength);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "+more")).Status);
        await CrashAsync();
        Start();
        Assert.Equal("kept+more", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task Replay_is_idempotent_when_recovery_itself_is_interrupted()
    {
        await CreatedAsync("s", TextPlain, body: "abc");
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "def")).Status);
        await CrashAsync();

        // Recovery applies the log, then "crashes" before the log moves on: the next start replays the same records.
        _crashBeforeLogRestart = true;
        Start();
        Assert.True(Store.CommitLogLength > 0);
        await CrashAsync();
        _crashBeforeLogRestart = false;
        Start();

        Assert.Equal("abcdef", await ReadTextAsync("s"));
        Assert.Equal(0, Store.CommitLogLength);
    }

    [Fact]
    public async Task Records_of_an_earlier_generation_are_never_replayed()
    {
        await CreatedAsync("s", TextPlain, body: "abc");
        await CrashAsync();
        var before = await File.ReadAllBytesAsync(LogPath, Ct);
        Start();
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "def")).Status);
        await Store.CheckpointAsync();
        Assert.Equal(DeleteStatus.Deleted, (await Store.DeleteAsync("s", Ct)).Status);
        await Store.CheckpointAsync();
        await StopAsync();

        // Put the first generation's records back, as stale bytes left in the recycled file would be.
        await using (var file = File.OpenWrite(LogPath))
        {
            await file.WriteAsync(before.AsMemory(0, (int)(ReadLog(before)[^1].Offset + ReadLog(before)[^1].Length)), Ct);
        }
        Start();

        Assert.Equal(ReadStatus.NotFound, (await Store.GetMetadataAsync("s", Ct)).Status);
    }

    [Fact]
    public async Task A_log_in_the_pre_release_format_before_recycling_is_refused_and_left_intact()
    {
        await CreatedAsync("s", TextPlain, body: "abc");
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("s", "def")).Status);
        await CrashAsync();

        // Rewrite the log as pre-release builds wrote it: [magic "DSLG"][length][crc32c of payload][payload] per record.
        var legacy = new MemoryStream();
        foreach (var (_, _, payload) in ReadLog(await File.ReadAllBytesAsync(LogPath, Ct)))
        {
            var header = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(header, 0x474C5344);
            BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), payload.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), Crc32C.Compute(payload));
            legacy.Write(header);
            legacy.Write(payload);
        }
        var written = legacy.ToArray();
        await File.WriteAllBytesAsync(LogPath, written, Ct);

        // Replaying nothing would silently lose the appends the log holds: the store refuses to open instead.
        var ex = Assert.Throws<InvalidOperationException>(Start);
        Assert.Contains("pre-release", ex.Message, StringComparison.Ordinal);
        Assert.Contains("DSLG", ex.Message, StringComparison.Ordinal);
        Assert.Equal(written, (await File.ReadAllBytesAsync(LogPath, Ct)).AsSpan(0, written.Length).ToArray());
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
        Assert.True(Store.CommitLogLength > 0);

        await Store.CheckpointAsync();

        Assert.Equal(0, Store.CommitLogLength);
        Assert.True(Store.Checkpoints > 0);
        await CrashAsync();
        Start();
        Assert.Equal("abc", await ReadTextAsync("s"));
    }
}
