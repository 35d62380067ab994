using System.IO.Compression;
using System.Net;
using System.Text;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>Compression of catch-up reads (brotli, gzip) and its absence on live reads.</summary>
public sealed class CompressionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("gzip")]
    [InlineData("br")]
    public async Task Compressed_catch_up_bytes_equal_the_uncompressed_ones_with_vary_and_a_weak_etag(string encoding)
    {
        await using var harness = await ServerHarness.StartAsync(o => o.Compression = true, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        var text = string.Concat(Enumerable.Range(0, 2000).Select(i => $"line {i % 10} of the log\n"));
        await harness.CreateAsync(name, "text/plain", text, Ct);

        using var plain = await harness.GetAsync(name, Ct);
        using var compressed = await harness.GetAsync(name, Ct, ("Accept-Encoding", encoding));
        var plainBytes = await plain.Content.ReadAsByteArrayAsync(Ct);
        var compressedBytes = await compressed.Content.ReadAsByteArrayAsync(Ct);

        Assert.Empty(plain.Content.Headers.ContentEncoding);
        Assert.Equal(encoding, Assert.Single(compressed.Content.Headers.ContentEncoding));
        Assert.Contains("Accept-Encoding", compressed.Headers.Vary);
        Assert.True(compressedBytes.Length < plainBytes.Length / 4, $"{compressedBytes.Length} vs {plainBytes.Length}");
        Assert.Equal(plainBytes, Decompress(compressedBytes, encoding));
        Assert.Equal(Encoding.UTF8.GetBytes(text), plainBytes);
        Assert.True(compressed.Headers.ETag!.IsWeak);
        Assert.Equal(plain.Headers.ETag, compressed.Headers.ETag);
        Assert.Equal(Http.Header(plain, "Stream-Next-Offset"), Http.Header(compressed, "Stream-Next-Offset"));

        using var notModified = await harness.GetAsync(name, Ct, ("Accept-Encoding", encoding), ("If-None-Match", compressed.Headers.ETag.ToString()));
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
    }

    [Fact]
    public async Task Long_poll_and_SSE_responses_are_never_compressed()
    {
        await using var harness = await ServerHarness.StartAsync(o => o.Compression = true, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "text/plain", new string('a', 10_000), Ct);

        using var longPoll = await harness.GetAsync(name + "?offset=-1&live=long-poll", Ct, ("Accept-Encoding", "gzip, br"));
        using var sseRequest = new HttpRequestMessage(HttpMethod.Get, new Uri(name + "?offset=-1&live=sse", UriKind.Relative));
        sseRequest.Headers.TryAddWithoutValidation("Accept-Encoding", "gzip, br");
        using var sse = await harness.Client.SendAsync(sseRequest, HttpCompletionOption.ResponseHeadersRead, Ct);

        Assert.Equal(HttpStatusCode.OK, longPoll.StatusCode);
        Assert.Empty(longPoll.Content.Headers.ContentEncoding);
        Assert.Equal(10_000, (await longPoll.Content.ReadAsByteArrayAsync(Ct)).Length);
        Assert.Equal(HttpStatusCode.OK, sse.StatusCode);
        Assert.Empty(sse.Content.Headers.ContentEncoding);
    }

    [Fact]
    public async Task Without_the_option_nothing_is_compressed_and_etags_stay_strong()
    {
        await using var harness = await ServerHarness.StartAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "text/plain", new string('a', 10_000), Ct);

        using var response = await harness.GetAsync(name, Ct, ("Accept-Encoding", "gzip, br"));

        Assert.Empty(response.Content.Headers.ContentEncoding);
        Assert.False(response.Headers.ETag!.IsWeak);
    }

    private static byte[] Decompress(byte[] data, string encoding)
    {
        using var input = new MemoryStream(data);
        using Stream decoder = encoding == "gzip" ? new GZipStream(input, CompressionMode.Decompress) : new BrotliStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        decoder.CopyTo(output);
        return output.ToArray();
    }
}
