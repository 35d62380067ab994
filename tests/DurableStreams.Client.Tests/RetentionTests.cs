using System.Net;
using System.Text;
using DurableStreams.Client.Tests.Infrastructure;
using DurableStreams.Core.Memory;
using DurableStreams.Core.Retention;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>
/// A stream whose front retention dropped (issue 18): metadata names the retained start, a read below it fails with
/// <see cref="DurableStreamErrorCode.BeforeRetainedStart"/> at once (no retry, in every live mode), and -1 reads what remains.
/// </summary>
public sealed class RetentionTests
{
    private static readonly RetentionPolicy KeepFiveBytes = new(null, 5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Offset(long position) => $"0000000000000000_{position:D16}";

    /// <summary>A server over a memory store and a stream of three 5-byte appends trimmed to its last: retained start 10, tail 15.</summary>
    private static async Task<(ClientHarness Harness, MemoryStreamStore Store, string Name)> TrimmedStreamAsync()
    {
        var store = new MemoryStreamStore(new MemoryStreamStoreOptions { Retention = new RetentionPolicies([new RetentionRule("**", KeepFiveBytes)]) });
        var harness = await ClientHarness.StartAsync(options => options.Store = store, cancellationToken: Ct);
        var name = ClientHarness.NewName("trimmed");
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "aaaaa"u8.ToArray() }, Ct);
        await harness.Client.AppendAsync(name, "bbbbb", "text/plain", cancellationToken: Ct);
        await harness.Client.AppendAsync(name, "ccccc", "text/plain", cancellationToken: Ct);
        var trimmed = await ((IStreamRetention)store).ApplyRetentionAsync(name, KeepFiveBytes, Ct);
        Assert.Equal(10, trimmed.RetainedStart.Position);
        return (harness, store, name);
    }

    [Fact]
    public async Task Metadata_names_the_retained_start()
    {
        var (harness, store, name) = await TrimmedStreamAsync();
        await using var _ = harness;
        await using var __ = store;
        var untrimmed = ClientHarness.NewName();
        await harness.Client.CreateAsync(untrimmed, new CreateStreamOptions { ContentType = "text/plain" }, Ct);

        var metadata = await harness.Client.GetMetadataAsync(name, Ct);
        var fresh = await harness.Client.GetMetadataAsync(untrimmed, Ct);

        Assert.Equal(Offset(10), metadata.RetainedStart);
        Assert.Equal(Offset(15), metadata.NextOffset);
        Assert.Equal(Offset(0), fresh.RetainedStart);
    }

    [Theory]
    [InlineData(LiveMode.None)]
    [InlineData(LiveMode.LongPoll)]
    [InlineData(LiveMode.Sse)]
    [InlineData(LiveMode.Auto)]
    public async Task A_read_below_the_retained_start_fails_at_once_with_BeforeRetainedStart_and_the_start(LiveMode live)
    {
        var (harness, store, name) = await TrimmedStreamAsync();
        await using var _ = harness;
        await using var __ = store;

        var ex = await Assert.ThrowsAsync<DurableStreamException>(async () =>
        {
            await foreach (var chunk in harness.Client.ReadAsync(name, new ReadOptions { Offset = Offset(5), Live = live }, Ct))
            {
                Assert.Fail($"Read delivered {chunk.Data.Length} bytes below the retained start.");
            }
        });

        Assert.Equal(DurableStreamErrorCode.BeforeRetainedStart, ex.ErrorCode);
        Assert.Equal(HttpStatusCode.Gone, ex.StatusCode);
        Assert.Equal(Offset(10), ex.RetainedStart);
        Assert.Contains("retained start", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("{", ex.Message, StringComparison.Ordinal);
        // Not retried: the offset will never come back.
        Assert.Equal(1, harness.Faults.Requests.Count(r => r.Status == HttpStatusCode.Gone));
    }

    [Fact]
    public async Task A_deleted_stream_s_410_stays_Gone()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var source = ClientHarness.NewName("src");
        await harness.Client.CreateAsync(source, new CreateStreamOptions { ContentType = "text/plain", Body = "abc"u8.ToArray() }, Ct);
        await harness.Client.CreateAsync(ClientHarness.NewName("fork"), new CreateStreamOptions { ContentType = "text/plain", ForkFrom = source }, Ct);
        await harness.Client.DeleteAsync(source, Ct);

        var ex = await Assert.ThrowsAsync<DurableStreamException>(() => harness.Client.GetMetadataAsync(source, Ct));

        Assert.Equal(DurableStreamErrorCode.Gone, ex.ErrorCode);
        Assert.Null(ex.RetainedStart);
    }

    [Fact]
    public async Task Reading_from_minus_one_or_the_retained_start_gets_what_remains()
    {
        var (harness, store, name) = await TrimmedStreamAsync();
        await using var _ = harness;
        await using var __ = store;

        var fromStart = await ReadTextAsync(harness.Client, name, "-1");
        var fromRetained = await ReadTextAsync(harness.Client, name, Offset(10));

        Assert.Equal("ccccc", fromStart);
        Assert.Equal("ccccc", fromRetained);
    }

    private static async Task<string> ReadTextAsync(DurableStreamClient client, string name, string offset)
    {
        var text = new StringBuilder();
        await foreach (var chunk in client.ReadAsync(name, new ReadOptions { Offset = offset }, Ct))
        {
            text.Append(Encoding.UTF8.GetString(chunk.Data.Span));
        }
        return text.ToString();
    }
}
