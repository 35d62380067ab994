using System.Globalization;
using System.Text;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// LMDB's mapped pages are given back after streams and frame indexes are loaded (issue 20, resident memory after
/// reading 10 GiB back): the records read stay in the page cache but leave the process's resident memory, and reads
/// after a release, or racing one, return the same bytes.
/// </summary>
public sealed class MappedPagesTests : FileStoreTestBase
{
    private const int Streams = 40;
    private const int AppendsPerStream = 20;

    private int _releaseEvery = 64;

    protected override FileStreamStoreOptions StoreOptions => new()
    {
        DataDirectory = DataDirectory,
        TimeProvider = Time,
        Durability = Durability,
        MetadataMapSize = MetadataMapSize,
        SweepInterval = TimeSpan.FromSeconds(2),
        MappedPagesReleaseRecords = _releaseEvery,
    };

    private static string NameOf(int i) => "m/" + i.ToString("D3", CultureInfo.InvariantCulture);

    private static string Piece(int stream, int append) => $"{stream}.{append};" + new string((char)('a' + (stream + append) % 26), 100);

    /// <summary>Streams of several frames each, so that loading their frame indexes reads many LMDB records.</summary>
    private async Task<Dictionary<string, string>> WriteStreamsAsync()
    {
        var expected = new Dictionary<string, string>();
        for (var i = 0; i < Streams; i++)
        {
            var name = NameOf(i);
            var text = new StringBuilder();
            await CreatedAsync(name);
            for (var a = 0; a < AppendsPerStream; a++)
            {
                await AppendedAsync(name, Piece(i, a));
                text.Append(Piece(i, a));
            }
            expected[name] = text.ToString();
        }
        return expected;
    }

    [Fact]
    public async Task Loading_frame_indexes_gives_the_mapped_pages_back_and_concurrent_reads_return_every_byte()
    {
        var expected = await WriteStreamsAsync();
        await RestartAsync();
        Assert.Equal(0, Store.MappedPagesReleases);

        // Every first read loads a stream and its frame index (21 records each): releases happen while other reads run.
        var reads = expected.Select(async pair => Assert.Equal(pair.Value, await ReadTextAsync(pair.Key))).ToList();
        await Task.WhenAll(reads).WaitAsync(HangGuard, Ct);

        // 40 × 22 records at one release per 64: about 13 (fewer if several reads cross the count together).
        var releases = Store.MappedPagesReleases;
        Assert.True(OperatingSystem.IsLinux() ? releases >= 5 : releases == 0, $"{releases} releases after loading {Streams} streams of {AppendsPerStream} frames");
        foreach (var (name, text) in expected)
        {
            Assert.Equal(text, await ReadTextAsync(name));
        }
    }

    [Fact]
    public async Task A_release_drops_the_maps_resident_pages_and_reads_after_it_are_exact()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "madvise on LMDB's map is Linux only.");
        var expected = await WriteStreamsAsync();
        _releaseEvery = int.MaxValue;
        await RestartAsync();
        foreach (var (name, text) in expected)
        {
            Assert.Equal(text, await ReadTextAsync(name));
        }
        var before = MapResidentKiB();
        Assert.True(before > 0, "LMDB's map holds no resident page after loading the streams");

        Assert.True(Store.ReleaseMappedPages());

        var after = MapResidentKiB();
        Assert.True(after < before, $"LMDB's map kept {after} KiB resident of {before} after the release");
        foreach (var (name, text) in expected)
        {
            Assert.Equal(text, await ReadTextAsync(name));
        }
        Assert.Equal(1, Store.MappedPagesReleases);
    }

    /// <summary>Resident KiB of this store's LMDB map (<c>/proc/self/smaps</c>, the mappings of its data.mdb).</summary>
    private int MapResidentKiB()
    {
        var path = " " + Path.GetFullPath(Path.Combine(DataDirectory, "meta", "data.mdb"));
        var resident = 0;
        var inMap = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            if (IsMappingHeader(line))
            {
                inMap = line.EndsWith(path, StringComparison.Ordinal);
                continue;
            }
            if (inMap && line.StartsWith("Rss:", StringComparison.Ordinal))
            {
                resident += int.Parse(line["Rss:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }
        return resident;
    }

    /// <summary>A mapping's first line: "start-end perms offset dev inode [path]".</summary>
    private static bool IsMappingHeader(string line)
    {
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        var dash = line.IndexOf('-', StringComparison.Ordinal);
        return dash > 0 && space > dash && !line.AsSpan(0, dash).ContainsAnyExcept("0123456789abcdef".AsSpan());
    }
}
