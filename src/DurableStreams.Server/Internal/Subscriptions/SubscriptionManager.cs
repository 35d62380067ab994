using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using DurableStreams.Protocol;
using DurableStreams.Core;
using DurableStreams.Subscriptions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace DurableStreams.Server.Internal.Subscriptions;

/// <summary>
/// The subscription engine (§6–7): configuration, stream links and cursors, wakes with generation fencing and leases,
/// webhook delivery with retries, pull-wake claims. Every operation reads the subscription from an
/// <see cref="ISubscriptionRepository"/> and writes it back conditionally (see <c>UpdateAsync</c>), so the same code is
/// correct in one process (<see cref="LocalSubscriptionRepository"/>) and on several nodes sharing a database: racing
/// claims, wakes and acks have exactly one winner. Outbound webhook calls run outside any write, so appends never wait
/// for them. The append path only reads an immutable index (<see cref="OnAppended"/>).
/// </summary>
internal sealed partial class SubscriptionManager : IHostedService, IAsyncDisposable
{
    private const string WebhookHolder = "webhook";

    private readonly IStreamStore _store;
    private readonly DurableStreamsOptions _options;
    private readonly SubscriptionOptions _subscriptionOptions;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ISubscriptionRepository _repository;
    /// <summary>The in-memory state the engine created itself (no state configured), disposed with it.</summary>
    private readonly MemorySubscriptionStateStore? _ownedState;
    /// <summary>The single-process repository the engine created over its state (null with a shared repository).</summary>
    private readonly LocalSubscriptionRepository? _local;
    private readonly SemaphoreSlim _indexGate = new(1, 1);
    /// <summary>Per subscription, what the index is built from; guarded by <see cref="_indexGate"/>.</summary>
    private readonly Dictionary<string, IndexEntry> _indexEntries = new(StringComparer.Ordinal);
    /// <summary>Local wake-ups at lease expiry and retry times, by subscription; guarded by itself.</summary>
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
    private ITimer? _duePoll;
    private int _polling;

