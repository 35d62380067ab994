using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace DurableStreams.Bench;

/// <summary>
/// Unmeasured traffic that every server gets after it starts and before its cell: plain, JSON and producer appends,
/// catch-up reads, creates and deletes, long-poll and SSE readers, for a few seconds. A JIT-compiled server (ours) or a
/// JIT-ed one (V8) runs slower code in its first seconds; without this, a 5 s cell on a fresh server measures start-up
/// compilation as much as the server. Everything it creates is deleted afterwards, so the cell still starts on a store
/// with no streams in use.
/// </summary>
internal static class ServerWarmup
{
    public static async Task RunAsync(ServerProcess server, TimeSpan duration, CancellationToken cancellationToken)
    {
        if (duration <= TimeSpan.Zero)
        {
            return;
        }

        using var client = Protocol.CreateClient(48);
        var prefix = new Uri(server.BaseUri, $"v1/stream/warmup-{Guid.NewGuid():N}/");
        var created = new ConcurrentBag<Uri>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stop.CancelAfter(duration);

        async Task<Uri> CreateAsync(string name, string contentType)
        {
            var stream = new Uri(prefix, name);
            await Protocol.CreateAsync(client, stream, contentType, cancellationToken);
            created.Add(stream);
            return stream;
        }

        var live = await CreateAsync("live", Protocol.Json);
        var big = await CreateAsync("big", Protocol.OctetStream);
        var chunk = new byte[1024 * 1024];
        for (var i = 0; i < 8; i++)
        {
            await Protocol.AppendAsync(client, big, chunk, Protocol.OctetStream, cancellationToken);
        }

        var tasks = new List<Task>();
        AppendLoops("octet", 8, Protocol.OctetStream, new byte[100]);
        AppendLoops("json", 4, Protocol.Json, Encoding.UTF8.GetBytes("[" + string.Join(',', Enumerable.Range(0, 10).Select(n => $"{{\"n\":{n},\"text\":\"warm-up\"}}")) + "]"));

        for (var i = 0; i < 4; i++)
        {
            var name = $"producer-{i}";
            tasks.Add(Loop(async () =>
            {
                var stream = await CreateAsync(name, Protocol.OctetStream);
                var body = new byte[100];
                for (long seq = 0; !stop.IsCancellationRequested; seq++)
                {
                    await ProducerAppendAsync(client, stream, seq, body, cancellationToken);
                }
            }));
        }

        tasks.Add(Loop(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Protocol.ReadAllAsync(client, big, json: false, maxRequests: 1_000, cancellationToken);
            }
        }));

        tasks.Add(Loop(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var stream = new Uri(prefix, $"create-{n}");
                await Protocol.CreateAsync(client, stream, Protocol.OctetStream, cancellationToken);
                using var response = await client.DeleteAsync(stream, cancellationToken);
                if (response.StatusCode is not (HttpStatusCode.NoContent or HttpStatusCode.OK))
                {
                    created.Add(stream);
                }
            }
        }));

        // Live readers end when `stop` fires; the writer keeps them busy until then.
        tasks.Add(Loop(async () =>
        {
            var body = Encoding.UTF8.GetBytes("[{\"live\":true}]");
            while (!stop.IsCancellationRequested)
            {
                await Protocol.AppendAsync(client, live, body, Protocol.Json, cancellationToken);
                await Task.Delay(1, stop.Token);
            }
        }));
        for (var i = 0; i < 4; i++)
        {
            tasks.Add(Loop(() => LongPollAsync(client, live, stop.Token)));
            tasks.Add(Loop(() => SseAsync(client, live, stop.Token)));
        }

        await Task.WhenAll(tasks);
        foreach (var stream in created)
        {
            using var response = await client.DeleteAsync(stream, cancellationToken);
        }

        // `count` writers, each creating its own stream and appending `body` to it until the warm-up ends.
        void AppendLoops(string prefix, int count, string contentType, byte[] body)
        {
            for (var i = 0; i < count; i++)
            {
                var name = $"{prefix}-{i}";
                tasks.Add(Loop(async () =>
                {
                    var stream = await CreateAsync(name, contentType);
                    while (!stop.IsCancellationRequested)
                    {
                        await Protocol.AppendAsync(client, stream, body, contentType, cancellationToken);
                    }
                }));
            }
        }

        // A task ends quietly when the warm-up time is over; any other failure fails the cell, as a scenario would.
        async Task Loop(Func<Task> body)
        {
            try
            {
                await Task.Run(body, CancellationToken.None);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
            }
        }
    }

    private static async Task ProducerAppendAsync(HttpClient client, Uri stream, long seq, byte[] body, CancellationToken cancellationToken)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(Protocol.OctetStream);
        using var request = new HttpRequestMessage(HttpMethod.Post, stream) { Content = content };
        request.Headers.Add("Producer-Id", "warm-up");
        request.Headers.Add("Producer-Epoch", "0");
        request.Headers.Add("Producer-Seq", seq.ToString(CultureInfo.InvariantCulture));
        using var response = await client.SendAsync(request, cancellationToken);
        if (response.StatusCode is not (HttpStatusCode.NoContent or HttpStatusCode.OK))
        {
            throw new BenchFailureException($"warm-up producer append answered {(int)response.StatusCode}");
        }
    }

    private static async Task LongPollAsync(HttpClient client, Uri stream, CancellationToken stop)
    {
        var offset = await Protocol.HeadAsync(client, stream, stop);
        while (!stop.IsCancellationRequested)
        {
            using var response = await client.GetAsync(Protocol.ReadUri(stream, offset, longPoll: true), HttpCompletionOption.ResponseContentRead, stop);
            if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.NoContent))
            {
                throw new BenchFailureException($"warm-up long-poll answered {(int)response.StatusCode}");
            }

            offset = Protocol.NextOffset(response, "warm-up long-poll");
            await response.Content.ReadAsByteArrayAsync(stop);
        }
    }

    private static async Task SseAsync(HttpClient client, Uri stream, CancellationToken stop)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(stream.AbsoluteUri + "?offset=-1&live=sse"));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new BenchFailureException($"warm-up SSE answered {(int)response.StatusCode}");
        }

        await using var body = await response.Content.ReadAsStreamAsync(stop);
        var buffer = new byte[16 * 1024];
        // A server may end an SSE response after a while (the reference does); that is not a failure.
        while (await body.ReadAsync(buffer, stop) > 0)
        {
        }
    }
}
