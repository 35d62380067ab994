using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using DurableStreams.Protocol;
using DurableStreams.Storage;
using DurableStreams.Subscriptions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DurableStreams.Server.Internal.Subscriptions;

/// <summary>
/// The subscription engine (§6–7): configuration, stream links and cursors, wakes with generation fencing and leases,
/// webhook delivery with retries, pull-wake claims. State changes run under one async lock and are persisted through
/// <see cref="ISubscriptionStateStore"/> before they take effect; outbound webhook calls run outside the lock, so
/// appends never wait for them. The append path only reads an immutable index (<see cref="OnAppended"/>).
/// </summary>
internal sealed partial class SubscriptionManager : IHostedService, IAsyncDisposable
{
    private const string WebhookHolder = "webhook";

    private readonly IStreamStore _store;
    private readonly DurableStreamsOptions _options;
    private readonly SubscriptionOptions _subscriptionOptions;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ISubscriptionStateStore _state;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, SubscriptionState> _subscriptions = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ITimer> _timers = new(StringComparer.Ordinal);
    private readonly Channel<string> _queue = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, byte> _queued = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Task, byte> _deliveries = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly WebhookUrlPolicy _policy;
    private readonly Func<double> _jitter;
    private volatile Index _index = Index.Empty;
    private WebhookSigner? _signer;
    private HttpClient? _http;
    private Task? _worker;
    private volatile bool _started;

    public SubscriptionManager(IStreamStore store, IOptions<DurableStreamsOptions> options, ILogger<SubscriptionManager> logger)
    {
        _store = store;
        _options = options.Value;
        _subscriptionOptions = _options.Subscriptions;
        _time = _options.TimeProvider;
        _logger = logger;
        _state = _subscriptionOptions.State ?? new MemorySubscriptionStateStore();
        var resolver = _subscriptionOptions.HostResolver ?? ((host, ct) => Dns.GetHostAddressesAsync(host, ct));
        _policy = new WebhookUrlPolicy(resolver, _subscriptionOptions.AllowLocalhostHttp);
        _jitter = _subscriptionOptions.JitterSource ?? (() => Random.Shared.NextDouble());
    }

    /// <summary>Whether the API is served (options) and the engine has started.</summary>
    public bool Enabled => _options.EnableSubscriptions && _started;

    private WebhookSigner Signer => _signer ?? throw new InvalidOperationException("Subscriptions have not started.");

