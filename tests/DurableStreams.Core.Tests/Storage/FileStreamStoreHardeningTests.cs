using System.Text;
using DurableStreams.Protocol;
using DurableStreams.Storage;
using DurableStreams.Storage.File;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Core.Tests.Storage;

/// <summary>File-store hardening outside the shared contract: limits across restarts, file modes, the frame index.</summary>
public sealed class FileStreamStoreHardeningTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private FileStreamStore Open(int maxForkDepth = ForkRules.DefaultMaxForkDepth, DurabilityMode durability = DurabilityMode.Always) =>
        FileStreamStore.Open(new FileStreamStoreOptions
        {
            DataDirectory = _directory.Path,
            TimeProvider = _time,
            MaxForkDepth = maxForkDepth,
            Durability = durability,
        });

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static async Task<string> ReadAllAsync(FileStreamStore store, string name)
    {
        using var read = await store.ReadAsync(name, new ReadRequest(OffsetQuery.Beginning, 1 << 24), Ct);
        Assert.Equal(ReadStatus.Ok, read.Status);
        return Encoding.UTF8.GetString(read.Chunks.SelectMany(c => c.ToArray()).ToArray());
    }

    [Fact]
    public async Task A_chain_deeper_than_the_limit_opens_and_serves_after_the_limit_is_lowered()
    {
        const int depth = 1_000;
        var expected = new StringBuilder("0");
        await using (var store = Open(maxForkDepth: depth, durability: DurabilityMode.None))
        {
            Assert.Equal(CreateStatus.Created, (await store.CreateAsync("c0", new CreateStreamRequest { ContentType = "text/plain", Body = Bytes("0") }, Ct)).Status);
            for (var i = 1; i <= depth; i++)
            {
                var fork = new CreateStreamRequest { Fork = new ForkRequest($"c{i - 1}", null, 0) };
                Assert.Equal(CreateStatus.Created, (await store.CreateAsync($"c{i}", fork, Ct)).Status);
                if (i % 100 == 0)
                {
                    await store.AppendAsync($"c{i}", new AppendRequest { ContentType = "text/plain", Body = Bytes($"-{i}") }, Ct);
                    expected.Append(System.Globalization.CultureInfo.InvariantCulture, $"-{i}");
                }
            }
        }

        // Reopened with the default limit (100): the existing chain is served; only new forks past the limit are refused.
        await using var reopened = Open();
        Assert.Equal(expected.ToString(), await ReadAllAsync(reopened, $"c{depth}"));
        var refused = await reopened.CreateAsync("deeper", new CreateStreamRequest { Fork = new ForkRequest($"c{depth}", null, 0) }, Ct);
        Assert.Equal(CreateStatus.ForkTooDeep, refused.Status);
        Assert.Equal(ForkRules.DefaultMaxForkDepth, refused.Limit);
        Assert.Equal(CreateStatus.Created, (await reopened.CreateAsync("shallow", new CreateStreamRequest { Fork = new ForkRequest("c99", null, 0) }, Ct)).Status);
        Assert.Equal(AppendStatus.Appended, (await reopened.AppendAsync($"c{depth}", new AppendRequest { ContentType = "text/plain", Body = Bytes("!") }, Ct)).Status);
        Assert.Equal(expected + "!", await ReadAllAsync(reopened, $"c{depth}"));
    }

    public void Dispose() => _directory.Dispose();
}
