using System.Runtime.CompilerServices;
using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Data written by the retention build opens with its retained starts and append-time samples: <c>Fixtures/retention-v1</c>
/// holds trimmed streams (<c>state</c> version 3, <c>times</c>, frames dropped below the start, the first data page
/// punched) checkpointed into LMDB, and a second trim and an age sample in the commit log only
/// (<c>PutState</c> version 3, <c>DropBelow</c>, <c>PutTime</c>). See Fixtures/retention-v1/README.md.
/// </summary>
public sealed class RetentionFixtureTests : FileStoreTestBase
{
    private const string Fixture = "retention-v1";
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 10, 0, 0, TimeSpan.Zero);
    private static readonly RetentionPolicy Aged = new(TimeSpan.FromSeconds(100), null);
    private static readonly RetentionPolicy Sized = new(null, 3_000);
    private static readonly RetentionPolicy Tiny = new(null, 10);

    protected override FileStreamStoreOptions StoreOptions => new()
    {
        DataDirectory = DataDirectory,
        TimeProvider = Time,
        SweepInterval = TimeSpan.FromSeconds(2),
        Retention = new RetentionPolicies([new RetentionRule("aged/**", Aged), new RetentionRule("sized/**", Sized), new RetentionRule("json/**", Tiny)]),
    };

    private static byte[] Chunk(int i) => Filler(1_000, 500 + i);

    [Fact]
    public async Task The_retention_v1_data_directory_opens_with_its_retained_starts_and_append_times()
    {
        await StopAsync();
        Directory.Delete(DataDirectory, recursive: true);
        FormatFixtureTests.CopyData(Path.Combine(AppContext.BaseDirectory, "Fixtures", Fixture), DataDirectory);
        Time.SetUtcNow(T0 + TimeSpan.FromSeconds(120));
        Start();

        Assert.Equal(9_000, (await InfoAsync("sized/bytes")).RetainedStart.Position);
        Assert.Equal(Chunk(9).Concat(Chunk(10)).Concat(Chunk(11)).ToArray(), BytesOf(await ReadFromStartAsync("sized/bytes")));
        var below = await ReadAsync("sized/bytes", 8_000);
        Assert.Equal(ReadStatus.BeforeRetainedStart, below.Status);
        Assert.Equal(9_000, below.Info!.RetainedStart.Position);

        Assert.Equal(16, (await InfoAsync("json/j")).RetainedStart.Position);
        Assert.Equal("[{\"n\":2}]", JsonOf(await ReadFromStartAsync("json/j")));

        Assert.Equal(2, (await InfoAsync("aged/text")).RetainedStart.Position);
        Assert.Equal("b;c;d;", await ReadTextAsync("aged/text", 2));
        // The samples of LMDB (t+10, t+20) and of the log (t+116) came back: at t+125 only "b;" is older than 100 s.
        Time.SetUtcNow(T0 + TimeSpan.FromSeconds(125));
        Assert.Equal(4, (await Store.ApplyRetentionAsync("aged/text", Aged, Ct)).RetainedStart.Position);
        Assert.Equal("c;d;", await ReadTextAsync("aged/text", 4));
        Assert.Equal(RetentionStatus.Unchanged, (await Store.ApplyRetentionAsync("sized/bytes", Sized, Ct)).Status);
    }

    /// <summary>
    /// Writes <c>Fixtures/retention-v1</c> into the source tree; run only to create a NEW fixture version (see
    /// <see cref="FormatFixtureTests.Generate_the_files_v1_fixture"/>).
    /// </summary>
    [Fact]
    [Trait("Category", "FixtureGenerator")]
    public async Task Generate_the_retention_v1_fixture()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("DS_WRITE_FIXTURES") == "1", "Set DS_WRITE_FIXTURES=1 to write a new format fixture.");
        var target = Path.Combine(SourceDirectory(), "Fixtures", Fixture);
        Assert.False(Directory.Exists(target) && Directory.EnumerateFiles(target, "*.mdb", SearchOption.AllDirectories).Any(), $"{target} exists: fixtures are never rewritten");
        Time.SetUtcNow(T0);

        // Phase 1, checkpointed into LMDB.
        await CreatedAsync("sized/bytes", Binary);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("sized/bytes", Chunk(i), Binary)).Status);
        }
        Assert.Equal(7_000, (await Store.ApplyRetentionAsync("sized/bytes", Sized, Ct)).RetainedStart.Position);
        await CreatedAsync("json/j", Json);
        await AppendedAsync("json/j", "[{\"n\":0},{\"n\":1},{\"n\":2}]", Json);
        Assert.Equal(16, (await Store.ApplyRetentionAsync("json/j", Tiny, Ct)).RetainedStart.Position);
        await CreatedAsync("aged/text", TextPlain, body: "a;");
        Time.Advance(TimeSpan.FromSeconds(10));
        await AppendedAsync("aged/text", "b;");
        Time.Advance(TimeSpan.FromSeconds(10));
        await AppendedAsync("aged/text", "c;");
        Time.SetUtcNow(T0 + TimeSpan.FromSeconds(115));
        Assert.Equal(2, (await Store.ApplyRetentionAsync("aged/text", Aged, Ct)).RetainedStart.Position);
        await Store.CheckpointAsync();
        Store.Faults.SuppressCheckpoints = true;

        // Phase 2, in the commit log only.
        Time.SetUtcNow(T0 + TimeSpan.FromSeconds(116));
        await AppendedAsync("aged/text", "d;");
        for (var i = 10; i < 12; i++)
        {
            Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("sized/bytes", Chunk(i), Binary)).Status);
        }
        Assert.Equal(9_000, (await Store.ApplyRetentionAsync("sized/bytes", Sized, Ct)).RetainedStart.Position);
        await StopAsync();

        FormatFixtureTests.CopyData(DataDirectory, target);
        FormatFixtureTests.TrimCommitLog(Path.Combine(target, "commit.log"));
        await File.WriteAllTextAsync(Path.Combine(target, "README.md"), """
            # retention-v1 fixture

            A file-store data directory written by the build of issue 18's retention (branch `ret-file`, December 2026):
            `state` version 3 (streams with a retained start), the `times` database (append-time samples), frame records
            dropped below the start, and the first data page of `sized/bytes` punched (git stores it as zeros). Phase 1
            (trims of `sized/bytes` to 7000, `json/j` to 16, `aged/text` to 2 by age) is checkpointed into LMDB; phase 2
            (two more appends and a trim of `sized/bytes` to 9000, the append `d;` to `aged/text` with its sample) is in
            `commit.log` only. Written by `RetentionFixtureTests.Generate_the_retention_v1_fixture` (skipped unless
            `DS_WRITE_FIXTURES=1`) on a fake clock starting at 2026-12-06T10:00:00Z; `RetentionFixtureTests` opens a copy
            in every test run. Never regenerate this directory.
            """, Ct);
        Start();
    }

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
