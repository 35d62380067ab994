using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Xunit;

namespace DurableStreams.Interop.Tests;

/// <summary>
/// The official TypeScript client (<c>@durable-streams/client</c>, pinned in <c>reference/package-lock.json</c>) reads
/// our server in catch-up mode (<c>stream({ url, offset: "-1", live: false })</c>), which reads exactly one response:
/// <c>json()</c> and <c>text()</c> must return the whole stream, on each store. <c>reference/ts-client-read.mjs</c>
/// does the read and prints counts and a hash.
/// </summary>
public sealed class TsClientCatchUpTests(ReferenceServer reference)
{
    private const int Timeout = 300_000;
    private const int MessageCount = 100_000;
    private const int TextBytes = 20 * 1024 * 1024;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Stores => new("memory", "file");

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Stores))]
    public async Task Json_of_a_100000_message_stream_returns_every_message(string store)
    {
        reference.RequireRunning();
        await using var server = await StoreServer.StartAsync(store, Ct);
        var url = await server.CreateAsync("application/json");
        var texts = new List<string>(MessageCount);
        for (var batch = 0; batch < MessageCount; batch += 5_000)
        {
            var messages = Enumerable.Range(batch, 5_000).Select(i => $$"""{"i":{{i}},"s":"message {{i}} of the catch-up"}""").ToList();
            texts.AddRange(messages);
            await server.AppendAsync(url, "application/json", Encoding.UTF8.GetBytes("[" + string.Join(',', messages) + "]"));
        }

        var result = await ReadAsync("json", url);

        Assert.Equal(MessageCount, result.GetProperty("count").GetInt32());
        Assert.Equal(Sha256(Encoding.UTF8.GetBytes(string.Join('\n', texts))), result.GetProperty("sha256").GetString());
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Stores))]
    public async Task Text_of_a_20_MiB_stream_returns_every_byte(string store)
    {
        reference.RequireRunning();
        await using var server = await StoreServer.StartAsync(store, Ct);
        var url = await server.CreateAsync("text/plain");
        var data = new byte[TextBytes];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(i % 61 == 60 ? '\n' : 'a' + (i % 26));
        }
        // Appends of uneven sizes, so neither pieces nor caps line up with them.
        var cuts = new[] { 0, 3_000_001, 11_500_000, TextBytes };
        for (var i = 0; i + 1 < cuts.Length; i++)
        {
            await server.AppendAsync(url, "text/plain", data.AsMemory(cuts[i], cuts[i + 1] - cuts[i]));
        }

        var result = await ReadAsync("text", url);

        Assert.Equal(TextBytes, result.GetProperty("bytes").GetInt32());
        Assert.Equal(Sha256(data), result.GetProperty("sha256").GetString());
    }

    /// <summary>Runs <c>node ts-client-read.mjs</c> and parses the line it prints.</summary>
    private async Task<JsonElement> ReadAsync(string mode, Uri url)
    {
        var (exitCode, output) = await ReferenceServer.RunAsync("node", [Path.Combine(reference.PackageDirectory, "ts-client-read.mjs"), mode, url.AbsoluteUri], reference.PackageDirectory, TimeSpan.FromMinutes(3));
        Assert.True(exitCode == 0, $"ts-client-read.mjs exited with code {exitCode}: {output}");
        using var document = JsonDocument.Parse(output);
        return document.RootElement.Clone();
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
