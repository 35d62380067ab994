using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using DurableStreams.Core.Memory;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

/// <summary>Webhook responses are read up to <c>SubscriptionOptions.MaxWebhookResponseBytes</c>, through real sockets.</summary>
public sealed class WebhookResponseLimitTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(false)] // the body ends when the connection closes: no length to refuse up front
    [InlineData(true)]  // chunked
    public async Task A_receiver_answering_a_huge_body_fails_the_delivery_without_the_server_reading_it(bool chunked)
    {
        const long size = 256L * 1024 * 1024;
        await using var receiver = HugeBodyReceiver.Start(size, chunked);
        var time = new FakeTimeProvider(Start);
        var state = new ObservedStateStore(new MemorySubscriptionStateStore());
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = time });
        await using var harness = await SubscriptionHarness.StartAsync(store, state, time, configure: o =>
        {
            o.Subscriptions.WebhookHandler = null;
            o.Subscriptions.AllowLocalhostHttp = true;
        });
        using (var created = await harness.PutJsonAsync("__ds/subscriptions/huge", $$"""{"type":"webhook","streams":["orders/1"],"webhook":{"url":"http://127.0.0.1:{{receiver.Port}}/h"},"lease_ttl_ms":60000}"""))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        using (await harness.PutJsonAsync("orders/1", "{\"n\":1}"))
        {
        }

        var failed = await state.WaitForSaveAsync(s => s.NextAttemptAt is not null);
        var written = await receiver.Finished.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        Assert.Equal(1, failed.RetryCount);
        Assert.Equal(Start.AddSeconds(1), failed.NextAttemptAt);
        Assert.True(written < 32L * 1024 * 1024, $"The receiver wrote {written} bytes before the server closed the connection.");
    }

    [Fact]
    public async Task A_body_larger_than_a_configured_limit_fails_and_a_done_answer_within_it_acks()
    {
        var time = new FakeTimeProvider(Start);
        var state = new ObservedStateStore(new MemorySubscriptionStateStore());
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = time });
        await using var harness = await SubscriptionHarness.StartAsync(store, state, time, configure: o => o.Subscriptions.MaxWebhookResponseBytes = 20);
        harness.Webhooks.Enqueue(HttpStatusCode.OK, "{\"done\":true,\"pad\":\"xxxxxxxxxx\"}"); // 33 bytes
        harness.Webhooks.Enqueue(HttpStatusCode.OK, "{ \"done\": true }");                   // 16 bytes

        using (await harness.PutJsonAsync("__ds/subscriptions/limit", """{"type":"webhook","streams":["orders/1"],"webhook":{"url":"https://hooks.example/h"},"lease_ttl_ms":60000}"""))
        {
        }
        using (await harness.PutJsonAsync("orders/1", "{\"n\":1}"))
        {
        }
        await harness.Webhooks.NextRequestAsync();
        var failed = await state.WaitForSaveAsync(s => s.NextAttemptAt is not null);
        time.Advance(TimeSpan.FromSeconds(1));
        var retry = JsonDocument.Parse((await harness.Webhooks.NextRequestAsync()).Body).RootElement;
        var done = await state.WaitForSaveAsync(s => s.NextAttemptAt is null && s.WakeId is null);

        Assert.Equal(1, failed.RetryCount);
        Assert.Equal(retry.GetProperty("streams")[0].GetProperty("tail_offset").GetString(), done.Links["orders/1"].AckedOffset);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9/h")]
    [InlineData("http://localhost:9/h")]
    [InlineData("http://2130706433:9/h")]
    public async Task By_default_a_local_webhook_url_is_refused_with_400(string url)
    {
        var time = new FakeTimeProvider(Start);
        var state = new ObservedStateStore(new MemorySubscriptionStateStore());
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = time });
        await using var harness = await SubscriptionHarness.StartAsync(store, state, time);

        using var created = await harness.PutJsonAsync("__ds/subscriptions/local", $$$"""{"type":"webhook","streams":["a"],"webhook":{"url":"{{{url}}}"}}""");

        Assert.Equal(HttpStatusCode.BadRequest, created.StatusCode);
        Assert.Contains("allows local webhooks", await created.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_real_receiver_answering_done_acks_the_wake()
    {
        await using var receiver = HugeBodyReceiver.Start(0, chunked: false, body: "{ \"done\": true }"u8.ToArray());
        var time = new FakeTimeProvider(Start);
        var state = new ObservedStateStore(new MemorySubscriptionStateStore());
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = time });
        await using var harness = await SubscriptionHarness.StartAsync(store, state, time, configure: o =>
        {
            o.Subscriptions.WebhookHandler = null;
            o.Subscriptions.AllowLocalhostHttp = true;
        });
        using (await harness.PutJsonAsync("__ds/subscriptions/ok", $$"""{"type":"webhook","streams":["orders/1"],"webhook":{"url":"http://127.0.0.1:{{receiver.Port}}/h"},"lease_ttl_ms":60000}"""))
        {
        }
        string tail;
        using (var appended = await harness.PutJsonAsync("orders/1", "{\"n\":1}"))
        {
            tail = appended.Headers.GetValues("Stream-Next-Offset").Single();
        }

        var done = await state.WaitForSaveAsync(s => s.WakeId is null && s.Links.TryGetValue("orders/1", out var link) && link.AckedOffset == tail);

        Assert.Null(done.NextAttemptAt);
        Assert.Equal(0, done.RetryCount);
    }
}

