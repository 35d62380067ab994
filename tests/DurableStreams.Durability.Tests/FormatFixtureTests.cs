using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Data written by an earlier build opens with every byte: <c>Fixtures/files-v1</c> is a file-store data directory
/// (LMDB, data files, a commit log holding changes never checkpointed, and subscription state as snapshot plus journal)
/// written by <see cref="Generate_the_files_v1_fixture"/> through <see cref="StoreFormatFixture.WriteAsync"/>; the test
/// opens a copy and checks it with <see cref="StoreFormatFixture.VerifyAsync"/>. See Fixtures/files-v1/README.md.
/// </summary>
public sealed class FormatFixtureTests : FileStoreTestBase
{
    private const string Fixture = "files-v1";

    /// <summary>Files of a data directory that belong to a running process, not to the data.</summary>
    private static readonly string[] NotData = ["LOCK", "lock.mdb", "README.md", ".gitattributes"];

    [Fact]
    public async Task The_files_v1_data_directory_opens_with_every_byte_offset_fork_and_producer()
    {
        await StopAsync();
        Directory.Delete(DataDirectory, recursive: true);
        CopyData(Path.Combine(AppContext.BaseDirectory, "Fixtures", Fixture), DataDirectory);
        Time.SetUtcNow(StoreFormatFixture.OpenAt);
        Start();

        foreach (var group in StoreFormatFixture.Producers.GroupBy(p => p.Stream))
        {
            var actual = Store.CommittedProducers(group.Key);
            Assert.NotNull(actual);
            Assert.Equal(group.Select(p => p.Id).Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
            foreach (var (_, id, epoch, seq, at) in group)
            {
                Assert.Equal(new Core.ProducerState(epoch, seq, at), actual[id]);
            }
        }
        await StoreFormatFixture.VerifyAsync(Store, Time, Ct);

        await using var subscriptions = FileSubscriptionStateStore.Open(DataDirectory);
        var snapshot = await subscriptions.LoadAsync(Ct);
        StoreFormatFixture.AssertSubscriptions(snapshot.Subscriptions, snapshot.SigningKeys);
    }

    /// <summary>
    /// Writes <c>Fixtures/files-v1</c> into the source tree. Run it only to create a NEW fixture version (rename the
    /// constant first; an existing fixture is never overwritten):
    /// <c>DS_WRITE_FIXTURES=1 dotnet test tests/DurableStreams.Durability.Tests -c Release --filter Category=FixtureGenerator</c>.
    /// </summary>
    [Fact]
    [Trait("Category", "FixtureGenerator")]
    public async Task Generate_the_files_v1_fixture()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("DS_WRITE_FIXTURES") == "1", "Set DS_WRITE_FIXTURES=1 to write a new format fixture.");
        var target = Path.Combine(SourceDirectory(), "Fixtures", Fixture);
        Assert.False(Directory.Exists(target) && Directory.EnumerateFiles(target, "*.mdb", SearchOption.AllDirectories).Any(), $"{target} exists: fixtures are never rewritten");

        await StoreFormatFixture.WriteAsync(Store, Time, async () =>
        {
            await Store.CheckpointAsync();
            Store.Faults.SuppressCheckpoints = true;
        }, Ct);
        await StopAsync();

        // Subscription state: a snapshot (a tiny compaction threshold compacts on the first saves), then a journal.
        await using (var state = FileSubscriptionStateStore.Open(DataDirectory, minimumCompactionBytes: 1))
        {
            foreach (var subscription in StoreFormatFixture.Subscriptions())
            {
                await state.SaveAsync(subscription, Ct);
            }
            await state.SaveAsync(StoreFormatFixture.DeletedSubscription(), Ct);
        }
        Assert.True(File.Exists(Path.Combine(DataDirectory, FileSubscriptionStateStore.FileName)));
        await using (var state = FileSubscriptionStateStore.Open(DataDirectory))
        {
            await state.DeleteAsync(StoreFormatFixture.DeletedSubscription().Id, Ct);
            await state.SaveAsync(StoreFormatFixture.Subscriptions()[1], Ct);
            await state.SaveSigningKeysAsync(StoreFormatFixture.SigningKeys(), Ct);
        }
        Assert.True(new FileInfo(Path.Combine(DataDirectory, FileSubscriptionStateStore.JournalFileName)).Length > 8);

        CopyData(DataDirectory, target);
        TrimCommitLog(Path.Combine(target, "commit.log"));
        Start();
    }

    /// <summary>Cuts the preallocated commit log after its last record's end marker (the store re-extends it on open).</summary>
    internal static void TrimCommitLog(string path)
    {
        const int header = 24;
        var bytes = File.ReadAllBytes(path);
        var position = 0;
        var records = 0;
        while (position + header <= bytes.Length && BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(position)) != 0)
        {
            position += header + BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(position + 4));
            records++;
        }
        Assert.True(records > 0, "the commit log holds no records: the second phase was checkpointed");
        File.WriteAllBytes(path, bytes.AsSpan(0, position + header).ToArray());
    }

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    internal static void CopyData(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (NotData.Contains(Path.GetFileName(relative)))
            {
                continue;
            }
            var target = Path.Combine(to, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }
}
