using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text.Json;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Protocol;
using DurableStreams.Subscriptions.Wakes;
using Microsoft.Extensions.Logging;
using static DurableStreams.Subscriptions.SubscriptionUpdater;

namespace DurableStreams.Subscriptions.Webhooks;

/// <summary>
/// Webhook wakes (§7.1): the signed request, the bounded read of the receiver's answer, and its outcome — done (the
/// snapshot is acked), awaiting a callback, or a retry on the backoff schedule. Deliveries run outside any write, so
/// neither appends nor the wake worker wait for a receiver.
/// </summary>
internal sealed class WebhookDelivery : IDisposable
{
    private readonly SubscriptionOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly WebhookUrlPolicy _policy;
    private readonly WebhookSigner _signer;
    private readonly SubscriptionUpdater _updater;
    private readonly WakeScheduler _scheduler;
    private readonly CancellationToken _stopping;
    private readonly Func<double> _jitter;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<Task, byte> _deliveries = new();

    public WebhookDelivery(
        SubscriptionOptions options, TimeProvider time, ILogger logger, WebhookUrlPolicy policy, WebhookSigner signer,
        SubscriptionUpdater updater, WakeScheduler scheduler, CancellationToken stopping)
    {
        _options = options;
        _time = time;
        _logger = logger;
        _policy = policy;
        _signer = signer;
        _updater = updater;
        _scheduler = scheduler;
        _stopping = stopping;
        _jitter = options.JitterSource ?? (() => Random.Shared.NextDouble());
        _http = CreateHttpClient();
    }