/// <summary>
/// A raw HTTP/1.1 receiver on 127.0.0.1:0 for one request: it answers 200 with <c>body</c>, or with <c>size</c> bytes of
/// filler (close-delimited or chunked), and reports how many body bytes it managed to write before the peer went away.
/// </summary>
internal sealed class HugeBodyReceiver : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Task<long> _run;

    private HugeBodyReceiver(TcpListener listener, long size, bool chunked, byte[]? body)
    {
        _listener = listener;
        _run = Task.Run(() => ServeAsync(size, chunked, body));
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Body bytes written when the response ended (all of them) or the server closed the connection.</summary>
    public Task<long> Finished => _run;

    public static HugeBodyReceiver Start(long size, bool chunked, byte[]? body = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return new HugeBodyReceiver(listener, size, chunked, body);
    }

    private async Task<long> ServeAsync(long size, bool chunked, byte[]? body)
    {
        using var client = await _listener.AcceptTcpClientAsync();
        var stream = client.GetStream();
        await ReadRequestAsync(stream);
        if (body is not null)
        {
            var head = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
            await stream.WriteAsync(head);
            await stream.WriteAsync(body);
            return body.Length;
        }
        var header = chunked
            ? "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(header));
        var filler = new byte[64 * 1024];
        filler.AsSpan().Fill((byte)' ');
        var chunkHead = Encoding.ASCII.GetBytes($"{filler.Length:x}\r\n");
        var crlf = "\r\n"u8.ToArray();
        long written = 0;
        try
        {
            while (written < size)
            {
                if (chunked)
                {
                    await stream.WriteAsync(chunkHead);
                }
                await stream.WriteAsync(filler);
                if (chunked)
                {
                    await stream.WriteAsync(crlf);
                }
                written += filler.Length;
            }
            if (chunked)
            {
                await stream.WriteAsync("0\r\n\r\n"u8.ToArray());
            }
        }
        catch (IOException)
        {
            // The server closed the connection: the rest was never read.
        }
        return written;
    }

    private static async Task ReadRequestAsync(NetworkStream stream)
    {
        // Headers, then Content-Length bytes of body.
        var buffer = new List<byte>();
        var one = new byte[1];
        while (buffer.Count < 4 || !(buffer[^4] == '\r' && buffer[^3] == '\n' && buffer[^2] == '\r' && buffer[^1] == '\n'))
        {
            if (await stream.ReadAsync(one) == 0)
            {
                return;
            }
            buffer.Add(one[0]);
        }
        var headers = Encoding.ASCII.GetString(buffer.ToArray());
        var line = headers.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        var remaining = line is null ? 0 : int.Parse(line["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var body = new byte[remaining];
        await stream.ReadExactlyAsync(body);
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        try
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or TimeoutException or IOException)
        {
        }
    }
}