    public SubscriptionManager(IStreamStore store, IOptions<DurableStreamsOptions> options, ILogger<SubscriptionManager> logger)
    {
        _store = store;
        _options = options.Value;
        _subscriptionOptions = _options.Subscriptions;
        _time = _options.TimeProvider;
        _logger = logger;
        if (_subscriptionOptions.Repository is { } repository)
        {
            _repository = repository;
        }
        else
        {
            _ownedState = _subscriptionOptions.State is null ? new MemorySubscriptionStateStore() : null;
            _repository = _local = new LocalSubscriptionRepository(_subscriptionOptions.State ?? _ownedState!);
        }
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
        await _repository.InitializeAsync(cancellationToken);
        var now = _time.GetUtcNow();
        // Insert-if-absent: nodes starting together on shared state agree on one key, so every JWKS is the same.
        var keys = await _repository.GetOrAddSigningKeysAsync([WebhookSigner.NewKeyState(now)], cancellationToken);
        _signer = WebhookSigner.FromStates(keys, now, out var createdKey);
        if (createdKey)
        {
            await _repository.SaveSigningKeysAsync(_signer.States, cancellationToken);
        }
        var all = await RebuildIndexAsync(cancellationToken);
        _repository.LinksChanged += OnRemoteLinksChanged;
        _http = CreateHttpClient();
        _started = true;
        _worker = Task.Run(() => RunWorkerAsync(_stopping.Token), CancellationToken.None);
        // Pending work from before a restart is woken again; leases and retry schedules are honoured by Evaluate.
        foreach (var subscription in all)
        {
            Enqueue(subscription.State.Id);
        }
        if (_repository.IsShared)
        {
            var interval = _subscriptionOptions.SharedPollInterval;
            _duePoll = _time.CreateTimer(static state => ((SubscriptionManager)state!).PollDue(), this, interval, interval);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!_started)
        {
            return;
        }
        _started = false;
        _repository.LinksChanged -= OnRemoteLinksChanged;
        if (_duePoll is { } poll)
        {
            await poll.DisposeAsync();
        }
        await _stopping.CancelAsync();
        _queue.Writer.TryComplete();
        if (_worker is { } worker)
        {
            await worker.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        await Task.WhenAll(_deliveries.Keys).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        lock (_timers)
        {
            foreach (var timer in _timers.Values)
            {
                timer.Dispose();
            }
            _timers.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        _http?.Dispose();
        _local?.Dispose();
        if (_ownedState is not null)
        {
            await _ownedState.DisposeAsync();
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

    // ---- Shared state: other nodes' changes ---------------------------------------------------------------------

    /// <summary>
    /// Another node changed links (or, with null, anything may have changed): re-read that part of the index, then
    /// evaluate, so an append this node made before its index knew the new link still wakes the subscription.
    /// </summary>
    private void OnRemoteLinksChanged(string? id) => _ = RefreshAfterRemoteChangeAsync(id);

    private async Task RefreshAfterRemoteChangeAsync(string? id)
    {
        try
        {
            if (id is not null)
            {
                await RefreshIndexAsync(id, _stopping.Token);
                Enqueue(id);
                return;
            }
            foreach (var subscription in await RebuildIndexAsync(_stopping.Token))
            {
                Enqueue(subscription.State.Id);
            }
        }
        catch (Exception ex) when (!_stopping.IsCancellationRequested)
        {
            LogSharedStateFailed(_logger, ex);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>Enqueues expired leases and due retries, including those a node that has died had scheduled.</summary>
    private void PollDue()
    {
        if (!_started || Interlocked.Exchange(ref _polling, 1) == 1)
        {
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                foreach (var id in await _repository.ListDueAsync(_time.GetUtcNow(), _stopping.Token))
                {
                    Enqueue(id);
                }
            }
            catch (Exception ex) when (!_stopping.IsCancellationRequested)
            {
                LogSharedStateFailed(_logger, ex);
            }
            catch (OperationCanceledException)
            {
                // Stopping.
            }
            finally
            {
                Volatile.Write(ref _polling, 0);
            }
        }, CancellationToken.None);
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
        if (!_started)
        {
            return;
        }
        string[] candidates;
        if (_repository.IsShared)
        {
            // Another node may have just created a matching subscription that this node's index does not show yet.
            candidates = (await _repository.ListLinkCandidatesAsync(name, cancellationToken))
                .Where(c => c.Linked || (c.Pattern is { } pattern && StreamGlob.IsMatch(pattern, name)))
                .Select(c => c.Id)
                .ToArray();
        }
        else
        {
            var index = _index;
            if (index.IsEmpty)
            {
                return;
            }
            candidates = (index.ByPath.TryGetValue(name, out var linked) ? linked : [])
                .Concat(index.Patterns.Where(p => StreamGlob.IsMatch(p.Pattern, name)).Select(p => p.Id))
                .Distinct(StringComparer.Ordinal)
                .ToArray();
        }
        if (candidates.Length == 0)
        {
            return;
        }
        var start = (fork ? tail : StreamOffset.Zero).ToString();
        var touched = new List<string>();
        foreach (var id in candidates)
        {
            var changed = await UpdateAsync(id, subscription =>
            {
                // A pull-wake subscription never watches its own wake stream (its wake events would wake it again).
                var glob = subscription.Pattern is { } pattern && StreamGlob.IsMatch(pattern, name) && name != subscription.WakeStream;
                if (subscription.Links.TryGetValue(name, out var link))
                {
                    // A new incarnation of a linked name starts over.
                    link.AckedOffset = start;
                    link.Glob |= glob;
                }
                else if (glob)
                {
                    subscription.Links[name] = new SubscriptionLink { Glob = true, AckedOffset = start };
                }
                else
                {
                    return Keep(false);
                }
                return Save(true);
            }, missing: false, cancellationToken);
            if (changed)
            {
                touched.Add(id);
            }
        }
        await LinksChangedAsync(touched, cancellationToken);
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
        if (!_started)
        {
            return;
        }
        string[] ids;
        if (_repository.IsShared)
        {
            // As for creation: the database, not a possibly stale index, says which subscriptions link the name.
            ids = (await _repository.ListLinkCandidatesAsync(name, cancellationToken)).Where(c => c.Linked).Select(c => c.Id).ToArray();
        }
        else if (_index.ByPath.TryGetValue(name, out var linked))
        {
            ids = linked;
        }
        else
        {
            return;
        }
        var touched = new List<string>();
        foreach (var id in ids)
        {
            var changed = await UpdateAsync(id, subscription =>
                subscription.Links.TryGetValue(name, out var link) && !link.Explicit && subscription.Links.Remove(name) ? Save(true) : Keep(false),
                missing: false, cancellationToken);
            if (changed)
            {
                touched.Add(id);
            }
        }
        await LinksChangedAsync(touched, cancellationToken);
    }

    // ---- Control API --------------------------------------------------------------------------------------------

    public Task<string?> ValidateWebhookUrlAsync(string url, CancellationToken cancellationToken) => _policy.ValidateAsync(url, cancellationToken);

    public byte[] JwksJson() => Signer.JwksJson();

    public async Task<SubscriptionResult<SubscriptionView>> CreateOrConfirmAsync(string id, SubscriptionConfig config, string baseUrl, CancellationToken cancellationToken)
    {
        var hash = config.ComputeHash();
        SubscriptionState subscription;
        while (true)
        {
            if (await _repository.GetAsync(id, cancellationToken) is { } existing)
            {
                return existing.State.ConfigHash == hash
                    ? new SubscriptionView(existing.State, Signer.ActiveKid, Created: false)
                    : new SubscriptionError(SubscriptionErrorCode.SubscriptionAlreadyExists, "A subscription with this id exists with a different configuration.");
            }
            subscription = SubscriptionState.Create(id, config, _time.GetUtcNow(), baseUrl);
            foreach (var path in subscription.Streams)
            {
                subscription.Links[path] = new SubscriptionLink { Explicit = true, AckedOffset = (await CurrentTailAsync(path, cancellationToken)).ToString() };
            }
            if (subscription.Pattern is { } pattern && _store is IStreamCatalog catalog)
            {
                // Eager back-fill (§6.2): existing matches are linked at their tail, so history is not replayed.
                foreach (var name in MatchingStreams(catalog, subscription))
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
            if (await _repository.TryInsertAsync(subscription, cancellationToken))
            {
                break;
            }
            // Another request (or node) created it meanwhile: confirm against what it stored.
        }
        if (subscription.Pattern is not null && _store is IStreamCatalog lateCatalog)
        {
            // A stream created after the back-fill listed names but before the insert was visible to its creator's
            // hook is linked here, at its start (it was created after the subscription began).
            var late = MatchingStreams(lateCatalog, subscription).Where(n => !subscription.Links.ContainsKey(n)).ToArray();
            if (late.Length > 0)
            {
                await UpdateAsync(id, stored =>
                {
                    foreach (var name in late)
                    {
                        stored.Links.TryAdd(name, new SubscriptionLink { Glob = true, AckedOffset = StreamOffset.Zero.ToString() });
                    }
                    return Save(true);
                }, missing: false, cancellationToken);
            }
        }
        await LinksChangedAsync([id], cancellationToken);
        // An append that landed between reading a tail and the index knowing the link has no other trigger.
        Enqueue(id);
        var current = await _repository.GetAsync(id, cancellationToken);
        return new SubscriptionView(current?.State ?? subscription, Signer.ActiveKid, Created: true);
    }

    private static IEnumerable<string> MatchingStreams(IStreamCatalog catalog, SubscriptionState subscription) =>
        catalog.ListStreamNames().Where(name =>
            StreamGlob.IsMatch(subscription.Pattern!, name) && !StreamName.IsReserved(name) && name != subscription.WakeStream);

    public async Task<SubscriptionView?> GetAsync(string id, CancellationToken cancellationToken) =>
        await _repository.GetAsync(id, cancellationToken) is { } subscription ? new SubscriptionView(subscription.State, Signer.ActiveKid, Created: false) : null;

    /// <summary>Deletes (idempotently). In-flight wakes of it fail from now on and move no cursor.</summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        if (await _repository.DeleteAsync(id, cancellationToken))
        {
            CancelTimer(id);
            await LinksChangedAsync([id], cancellationToken);
        }
    }

    public async Task<SubscriptionError?> AddStreamsAsync(string id, IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        var error = await UpdateAsync<SubscriptionError?>(id, async subscription =>
        {
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
            return Save<SubscriptionError?>(null);
        }, NotFound(), cancellationToken);
        if (error is null)
        {
            await LinksChangedAsync([id], cancellationToken);
        }
        return error;
    }

    public async Task<SubscriptionError?> RemoveStreamAsync(string id, string path, CancellationToken cancellationToken)
    {
        var removed = false;
        var error = await UpdateAsync<SubscriptionError?>(id, subscription =>
        {
            removed = false;
            if (subscription.Links.TryGetValue(path, out var link) && link.Explicit)
            {
                link.Explicit = false;
                if (!link.Glob)
                {
                    subscription.Links.Remove(path);
                }
                removed = true;
                return Save<SubscriptionError?>(null);
            }
            return Keep<SubscriptionError?>(null);
        }, NotFound(), cancellationToken);
        if (removed)
        {
            await LinksChangedAsync([id], cancellationToken);
        }
        return error;
    }

    /// <summary>Webhook callback (§7.1) or pull-wake ack (§7.2): fencing, acks, lease extension or release.</summary>
    public async Task<SubscriptionResult<bool>> AckAsync(string id, string token, AckRequest request, SubscriptionType expected, CancellationToken cancellationToken)
    {
        if (CheckTokenSubject(id, token) is { } invalid)
        {
            return new SubscriptionResult<bool>(false, invalid);
        }
        var outcome = await UpdateAsync(id, async subscription =>
        {
            if (CheckFence(subscription, token, request, expected) is { } error)
            {
                return Keep(new AckOutcome(error, null));
            }
            var parsed = new List<(SubscriptionLink Link, StreamOffset Offset)>();
            foreach (var (stream, offsetText) in request.Acks)
            {
                var path = SubscriptionConfig.NormalizePath(stream);
                if (!subscription.Links.TryGetValue(path, out var link))
                {
                    return Keep(new AckOutcome(new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"Stream '{path}' is not linked to this subscription."), null));
                }
                if (!StreamOffset.TryParse(offsetText, out var offset))
                {
                    return Keep(new AckOutcome(new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"'{offsetText}' is not a valid offset."), null));
                }
                var tail = await CurrentTailAsync(path, cancellationToken);
                if (offset > tail)
                {
                    return Keep(new AckOutcome(new SubscriptionError(SubscriptionErrorCode.InvalidOffset, $"Offset '{offsetText}' is beyond the tail of '{path}'."), null));
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
                return Save(new AckOutcome(new SubscriptionResult<bool>(await HasPendingAsync(subscription, cancellationToken), null), null));
            }
            subscription.LeaseExpiresAt = _time.GetUtcNow().AddMilliseconds(subscription.LeaseTtlMs);
            return Save(new AckOutcome(new SubscriptionResult<bool>(false, null), subscription.LeaseExpiresAt));
        }, new AckOutcome(NotFound(), null), cancellationToken);
        if (outcome.Result.Error is null)
        {
            if (outcome.LeaseUntil is { } until)
            {
                ScheduleAt(id, until);
            }
            else
            {
                CancelTimer(id);
                if (outcome.Result.Value)
                {
                    Enqueue(id);
                }
            }
        }
        return outcome.Result;
    }

    /// <summary>Pull-wake release (§7.2): gives the lease back without acking; pending work is woken again.</summary>
    public async Task<SubscriptionError?> ReleaseAsync(string id, string token, AckRequest request, CancellationToken cancellationToken)
    {
        if (CheckTokenSubject(id, token) is { } invalid)
        {
            return invalid;
        }
        var error = await UpdateAsync(id, subscription =>
        {
            if (CheckFence(subscription, token, request, SubscriptionType.PullWake) is { } fenced)
            {
                return Keep<SubscriptionError?>(fenced);
            }
            ClearWake(subscription);
            return Save<SubscriptionError?>(null);
        }, NotFound(), cancellationToken);
        if (error is null)
        {
            CancelTimer(id);
            Enqueue(id);
        }
        return error;
    }

    /// <summary>Pull-wake claim (§7.2): of racing claims (on any node) exactly one wins the conditional write.</summary>
    public async Task<SubscriptionResult<ClaimView>> ClaimAsync(string id, string worker, CancellationToken cancellationToken)
    {
        var result = await UpdateAsync<SubscriptionResult<ClaimView>>(id, async subscription =>
        {
            if (subscription.Type != SubscriptionType.PullWake)
            {
                return Keep<SubscriptionResult<ClaimView>>(new SubscriptionError(SubscriptionErrorCode.InvalidRequest, "Only pull-wake subscriptions can be claimed."));
            }
            var now = _time.GetUtcNow();
            if (subscription.LeaseHolder is { } holder)
            {
                if (subscription.LeaseExpiresAt > now)
                {
                    return Keep<SubscriptionResult<ClaimView>>(new SubscriptionError(SubscriptionErrorCode.AlreadyClaimed, "Another worker holds the lease.", holder, subscription.Generation));
                }
                ClearWake(subscription);
            }
            var streams = await ViewStreamsAsync(subscription, cancellationToken);
            var pending = streams.Where(s => s.HasPending).ToArray();
            if (subscription.WakeId is null)
            {
                if (pending.Length == 0)
                {
                    return Keep<SubscriptionResult<ClaimView>>(new SubscriptionError(SubscriptionErrorCode.NoPendingWork, "The subscription has no pending work."));
                }
                subscription.Generation++;
                subscription.WakeId = NewWakeId();
            }
            subscription.WakeSnapshot = pending.ToDictionary(s => s.Path, s => s.TailOffset, StringComparer.Ordinal);
            subscription.LeaseHolder = worker;
            subscription.LeaseExpiresAt = now.AddMilliseconds(subscription.LeaseTtlMs);
            var token = Signer.CreateToken(id, subscription.Generation, subscription.WakeId);
            return Save<SubscriptionResult<ClaimView>>(new ClaimView(subscription.WakeId, subscription.Generation, token, pending, subscription.LeaseTtlMs, subscription.LeaseExpiresAt.Value));
        }, NotFound(), cancellationToken);
        if (result.Value is { } claim)
        {
            ScheduleAt(id, claim.LeaseExpiresAt);
        }
        return result;
    }

    /// <summary>Adds a new signing key; older keys stay in the JWKS for <paramref name="publishOldKeysFor"/>.</summary>
    public async Task RotateSigningKeyAsync(TimeSpan publishOldKeysFor, CancellationToken cancellationToken)
    {
        Signer.Rotate(_time.GetUtcNow(), publishOldKeysFor);
        await _repository.SaveSigningKeysAsync(Signer.States, cancellationToken);
    }

    /// <summary>
    /// The token must be one this server signed for <paramref name="id"/>, checked before the subscription is looked up:
    /// a junk or another subscription's token gets the same 401 whether or not <paramref name="id"/> exists, so
    /// callback, ack and release cannot be used to probe for subscription ids.
    /// </summary>
    private SubscriptionError? CheckTokenSubject(string id, string token) =>
        Signer.ReadToken(token) is { } claims && claims.Sub == id ? null : InvalidToken();

    private static SubscriptionError InvalidToken() => new(SubscriptionErrorCode.TokenInvalid, "The bearer token is not valid for this subscription.");

    /// <summary>The token and request must name the current wake of the subscription, of the expected type (§7.3).</summary>
    private SubscriptionError? CheckFence(SubscriptionState subscription, string token, AckRequest request, SubscriptionType expected)
    {
        var claims = Signer.ReadToken(token);
        if (claims is null || claims.Sub != subscription.Id)
        {
            return InvalidToken();
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

    // ---- Conditional updates ------------------------------------------------------------------------------------

    /// <summary>
    /// Reads the subscription, lets <paramref name="change"/> decide on that copy, and writes it back only if nobody
    /// changed it since (a conditional write on its version); a lost race re-reads and decides again. So two nodes
    /// (or two requests) never both win a claim, a wake or an ack. <paramref name="missing"/> answers an absent id.
    /// </summary>
    private async Task<T> UpdateAsync<T>(string id, Func<SubscriptionState, Task<Decision<T>>> change, T missing, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await _repository.GetAsync(id, cancellationToken) is not { } current)
            {
                return missing;
            }
            var decision = await change(current.State);
            if (!decision.Write || await _repository.TryUpdateAsync(current.State, current.Version, cancellationToken))
            {
                return decision.Result;
            }
        }
    }

    private Task<T> UpdateAsync<T>(string id, Func<SubscriptionState, Decision<T>> change, T missing, CancellationToken cancellationToken) =>
        UpdateAsync(id, subscription => Task.FromResult(change(subscription)), missing, cancellationToken);

    private static Decision<T> Save<T>(T result) => new(result, Write: true);

    private static Decision<T> Keep<T>(T result) => new(result, Write: false);

    /// <summary>A change's outcome: the caller's result and whether the changed copy is written.</summary>
    private readonly record struct Decision<T>(T Result, bool Write);

    private sealed record AckOutcome(SubscriptionResult<bool> Result, DateTimeOffset? LeaseUntil);

    /// <summary>What an evaluation decided to do once its write has won.</summary>
    private sealed record Evaluation(DateTimeOffset? WakeAt, Func<Task>? Then)
    {
        public static readonly Evaluation Nothing = new(null, null);
    }

    /// <summary>Updates this node's index after its own link changes and tells the other nodes.</summary>
    private async Task LinksChangedAsync(List<string> ids, CancellationToken cancellationToken)
    {
        foreach (var id in ids)
        {
            await RefreshIndexAsync(id, cancellationToken);
            await _repository.PublishLinksChangedAsync(id, cancellationToken);
        }
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

    /// <summary>
    /// Expires a lapsed lease, then starts a wake if work is pending and nothing is in flight (§7). The write that
    /// bumps the generation is conditional, so when several nodes evaluate at once exactly one delivers the wake.
    /// </summary>
    private async Task EvaluateAsync(string id, CancellationToken cancellationToken)
    {
        var evaluation = await UpdateAsync(id, async subscription =>
        {
            var now = _time.GetUtcNow();
            var changed = false;
            if (subscription.WakeId is not null)
            {
                if (subscription.LeaseExpiresAt is not { } expires)
                {
                    return Keep(Evaluation.Nothing); // A pull-wake wake is waiting for a claim.
                }
                if (now < expires)
                {
                    return Keep(new Evaluation(expires, null));
                }
                ClearWake(subscription);
                changed = true;
            }
            if (subscription.NextAttemptAt is { } next && now < next)
            {
                return new Decision<Evaluation>(new Evaluation(next, null), changed);
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
                return new Decision<Evaluation>(Evaluation.Nothing, changed);
            }
            subscription.Generation++;
            subscription.WakeId = NewWakeId();
            subscription.WakeSnapshot = pending.ToDictionary(s => s.Path, s => s.TailOffset, StringComparer.Ordinal);
            if (subscription.Type == SubscriptionType.Webhook)
            {
                subscription.LeaseHolder = WebhookHolder;
                subscription.LeaseExpiresAt = now.AddMilliseconds(subscription.LeaseTtlMs);
                var body = WebhookBody(subscription, pending);
                var (wakeId, url) = (subscription.WakeId, subscription.WebhookUrl!);
                return Save(new Evaluation(subscription.LeaseExpiresAt, () =>
                {
                    var delivery = Task.Run(() => DeliverAsync(id, wakeId, url, body), CancellationToken.None);
                    _deliveries.TryAdd(delivery, 0);
                    _ = delivery.ContinueWith(t => _deliveries.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                    return Task.CompletedTask;
                }));
            }
            subscription.LeaseHolder = null;
            subscription.LeaseExpiresAt = null;
            var events = WakeEvents(subscription, pending, now);
            var wakeStream = subscription.WakeStream!;
            return Save(new Evaluation(null, () => AppendWakeEventsAsync(id, wakeStream, events, cancellationToken)));
        }, Evaluation.Nothing, cancellationToken);
        if (evaluation.WakeAt is { } wakeAt)
        {
            ScheduleAt(id, wakeAt);
        }
        if (evaluation.Then is { } then)
        {
            await then();
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
            // Headers only: the body is read below, up to the cap, so a receiver cannot make the server buffer it all.
            using var response = await _http!.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _stopping.Token);
            delivered = response.IsSuccessStatusCode;
            if (delivered)
            {
                var answer = await ReadResponseAsync(response, _subscriptionOptions.MaxWebhookResponseBytes, _stopping.Token);
                if (answer is null)
                {
                    LogWebhookResponseTooLarge(_logger, id, _subscriptionOptions.MaxWebhookResponseBytes);
                    delivered = false;
                }
                else
                {
                    done = IsDone(answer);
                }
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

        try
        {
            var outcome = await UpdateAsync(id, subscription =>
            {
                if (subscription.WakeId != wakeId)
                {
                    return Keep(Evaluation.Nothing); // Deleted, expired or already acked by a callback: this outcome moves nothing.
                }
                if (!delivered)
                {
                    subscription.RetryCount++;
                    subscription.NextAttemptAt = _time.GetUtcNow() + RetrySchedule.Delay(subscription.RetryCount, NextJitter());
                    ClearWake(subscription);
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
                ClearWake(subscription);
                return Save(new Evaluation(null, () => Task.CompletedTask));
            }, Evaluation.Nothing, CancellationToken.None);
            if (outcome.WakeAt is { } retryAt)
            {
                ScheduleAt(id, retryAt);
            }
            else if (outcome.Then is not null)
            {
                CancelTimer(id);
                Enqueue(id);
            }
        }
        catch (Exception ex)
        {
            LogEvaluateFailed(_logger, ex, id);
        }
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
        timeout.CancelAfter(_subscriptionOptions.WebhookTimeout);
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

    /// <summary>Wakes the subscription's evaluation at <paramref name="when"/> (lease expiry or retry).</summary>
    private void ScheduleAt(string id, DateTimeOffset when)
    {
        var delay = when - _time.GetUtcNow();
        if (delay < TimeSpan.Zero)
        {
            delay = TimeSpan.Zero;
        }
        lock (_timers)
        {
            if (_timers.Remove(id, out var previous))
            {
                previous.Dispose();
            }
            if (!_started)
            {
                return;
            }
            _timers[id] = _time.CreateTimer(static state =>
            {
                var (manager, subscriptionId) = ((SubscriptionManager, string))state!;
                manager.Enqueue(subscriptionId);
            }, (this, id), delay, Timeout.InfiniteTimeSpan);
        }
    }

    private void CancelTimer(string id)
    {
        lock (_timers)
        {
            if (_timers.Remove(id, out var timer))
            {
                timer.Dispose();
            }
        }
    }

    private static SubscriptionError NotFound() => new(SubscriptionErrorCode.SubscriptionNotFound, "Subscription not found.");

    /// <summary>Re-reads every subscription and replaces the path index the append hook reads.</summary>
    private async Task<IReadOnlyList<VersionedSubscription>> RebuildIndexAsync(CancellationToken cancellationToken)
    {
        await _indexGate.WaitAsync(cancellationToken);
        try
        {
            var all = await _repository.ListAsync(cancellationToken);
            _indexEntries.Clear();
            foreach (var (subscription, _) in all)
            {
                _indexEntries[subscription.Id] = IndexEntry.Of(subscription);
            }
            _index = BuildIndex();
            return all;
        }
        finally
        {
            _indexGate.Release();
        }
    }

    /// <summary>Re-reads one subscription (absent: deleted) into the index; updates run one at a time.</summary>
    private async Task RefreshIndexAsync(string id, CancellationToken cancellationToken)
    {
        await _indexGate.WaitAsync(cancellationToken);
        try
        {
            if (await _repository.GetAsync(id, cancellationToken) is { } current)
            {
                _indexEntries[id] = IndexEntry.Of(current.State);
            }
            else
            {
                _indexEntries.Remove(id);
            }
            _index = BuildIndex();
        }
        finally
        {
            _indexGate.Release();
        }
    }

    /// <summary>A new immutable index from the entries; call under the index lock.</summary>
    private Index BuildIndex()
    {
        if (_indexEntries.Count == 0)
        {
            return Index.Empty;
        }
        var byPath = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var patterns = new List<(string Id, string Pattern)>();
        foreach (var (id, entry) in _indexEntries)
        {
            if (entry.Pattern is { } pattern)
            {
                patterns.Add((id, pattern));
            }
            foreach (var path in entry.Paths)
            {
                byPath[path] = byPath.TryGetValue(path, out var ids) ? [.. ids, id] : [id];
            }
        }
        return new Index(byPath, patterns.ToArray());
    }

    /// <summary>What the index needs of one subscription.</summary>
    private sealed record IndexEntry(string? Pattern, string[] Paths)
    {
        public static IndexEntry Of(SubscriptionState subscription) => new(subscription.Pattern, [.. subscription.Links.Keys]);
    }

    /// <summary>An immutable view for the append and create hooks.</summary>
    private sealed record Index(Dictionary<string, string[]> ByPath, (string Id, string Pattern)[] Patterns)
    {
        public static readonly Index Empty = new(new Dictionary<string, string[]>(StringComparer.Ordinal), []);

        public bool IsEmpty => ReferenceEquals(this, Empty);
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Webhook delivery for subscription {Id} failed (status {Status})")]
    private static partial void LogWebhookFailed(ILogger logger, Exception? exception, string id, int status);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Webhook delivery for subscription {Id} failed: the response body is larger than {Limit} bytes")]
    private static partial void LogWebhookResponseTooLarge(ILogger logger, string id, int limit);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Subscription {Id} could not append a wake event to {WakeStream}: {Status}")]
    private static partial void LogWakeStreamFailed(ILogger logger, string id, string wakeStream, string status);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error, Message = "Evaluating subscription {Id} failed")]
    private static partial void LogEvaluateFailed(ILogger logger, Exception exception, string id);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Reading shared subscription state failed")]
    private static partial void LogSharedStateFailed(ILogger logger, Exception exception);
}