    /// <summary>The wake's request body: its streams, and the callback URL and token (§7.1).</summary>
    public byte[] Body(SubscriptionState subscription, IReadOnlyList<StreamView> pending)
    {
        var token = _signer.CreateToken(subscription.Id, subscription.Generation, subscription.WakeId!);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("subscription_id", subscription.Id);
            writer.WriteString("wake_id", subscription.WakeId);
            writer.WriteNumber("generation", subscription.Generation);
            writer.WritePropertyName("streams");
            StreamViews.Write(writer, pending, withTail: true);
            writer.WriteString("callback_url", ControlPaths.ControlUrl(subscription.BaseUrl, "subscriptions/" + Uri.EscapeDataString(subscription.Id) + "/callback"));
            writer.WriteString("callback_token", token);
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Starts delivering one wake in the background (awaited by <see cref="StopAsync"/>).</summary>
    public void Send(string id, string wakeId, string url, byte[] body)
    {
        var delivery = Task.Run(() => DeliverAsync(id, wakeId, url, body), CancellationToken.None);
        _deliveries.TryAdd(delivery, 0);
        _ = delivery.ContinueWith(t => _deliveries.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Waits for deliveries in flight (the stopping token has been cancelled, so they end quickly).</summary>
    public async Task StopAsync(CancellationToken cancellationToken) =>
        await Task.WhenAll(_deliveries.Keys).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

    public void Dispose() => _http.Dispose();

    private HttpClient CreateHttpClient()
    {
        if (_options.WebhookHandler is { } handler)
        {
            return new HttpClient(handler, disposeHandler: false) { Timeout = _options.WebhookTimeout };
        }
        var sockets = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectCallback = ConnectCheckedAsync,
        };
        return new HttpClient(sockets, disposeHandler: true) { Timeout = _options.WebhookTimeout };
    }

    /// <summary>Connects only to addresses the SSRF rules allow, resolved at connect time.</summary>
    private async ValueTask<Stream> ConnectCheckedAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var addresses = await _policy.ResolveAllowedAsync(context.DnsEndPoint.Host, cancellationToken);
        if (addresses.Length == 0)
        {
            throw new HttpRequestException($"Webhook host '{context.DnsEndPoint.Host}' resolves to a disallowed address.");
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends one webhook wake and applies its outcome: done, awaiting a callback, or a scheduled retry.</summary>
    private async Task DeliverAsync(string id, string wakeId, string url, byte[] body)
    {
        bool delivered;
        var done = false;
        try
        {
            var timestamp = _time.GetUtcNow().ToUnixTimeSeconds();
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            request.Headers.TryAddWithoutValidation("Webhook-Signature", _signer.SignatureHeader(timestamp, body));
            // Headers only: the body is read below, up to the cap, so a receiver cannot make the server buffer it all.
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _stopping);
            delivered = response.IsSuccessStatusCode;
            if (delivered)
            {
                var answer = await ReadResponseAsync(response, _options.MaxWebhookResponseBytes, _stopping);
                if (answer is null)
                {
                    SubscriptionLog.WebhookResponseTooLarge(_logger, id, _options.MaxWebhookResponseBytes);
                    delivered = false;
                }
                else
                {
                    done = IsDone(answer);
                }
            }
            else
            {
                SubscriptionLog.WebhookFailed(_logger, null, id, (int)response.StatusCode);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
        {
            SubscriptionLog.WebhookFailed(_logger, ex, id, 0);
            delivered = false;
        }

        try
        {
            var outcome = await _updater.UpdateAsync(id, subscription => Outcome(subscription, wakeId, delivered, done), Evaluation.Nothing, CancellationToken.None);
            if (outcome.WakeAt is { } retryAt)
            {
                _scheduler.ScheduleAt(id, retryAt);
            }
            else if (outcome.Then is not null)
            {
                _scheduler.CancelTimer(id);
                _scheduler.Enqueue(id);
            }
        }
        catch (Exception ex)
        {
            SubscriptionLog.EvaluateFailed(_logger, ex, id);
        }
    }

    /// <summary>Applies a delivery's outcome to the subscription, if the wake is still the current one.</summary>
    private Decision<Evaluation> Outcome(SubscriptionState subscription, string wakeId, bool delivered, bool done)
    {
        if (subscription.WakeId != wakeId)
        {
            return Keep(Evaluation.Nothing); // Deleted, expired or already acked by a callback: this outcome moves nothing.
        }
        if (!delivered)
        {
            subscription.RetryCount++;
            subscription.NextAttemptAt = _time.GetUtcNow() + RetrySchedule.Delay(subscription.RetryCount, NextJitter());
            Wake.Clear(subscription);
            return Save(new Evaluation(subscription.NextAttemptAt, null));
        }
        subscription.RetryCount = 0;
        subscription.NextAttemptAt = null;
        if (!done)
        {
            return Save(Evaluation.Nothing);
        }
        // { "done": true } acks the snapshot and releases the lease (§7.1).
        foreach (var (path, tail) in subscription.WakeSnapshot)
        {
            if (subscription.Links.TryGetValue(path, out var link) && StreamOffset.TryParse(tail, out var offset)
                && StreamOffset.TryParse(link.AckedOffset, out var acked) && offset > acked)
            {
                link.AckedOffset = tail;
            }
        }
        Wake.Clear(subscription);
        return Save(new Evaluation(null, () => Task.CompletedTask));
    }

    private double NextJitter()
    {
        var value = _jitter();
        return value is >= 0 and < 1 ? value : 0.5;
    }

    /// <summary>
    /// Reads a webhook response body of at most <paramref name="limit"/> bytes within the webhook timeout; null when the
    /// receiver sends more (the rest is never read: disposing the response closes the connection).
    /// </summary>
    private async Task<byte[]?> ReadResponseAsync(HttpResponseMessage response, int limit, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength is { } length && length > limit)
        {
            return null;
        }
        // HttpClient.Timeout ends at the headers with ResponseHeadersRead; the body gets its own.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.WebhookTimeout);
        await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
        var buffer = new byte[Math.Min(limit + 1, 16 * 1024)];
        var total = 0;
        while (true)
        {
            if (total == buffer.Length)
            {
                if (total > limit)
                {
                    return null;
                }
                Array.Resize(ref buffer, (int)Math.Min((long)limit + 1, buffer.Length * 2L));
            }
            var read = await body.ReadAsync(buffer.AsMemory(total), timeout.Token);
            if (read == 0)
            {
                return buffer[..total];
            }
            total += read;
        }
    }

    private static bool IsDone(byte[] bytes)
    {
        if (bytes.Length == 0)
        {
            return false;
        }
        try
        {
            using var document = JsonDocument.Parse(bytes);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("done", out var done)
                && done.ValueKind == JsonValueKind.True;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