    // ---- Hosting ------------------------------------------------------------------------------------------------

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_options.EnableSubscriptions || _started)
        {
            return;
        }
        var snapshot = await _state.LoadAsync(cancellationToken);
        _signer = WebhookSigner.FromStates(snapshot.SigningKeys, _time.GetUtcNow(), out var createdKey);
        if (createdKey)
        {
            await _state.SaveSigningKeysAsync(_signer.States, cancellationToken);
        }
        foreach (var subscription in snapshot.Subscriptions)
        {
            _subscriptions[subscription.Id] = subscription;
        }
        RebuildIndex();
        _http = CreateHttpClient();
        _started = true;
        _worker = Task.Run(() => RunWorkerAsync(_stopping.Token), CancellationToken.None);
        // Pending work from before a restart is woken again; leases and retry schedules are honoured by Evaluate.
        foreach (var id in _subscriptions.Keys)
        {
            Enqueue(id);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!_started)
        {
            return;
        }
        _started = false;
        await _stopping.CancelAsync();
        _queue.Writer.TryComplete();
        if (_worker is { } worker)
        {
            await worker.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        await Task.WhenAll(_deliveries.Keys).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            foreach (var timer in _timers.Values)
            {
                timer.Dispose();
            }
            _timers.Clear();
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        _http?.Dispose();
        if (_subscriptionOptions.State is null)
        {
            await _state.DisposeAsync();
        }
        _stopping.Dispose();
    }

    private HttpClient CreateHttpClient()
    {
        if (_subscriptionOptions.WebhookHandler is { } handler)
        {
            return new HttpClient(handler, disposeHandler: false) { Timeout = _subscriptionOptions.WebhookTimeout };
        }
        var sockets = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectCallback = ConnectCheckedAsync,
        };
        return new HttpClient(sockets, disposeHandler: true) { Timeout = _subscriptionOptions.WebhookTimeout };
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

    // ---- Hooks from the stream endpoints -------------------------------------------------------------------------

    /// <summary>An append committed to <paramref name="name"/>: queue its subscriptions for a wake check. Never blocks.</summary>
    public void OnAppended(string name)
    {
        var index = _index;
        if (index.IsEmpty)
        {
            return;
        }
        if (index.ByPath.TryGetValue(name, out var ids))
        {
            foreach (var id in ids)
            {
                Enqueue(id);
            }
        }
    }

    /// <summary>
    /// A stream was created: link it to matching pattern subscriptions (and explicit links waiting for it) at its start,
    /// before its first append, so the initial body counts as pending work (§6.2). A fork starts at its creation tail.
    /// </summary>
    public async Task OnStreamCreatedAsync(string name, StreamOffset tail, bool fork, CancellationToken cancellationToken)
    {
        var index = _index;
        if (index.IsEmpty || !_started)
        {
            return;
        }
        var interested = index.ByPath.ContainsKey(name) || index.Patterns.Any(p => StreamGlob.IsMatch(p.Pattern, name));
        if (!interested)
        {
            return;
        }
        var start = fork ? tail : StreamOffset.Zero;
        var touched = new List<string>();
        await _gate.WaitAsync(cancellationToken);
        try
        {
            foreach (var subscription in _subscriptions.Values)
            {
                // A pull-wake subscription never watches its own wake stream (its wake events would wake it again).
                var glob = subscription.Pattern is { } pattern && StreamGlob.IsMatch(pattern, name) && name != subscription.WakeStream;
                if (subscription.Links.TryGetValue(name, out var link))
                {
                    // A new incarnation of a linked name starts over.
                    link.AckedOffset = start.ToString();
                    link.Glob |= glob;
                }
                else if (glob)
                {
                    subscription.Links[name] = new SubscriptionLink { Glob = true, AckedOffset = start.ToString() };
                }
                else
                {
                    continue;
                }
                await _state.SaveAsync(subscription, cancellationToken);
                touched.Add(subscription.Id);
            }
            RebuildIndex();
        }
        finally
        {
            _gate.Release();
        }
        foreach (var id in touched)
        {
            Enqueue(id);
        }
    }

    /// <summary>
    /// A stream was deleted: glob-only links to it are dropped; explicit links stay (they wait for a new stream of that
    /// name, which starts over at its beginning).
    /// </summary>
    public async Task OnStreamDeletedAsync(string name, CancellationToken cancellationToken)
    {
        var index = _index;
        if (index.IsEmpty || !_started || !index.ByPath.ContainsKey(name))
        {
            return;
        }
        await _gate.WaitAsync(cancellationToken);
        try
        {
            foreach (var subscription in _subscriptions.Values)
            {
                if (subscription.Links.TryGetValue(name, out var link) && !link.Explicit)
                {
                    subscription.Links.Remove(name);
                    await _state.SaveAsync(subscription, cancellationToken);
                }
            }
            RebuildIndex();
        }
        finally
        {
            _gate.Release();
        }
    }

    // ---- Control API --------------------------------------------------------------------------------------------

    public Task<string?> ValidateWebhookUrlAsync(string url, CancellationToken cancellationToken) => _policy.ValidateAsync(url, cancellationToken);

    public byte[] JwksJson() => Signer.JwksJson();

    public async Task<SubscriptionResult<SubscriptionView>> CreateOrConfirmAsync(string id, SubscriptionConfig config, string baseUrl, CancellationToken cancellationToken)
    {
        var hash = config.ComputeHash();
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_subscriptions.TryGetValue(id, out var existing))
            {
                return existing.ConfigHash == hash
                    ? new SubscriptionView(Clone(existing), Signer.ActiveKid, Created: false)
                    : new SubscriptionError(SubscriptionErrorCode.SubscriptionAlreadyExists, "A subscription with this id exists with a different configuration.");
            }
            var subscription = SubscriptionState.Create(id, config, _time.GetUtcNow(), baseUrl);
            foreach (var path in subscription.Streams)
            {
                subscription.Links[path] = new SubscriptionLink { Explicit = true, AckedOffset = (await CurrentTailAsync(path, cancellationToken)).ToString() };
            }
            if (subscription.Pattern is { } pattern && _store is IStreamCatalog catalog)
            {
                // Eager back-fill (§6.2): existing matches are linked at their tail, so history is not replayed.
                foreach (var name in catalog.ListStreamNames())
                {
                    if (StreamGlob.IsMatch(pattern, name) && !StreamName.IsReserved(name) && name != subscription.WakeStream)
                    {
                        if (subscription.Links.TryGetValue(name, out var link))
                        {
                            link.Glob = true;
                        }
                        else
                        {
                            subscription.Links[name] = new SubscriptionLink { Glob = true, AckedOffset = (await CurrentTailAsync(name, cancellationToken)).ToString() };
                        }
                    }
                }
            }
            await _state.SaveAsync(subscription, cancellationToken);
            _subscriptions[id] = subscription;
            RebuildIndex();
            return new SubscriptionView(Clone(subscription), Signer.ActiveKid, Created: true);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<SubscriptionView?> GetAsync(string id, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return _subscriptions.TryGetValue(id, out var subscription) ? new SubscriptionView(Clone(subscription), Signer.ActiveKid, Created: false) : null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Deletes (idempotently). In-flight wakes of it fail from now on and move no cursor.</summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_subscriptions.Remove(id))
            {
                await _state.DeleteAsync(id, cancellationToken);
                CancelTimer(id);
                RebuildIndex();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<SubscriptionError?> AddStreamsAsync(string id, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!_subscriptions.TryGetValue(id, out var subscription))
            {
                return NotFound();
            }
            foreach (var path in paths)
            {
                if (subscription.Links.TryGetValue(path, out var link))
                {
                    link.Explicit = true;
                }
                else
                {
                    subscription.Links[path] = new SubscriptionLink { Explicit = true, AckedOffset = (await CurrentTailAsync(path, cancellationToken)).ToString() };
                }
            }
            await _state.SaveAsync(subscription, cancellationToken);
            RebuildIndex();
            return null;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<SubscriptionError?> RemoveStreamAsync(string id, string path, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!_subscriptions.TryGetValue(id, out var subscription))
            {
                return NotFound();
            }
            if (subscription.Links.TryGetValue(path, out var link) && link.Explicit)
            {
                link.Explicit = false;
                if (!link.Glob)
                {
                    subscription.Links.Remove(path);
                }
                await _state.SaveAsync(subscription, cancellationToken);
                RebuildIndex();
            }
            return null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Webhook callback (§7.1) or pull-wake ack (§7.2): fencing, acks, lease extension or release.</summary>
    public async Task<SubscriptionResult<bool>> AckAsync(string id, string token, AckRequest request, SubscriptionType expected, CancellationToken cancellationToken)
    {
        bool nextWake;
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (CheckFence(id, token, request, expected) is { } error)
            {
                return error;
            }
            var subscription = _subscriptions[id];
            var parsed = new List<(SubscriptionLink Link, StreamOffset Offset)>();
            foreach (var (stream, offsetText) in request.Acks)
            {
                var path = SubscriptionConfig.NormalizePath(stream);
                if (!subscription.Links.TryGetValue(path, out var link))
                {
                    return new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"Stream '{path}' is not linked to this subscription.");
                }
                if (!StreamOffset.TryParse(offsetText, out var offset))
                {
                    return new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"'{offsetText}' is not a valid offset.");
                }
                var tail = await CurrentTailAsync(path, cancellationToken);
                if (offset > tail)
                {
                    return new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"Offset '{offsetText}' is beyond the tail of '{path}'.");
                }
                parsed.Add((link, offset));
            }
            foreach (var (link, offset) in parsed)
            {
                if (StreamOffset.TryParse(link.AckedOffset, out var acked) && offset > acked)
                {
                    link.AckedOffset = offset.ToString();
                }
            }
            if (request.Done)
            {
                ClearWake(subscription);
                CancelTimer(id);
                nextWake = await HasPendingAsync(subscription, cancellationToken);
            }
            else
            {
                subscription.LeaseExpiresAt = _time.GetUtcNow().AddMilliseconds(subscription.LeaseTtlMs);
                ScheduleAt(id, subscription.LeaseExpiresAt.Value);
                nextWake = false;
            }
            await _state.SaveAsync(subscription, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
        if (nextWake)
        {
            Enqueue(id);
        }
        return new SubscriptionResult<bool>(nextWake, null);
    }

    /// <summary>Pull-wake release (§7.2): gives the lease back without acking; pending work is woken again.</summary>
    public async Task<SubscriptionError?> ReleaseAsync(string id, string token, AckRequest request, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (CheckFence(id, token, request, SubscriptionType.PullWake) is { } error)
            {
                return error;
            }
            var subscription = _subscriptions[id];
            ClearWake(subscription);
            CancelTimer(id);
            await _state.SaveAsync(subscription, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
        Enqueue(id);
        return null;
    }

    /// <summary>Pull-wake claim (§7.2).</summary>
    public async Task<SubscriptionResult<ClaimView>> ClaimAsync(string id, string worker, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!_subscriptions.TryGetValue(id, out var subscription))
            {
                return NotFound();
            }
            if (subscription.Type != SubscriptionType.PullWake)
            {
                return new SubscriptionError(SubscriptionErrorCode.InvalidRequest, "Only pull-wake subscriptions can be claimed.");
            }
            var now = _time.GetUtcNow();
            if (subscription.LeaseHolder is { } holder)
            {
                if (subscription.LeaseExpiresAt > now)
                {
                    return new SubscriptionError(SubscriptionErrorCode.AlreadyClaimed, "Another worker holds the lease.", holder, subscription.Generation);
                }
                ClearWake(subscription);
            }
            var streams = await ViewStreamsAsync(subscription, cancellationToken);
            var pending = streams.Where(s => s.HasPending).ToArray();
            if (subscription.WakeId is null)
            {
                if (pending.Length == 0)
                {
                    return new SubscriptionError(SubscriptionErrorCode.NoPendingWork, "The subscription has no pending work.");
                }
                subscription.Generation++;
                subscription.WakeId = NewWakeId();
            }
            subscription.WakeSnapshot = pending.ToDictionary(s => s.Path, s => s.TailOffset, StringComparer.Ordinal);
            subscription.LeaseHolder = worker;
            subscription.LeaseExpiresAt = now.AddMilliseconds(subscription.LeaseTtlMs);
            await _state.SaveAsync(subscription, cancellationToken);
            ScheduleAt(id, subscription.LeaseExpiresAt.Value);
            var token = Signer.CreateToken(id, subscription.Generation, subscription.WakeId);
            return new ClaimView(subscription.WakeId, subscription.Generation, token, pending, subscription.LeaseTtlMs);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Adds a new signing key; older keys stay in the JWKS for <paramref name="publishOldKeysFor"/>.</summary>
    public async Task RotateSigningKeyAsync(TimeSpan publishOldKeysFor, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            Signer.Rotate(_time.GetUtcNow(), publishOldKeysFor);
            await _state.SaveSigningKeysAsync(Signer.States, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The token and request must name the current wake of a live subscription of the expected type (§7.3).</summary>
    private SubscriptionError? CheckFence(string id, string token, AckRequest request, SubscriptionType expected)
    {
        if (!_subscriptions.TryGetValue(id, out var subscription))
        {
            return NotFound();
        }
        var claims = Signer.ReadToken(token);
        if (claims is null || claims.Sub != id)
        {
            return new SubscriptionError(SubscriptionErrorCode.TokenInvalid, "The bearer token is not valid for this subscription.");
        }
        if (subscription.Type != expected)
        {
            return new SubscriptionError(SubscriptionErrorCode.InvalidRequest, "This endpoint does not apply to the subscription's delivery type.");
        }
        var now = _time.GetUtcNow();
        var leaseLive = subscription.LeaseHolder is not null && subscription.LeaseExpiresAt > now;
        if (subscription.WakeId is null || !leaseLive || claims.Gen != subscription.Generation || claims.Wid != subscription.WakeId
            || request.Generation != subscription.Generation || request.WakeId != subscription.WakeId)
        {
            return new SubscriptionError(SubscriptionErrorCode.Fenced, "The wake is stale: its generation or wake id is not the current one.", Generation: subscription.Generation);
        }
        return null;
    }

    // ---- Wakes --------------------------------------------------------------------------------------------------

    private void Enqueue(string id)
    {
        if (_queued.TryAdd(id, 0) && !_queue.Writer.TryWrite(id))
        {
            _queued.TryRemove(id, out _);
        }
    }

    private async Task RunWorkerAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var id in _queue.Reader.ReadAllAsync(cancellationToken))
            {
                _queued.TryRemove(id, out _);
                try
                {
                    await EvaluateAsync(id, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    LogEvaluateFailed(_logger, ex, id);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>Expires a lapsed lease, then starts a wake if work is pending and nothing is in flight (§7).</summary>
    private async Task EvaluateAsync(string id, CancellationToken cancellationToken)
    {
        Func<Task>? after = null;
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!_subscriptions.TryGetValue(id, out var subscription))
            {
                return;
            }
            var now = _time.GetUtcNow();
            var changed = false;
            if (subscription.WakeId is not null)
            {
                if (subscription.LeaseExpiresAt is not { } expires)
                {
                    return; // A pull-wake wake is waiting for a claim.
                }
                if (now < expires)
                {
                    ScheduleAt(id, expires);
                    return;
                }
                ClearWake(subscription);
                changed = true;
            }
            if (subscription.NextAttemptAt is { } next && now < next)
            {
                ScheduleAt(id, next);
                if (changed)
                {
                    await _state.SaveAsync(subscription, cancellationToken);
                }
                return;
            }
            var streams = await ViewStreamsAsync(subscription, cancellationToken);
            var pending = streams.Where(s => s.HasPending).ToArray();
            if (pending.Length == 0)
            {
                if (subscription.NextAttemptAt is not null)
                {
                    subscription.NextAttemptAt = null;
                    subscription.RetryCount = 0;
                    changed = true;
                }
                if (changed)
                {
                    await _state.SaveAsync(subscription, cancellationToken);
                }
                return;
            }
            subscription.Generation++;
            subscription.WakeId = NewWakeId();
            subscription.WakeSnapshot = pending.ToDictionary(s => s.Path, s => s.TailOffset, StringComparer.Ordinal);
            if (subscription.Type == SubscriptionType.Webhook)
            {
                subscription.LeaseHolder = WebhookHolder;
                subscription.LeaseExpiresAt = now.AddMilliseconds(subscription.LeaseTtlMs);
                await _state.SaveAsync(subscription, cancellationToken);
                ScheduleAt(id, subscription.LeaseExpiresAt.Value);
                var body = WebhookBody(subscription, pending);
                var wake = (subscription.WakeId, subscription.Generation, subscription.WebhookUrl!);
                after = () =>
                {
                    var delivery = Task.Run(() => DeliverAsync(id, wake.WakeId, wake.Item3, body), CancellationToken.None);
                    _deliveries.TryAdd(delivery, 0);
                    _ = delivery.ContinueWith(t => _deliveries.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    return Task.CompletedTask;
                };
            }
            else
            {
                subscription.LeaseHolder = null;
                subscription.LeaseExpiresAt = null;
                await _state.SaveAsync(subscription, cancellationToken);
                var events = WakeEvents(subscription, pending, now);
                var wakeStream = subscription.WakeStream!;
                after = () => AppendWakeEventsAsync(id, wakeStream, events, cancellationToken);
            }
        }
        finally
        {
            _gate.Release();
        }
        if (after is not null)
        {
            await after();
        }
    }

    private async Task AppendWakeEventsAsync(string id, string wakeStream, byte[] events, CancellationToken cancellationToken)
    {
        var result = await _store.AppendAsync(wakeStream, new AppendRequest { ContentType = ContentTypes.Json, Body = events }, cancellationToken);
        if (result.Status != AppendStatus.Appended)
        {
            LogWakeStreamFailed(_logger, id, wakeStream, result.Status.ToString());
            return;
        }
        OnAppended(wakeStream);
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
            request.Headers.TryAddWithoutValidation("Webhook-Signature", Signer.SignatureHeader(timestamp, body));
            using var response = await _http!.SendAsync(request, _stopping.Token);
            delivered = response.IsSuccessStatusCode;
            if (delivered)
            {
                done = await ReadDoneAsync(response, _stopping.Token);
            }
            else
            {
                LogWebhookFailed(_logger, null, id, (int)response.StatusCode);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
        {
            LogWebhookFailed(_logger, ex, id, 0);
            delivered = false;
        }

        var enqueue = false;
        await _gate.WaitAsync(CancellationToken.None);
        try
        {
            if (!_subscriptions.TryGetValue(id, out var subscription) || subscription.WakeId != wakeId)
            {
                return; // Deleted, expired or already acked by a callback: this outcome moves nothing.
            }
            if (delivered)
            {
                subscription.RetryCount = 0;
                subscription.NextAttemptAt = null;
                if (done)
                {
                    // { "done": true } acks the snapshot and releases the lease (§7.1).
                    foreach (var (path, tail) in subscription.WakeSnapshot)
                    {
                        if (subscription.Links.TryGetValue(path, out var link) && StreamOffset.TryParse(tail, out var offset)
                            && StreamOffset.TryParse(link.AckedOffset, out var acked) && offset > acked)
                        {
                            link.AckedOffset = tail;
                        }
                    }
                    ClearWake(subscription);
                    CancelTimer(id);
                    enqueue = true;
                }
            }
            else
            {
                subscription.RetryCount++;
                subscription.NextAttemptAt = _time.GetUtcNow() + RetrySchedule.Delay(subscription.RetryCount, NextJitter());
                ClearWake(subscription);
                ScheduleAt(id, subscription.NextAttemptAt.Value);
            }
            await _state.SaveAsync(subscription, CancellationToken.None);
        }
        finally
        {
            _gate.Release();
        }
        if (enqueue)
        {
            Enqueue(id);
        }
    }

    private double NextJitter()
    {
        var value = _jitter();
        return value is >= 0 and < 1 ? value : 0.5;
    }

    private static async Task<bool> ReadDoneAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            if (bytes.Length == 0)
            {
                return false;
            }
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

    private byte[] WebhookBody(SubscriptionState subscription, IReadOnlyList<StreamView> pending)
    {
        var token = Signer.CreateToken(subscription.Id, subscription.Generation, subscription.WakeId!);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("subscription_id", subscription.Id);
            writer.WriteString("wake_id", subscription.WakeId);
            writer.WriteNumber("generation", subscription.Generation);
            writer.WritePropertyName("streams");
            WriteStreams(writer, pending, withTail: true);
            writer.WriteString("callback_url", ControlUrl(subscription.BaseUrl, "subscriptions/" + Uri.EscapeDataString(subscription.Id) + "/callback"));
            writer.WriteString("callback_token", token);
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static byte[] WakeEvents(SubscriptionState subscription, IReadOnlyList<StreamView> pending, DateTimeOffset now)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var stream in pending)
            {
                writer.WriteStartObject();
                writer.WriteString("type", "wake");
                writer.WriteString("subscription_id", subscription.Id);
                writer.WriteString("stream", stream.Path);
                writer.WriteNumber("generation", subscription.Generation);
                writer.WriteNumber("ts", now.ToUnixTimeMilliseconds());
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
        }
        return buffer.ToArray();
    }

    /// <summary>Writes stream views as the protocol's JSON array.</summary>
    public static void WriteStreams(Utf8JsonWriter writer, IEnumerable<StreamView> streams, bool withTail)
    {
        writer.WriteStartArray();
        foreach (var stream in streams)
        {
            writer.WriteStartObject();
            writer.WriteString("path", stream.Path);
            writer.WriteString("link_type", stream.LinkType);
            writer.WriteString("acked_offset", stream.AckedOffset);
            if (withTail)
            {
                writer.WriteString("tail_offset", stream.TailOffset);
                writer.WriteBoolean("has_pending", stream.HasPending);
            }
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }

    /// <summary>A URL under the reserved prefix of the stream root a subscription was created through.</summary>
    public static string ControlUrl(string? baseUrl, string relative) => (baseUrl ?? string.Empty).TrimEnd('/') + "/" + StreamName.ReservedSegment + "/" + relative;

    private async Task<List<StreamView>> ViewStreamsAsync(SubscriptionState subscription, CancellationToken cancellationToken)
    {
        var views = new List<StreamView>(subscription.Links.Count);
        foreach (var (path, link) in subscription.Links.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            var metadata = await _store.GetMetadataAsync(path, cancellationToken);
            var acked = StreamOffset.TryParse(link.AckedOffset, out var a) ? a : StreamOffset.Zero;
            var tail = metadata.Status == ReadStatus.Ok ? metadata.Info!.Tail : acked;
            views.Add(new StreamView(path, link.LinkType, link.AckedOffset, tail.ToString(), tail > acked));
        }
        return views;
    }

    private async Task<bool> HasPendingAsync(SubscriptionState subscription, CancellationToken cancellationToken) =>
        (await ViewStreamsAsync(subscription, cancellationToken)).Exists(s => s.HasPending);

    private async Task<StreamOffset> CurrentTailAsync(string path, CancellationToken cancellationToken)
    {
        var metadata = await _store.GetMetadataAsync(path, cancellationToken);
        return metadata.Status == ReadStatus.Ok ? metadata.Info!.Tail : StreamOffset.Zero;
    }

    private static void ClearWake(SubscriptionState subscription)
    {
        subscription.WakeId = null;
        subscription.WakeSnapshot = new Dictionary<string, string>(StringComparer.Ordinal);
        subscription.LeaseHolder = null;
        subscription.LeaseExpiresAt = null;
    }

    private static string NewWakeId() => "w_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    /// <summary>Wakes the subscription's evaluation at <paramref name="when"/> (lease expiry or retry); call under the lock.</summary>
    private void ScheduleAt(string id, DateTimeOffset when)
    {
        CancelTimer(id);
        var delay = when - _time.GetUtcNow();
        if (delay < TimeSpan.Zero)
        {
            delay = TimeSpan.Zero;
        }
        _timers[id] = _time.CreateTimer(static state =>
        {
            var (manager, subscriptionId) = ((SubscriptionManager, string))state!;
            manager.Enqueue(subscriptionId);
        }, (this, id), delay, Timeout.InfiniteTimeSpan);
    }

    private void CancelTimer(string id)
    {
        if (_timers.Remove(id, out var timer))
        {
            timer.Dispose();
        }
    }

    private static SubscriptionError NotFound() => new(SubscriptionErrorCode.SubscriptionNotFound, "Subscription not found.");

    private static SubscriptionState Clone(SubscriptionState state) =>
        JsonSerializer.Deserialize<SubscriptionState>(JsonSerializer.SerializeToUtf8Bytes(state, SubscriptionJson.Options), SubscriptionJson.Options)!;

    /// <summary>Rebuilds the path index the append hook reads; call under the lock.</summary>
    private void RebuildIndex()
    {
        var byPath = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var patterns = new List<(string Id, string Pattern)>();
        foreach (var subscription in _subscriptions.Values)
        {
            if (subscription.Pattern is { } pattern)
            {
                patterns.Add((subscription.Id, pattern));
            }
            foreach (var path in subscription.Links.Keys)
            {
                byPath[path] = byPath.TryGetValue(path, out var ids) ? [.. ids, subscription.Id] : [subscription.Id];
            }
        }
        _index = _subscriptions.Count == 0 ? Index.Empty : new Index(byPath, patterns.ToArray());
    }

    /// <summary>An immutable view for the append and create hooks.</summary>
    private sealed record Index(Dictionary<string, string[]> ByPath, (string Id, string Pattern)[] Patterns)
    {
        public static readonly Index Empty = new(new Dictionary<string, string[]>(StringComparer.Ordinal), []);

        public bool IsEmpty => ReferenceEquals(this, Empty);
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Webhook delivery for subscription {Id} failed (status {Status})")]
    private static partial void LogWebhookFailed(ILogger logger, Exception? exception, string id, int status);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Subscription {Id} could not append a wake event to {WakeStream}: {Status}")]
    private static partial void LogWakeStreamFailed(ILogger logger, string id, string wakeStream, string status);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error, Message = "Evaluating subscription {Id} failed")]
    private static partial void LogEvaluateFailed(ILogger logger, Exception exception, string id);
}
