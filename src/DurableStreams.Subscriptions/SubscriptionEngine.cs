using System.Net;
using DurableStreams.Core;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Subscriptions.Wakes;
using DurableStreams.Subscriptions.Webhooks;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Subscriptions;

/// <summary>
/// The subscription engine (§6–7), composed of one part per job: <see cref="SubscriptionOperations"/> (the control
/// API), <see cref="WakeOperations"/> (callback, ack, claim, release), <see cref="StreamLinker"/> (the store's change
/// listener), <see cref="SubscriptionIndex"/>, <see cref="WakeScheduler"/> (queue and timers), <see cref="WakeEvaluator"/>
/// and <see cref="WebhookDelivery"/>. This class only starts and stops them. State lives in an
/// <see cref="ISubscriptionRepository"/> — a <see cref="LocalSubscriptionRepository"/> over the configured state store
/// in one process, or a shared one (PostgreSQL) on several nodes — and every change is a conditional write, so racing
/// claims, wakes and acks have exactly one winner. The store's change feed tells the engine about every commit, so
/// nobody has to notify it by hand.
/// </summary>
internal sealed class SubscriptionEngine : IAsyncDisposable
{
    private readonly IStreamStore _store;
    private readonly SubscriptionOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ISubscriptionRepository _repository;
    /// <summary>The in-memory state the engine created itself (no state configured), disposed with it.</summary>
    private readonly MemorySubscriptionStateStore? _ownedState;
    /// <summary>The single-process repository the engine created over its state (null with a shared repository).</summary>
    private readonly LocalSubscriptionRepository? _local;
    private readonly WebhookUrlPolicy _policy;
    private readonly CancellationTokenSource _stopping = new();
    private Parts? _parts;
    private volatile bool _started;

    public SubscriptionEngine(IStreamStore store, SubscriptionOptions options, TimeProvider time, ILogger<SubscriptionEngine> logger)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _options = options;
        _time = time;
        _logger = logger;
        if (options.Repository is { } repository)
        {
            _repository = repository;
        }
        else
        {
            _ownedState = options.State is null ? new MemorySubscriptionStateStore() : null;
            _repository = _local = new LocalSubscriptionRepository(options.State ?? _ownedState!);
        }
        var resolver = options.HostResolver ?? ((host, ct) => Dns.GetHostAddressesAsync(host, ct));
        _policy = new WebhookUrlPolicy(resolver, options.AllowLocalhostHttp);
    }

    /// <summary>Whether the engine has started (and not stopped).</summary>
    public bool Started => _started;

    /// <summary>The control API; available once started.</summary>
    public SubscriptionOperations Operations => Running.Operations;

    /// <summary>Callback, ack, claim and release; available once started.</summary>
    public WakeOperations Wakes => Running.Wakes;

    private Parts Running => _parts ?? throw new InvalidOperationException("Subscriptions have not started.");

    /// <summary>Loads state and keys, builds the index, listens to the store and wakes work pending from before.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_parts is not null)
        {
            return;
        }
        await _repository.InitializeAsync(cancellationToken);
        var now = _time.GetUtcNow();
        // Insert-if-absent: nodes starting together on shared state agree on one key, so every JWKS is the same.
        var keys = await _repository.GetOrAddSigningKeysAsync([WebhookSigner.NewKeyState(now)], cancellationToken);
        var signer = WebhookSigner.FromStates(keys, now, out var createdKey);
        if (createdKey)
        {
            await _repository.SaveSigningKeysAsync(signer.States, cancellationToken);
        }
        var updater = new SubscriptionUpdater(_repository);
        var views = new StreamViews(_store);
        var index = new SubscriptionIndex(_repository);
        WakeEvaluator? evaluator = null;
        var scheduler = new WakeScheduler(_time, _logger, _repository, (id, token) => evaluator!.EvaluateAsync(id, token));
        var webhooks = new WebhookDelivery(_options, _time, _logger, _policy, signer, updater, scheduler, _stopping.Token);
        evaluator = new WakeEvaluator(_store, _time, _logger, updater, views, scheduler, webhooks);
        var linker = new StreamLinker(_repository, index, updater, scheduler, _logger, _stopping.Token);
        var all = await index.RebuildAsync(cancellationToken);
        scheduler.Start(_repository.IsShared ? _options.SharedPollInterval : null, _stopping.Token);
        _repository.LinksChanged += linker.OnRemoteLinksChanged;
        var changes = _store.Changes.Subscribe(linker.OnChangedAsync, linker.IsInterested);
        _parts = new Parts(
            new SubscriptionOperations(_store, _repository, _time, _policy, signer, updater, views, index, scheduler),
            new WakeOperations(_time, signer, updater, views, scheduler),
            scheduler, webhooks, linker, index, changes);
        _started = true;
        // Pending work from before a restart is woken again; leases and retry schedules are honoured by the evaluator.
        foreach (var subscription in all)
        {
            scheduler.Enqueue(subscription.State.Id);
        }
    }

    /// <summary>Stops listening, then waits for the wake worker and deliveries in flight.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (!_started || _parts is not { } parts)
        {
            return;
        }
        _started = false;
        _repository.LinksChanged -= parts.Linker.OnRemoteLinksChanged;
        await parts.Changes.DisposeAsync();
        await _stopping.CancelAsync();
        await parts.Scheduler.StopAsync(cancellationToken);
        await parts.Webhooks.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        _parts?.Webhooks.Dispose();
        _parts?.Index.Dispose();
        _local?.Dispose();
        if (_ownedState is not null)
        {
            await _ownedState.DisposeAsync();
        }
        _stopping.Dispose();
    }

    /// <summary>What a started engine runs.</summary>
    private sealed record Parts(
        SubscriptionOperations Operations, WakeOperations Wakes, WakeScheduler Scheduler, WebhookDelivery Webhooks, StreamLinker Linker,
        SubscriptionIndex Index, IAsyncDisposable Changes);
}
