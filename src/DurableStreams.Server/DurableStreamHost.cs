using DurableStreams.Core.Retention;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using DurableStreams.Storage.Files;
using DurableStreams.Storage.Postgres;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableStreams.Server;

/// <summary>Why a <see cref="DurableStreamHost"/> could not open or start; the front ends map it to an exit code or an ErrorId.</summary>
public enum DurableStreamHostFailure
{
    /// <summary>A setting is out of range (an <see cref="ArgumentException"/> from the options' validation).</summary>
    InvalidOption,

    /// <summary>Another process holds the file store's data directory.</summary>
    StoreInUse,

    /// <summary>The store could not be opened (an unreadable data directory, an unreachable database).</summary>
    StoreUnavailable,

    /// <summary>The file-backed subscription state could not be opened.</summary>
    SubscriptionStateUnavailable,

    /// <summary>Kestrel could not start (the port is taken, a TLS file is missing or unreadable).</summary>
    ServerStartFailed,
}

/// <summary>A <see cref="DurableStreamHost"/> could not open its store or start; <see cref="Exception.Message"/> is meant for the user.</summary>
public sealed class DurableStreamHostException : Exception
{
    /// <summary>Creates the exception; <paramref name="message"/> is shown to the user as it is.</summary>
    public DurableStreamHostException(DurableStreamHostFailure failure, string message, Exception innerException)
        : base(message, innerException)
    {
        Failure = failure;
    }

    /// <summary>What failed.</summary>
    public DurableStreamHostFailure Failure { get; }
}

/// <summary>
/// A server composed from <see cref="DurableStreamHostOptions"/>, as <c>durable-streams serve</c> and
/// <c>Start-DurableStreamServer</c> host it: <see cref="OpenAsync"/> opens the chosen store, <see cref="StartAsync"/>
/// opens the subscription state, starts Kestrel and the retention job, and <see cref="DisposeAsync"/> stops the job and
/// the server before it closes the subscription state and then the store, so nothing is written to a closed store and the file store flushes and
/// releases its directory last.
/// </summary>
public sealed class DurableStreamHost : IAsyncDisposable
{
    private readonly ILoggerFactory _loggerFactory;
    private FileSubscriptionStateStore? _subscriptionState;
    private DurableStreamServer? _server;
    private RetentionJob? _retention;
    private int _disposed;

    private DurableStreamHost(DurableStreamHostOptions options, IStreamStore store, ISubscriptionRepository? subscriptionRepository, ILoggerFactory loggerFactory)
    {
        Options = options;
        Store = store;
        SubscriptionRepository = subscriptionRepository;
        _loggerFactory = loggerFactory;
    }

    /// <summary>The settings this host was opened with.</summary>
    public DurableStreamHostOptions Options { get; }

    /// <summary>The store behind the endpoints, owned by this host.</summary>
    public IStreamStore Store { get; }

    /// <summary>The PostgreSQL store's subscription repository (shared by every node); null for the other stores.</summary>
    internal ISubscriptionRepository? SubscriptionRepository { get; }

    /// <summary>The file-backed subscription state (file store with subscriptions on); null otherwise.</summary>
    internal ISubscriptionStateStore? SubscriptionState => _subscriptionState;

    /// <summary>The retention job, started with the server when some policy drops data (<see cref="DurableStreamHostOptions.Retention"/>); null otherwise.</summary>
    internal RetentionJob? Retention => _retention;

    /// <summary>The running server.</summary>
    /// <exception cref="InvalidOperationException">The host has not been started.</exception>
    public DurableStreamServer Server => _server ?? throw new InvalidOperationException("The host has not been started.");

    /// <summary>Opens the store <see cref="DurableStreamHostOptions.Store"/> names. Start the server with <see cref="StartAsync"/>.</summary>
    /// <exception cref="DurableStreamHostException">A setting is invalid, or the store could not be opened.</exception>
    public static Task<DurableStreamHost> OpenAsync(DurableStreamHostOptions options, ILoggerFactory? loggerFactory = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return OpenWithAsync(options, loggerFactory, OpenStoreAsync, cancellationToken);
    }

    /// <summary>Test seam: opens with <paramref name="openStore"/> in place of the store <see cref="DurableStreamHostOptions.Store"/> names.</summary>
    internal static async Task<DurableStreamHost> OpenWithAsync(
        DurableStreamHostOptions options,
        ILoggerFactory? loggerFactory,
        Func<DurableStreamHostOptions, ILoggerFactory, CancellationToken, Task<(IStreamStore, ISubscriptionRepository?)>> openStore,
        CancellationToken cancellationToken)
    {
        loggerFactory ??= NullLoggerFactory.Instance;
        try
        {
            options.ToServerOptions().Validate();
            if (options.Retention.Any || options.Retention.AnyCompaction)
            {
                ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.RetentionInterval, TimeSpan.Zero, nameof(options.RetentionInterval));
            }
        }
        catch (ArgumentException ex)
        {
            throw new DurableStreamHostException(DurableStreamHostFailure.InvalidOption, StartFailedMessage(options, ex), ex);
        }
        var (store, repository) = await openStore(options, loggerFactory, cancellationToken).ConfigureAwait(false);
        return new DurableStreamHost(options, store, repository, loggerFactory);
    }

    private static async Task<(IStreamStore, ISubscriptionRepository?)> OpenStoreAsync(DurableStreamHostOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        switch (options.Store)
        {
            case HostedStoreKind.Postgres:
                try
                {
                    var postgresOptions = options.ToPostgresStoreOptions();
                    postgresOptions.LoggerFactory = loggerFactory;
                    var postgres = await PostgresStreamStore.OpenAsync(postgresOptions, cancellationToken).ConfigureAwait(false);
                    // Shared by every node on the database, so any node serves any subscription call.
                    return (postgres, options.Subscriptions ? postgres.CreateSubscriptionRepository() : null);
                }
                catch (Exception ex) when (ex is StoreUnavailableException or ArgumentException or InvalidOperationException or Npgsql.NpgsqlException)
                {
                    throw new DurableStreamHostException(DurableStreamHostFailure.StoreUnavailable, $"Could not open the PostgreSQL store: {ex.Message}", ex);
                }
            case HostedStoreKind.File:
                var fileOptions = options.ToFileStoreOptions();
                try
                {
                    return (FileStreamStore.Open(fileOptions, loggerFactory), null);
                }
                catch (InvalidOperationException ex) when (ex.InnerException is IOException)
                {
                    // The store's own message names the directory and says another process holds it.
                    throw new DurableStreamHostException(DurableStreamHostFailure.StoreInUse, ex.Message, ex);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or LightningDB.LightningException)
                {
                    throw new DurableStreamHostException(DurableStreamHostFailure.StoreUnavailable, $"Could not open the data directory '{fileOptions.DataDirectory}': {ex.Message}", ex);
                }
            default:
                return (new MemoryStreamStore(options.ToMemoryStoreOptions()), null);
        }
    }

    /// <summary>
    /// Opens the file store's subscription state (inside the data directory, under its lock) and starts Kestrel. On
    /// failure nothing stays running but the store, which <see cref="DisposeAsync"/> closes.
    /// </summary>
    /// <exception cref="DurableStreamHostException">The subscription state could not be opened or Kestrel could not start.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_server is not null)
        {
            throw new InvalidOperationException("The host is already started.");
        }
        if (Options.Store == HostedStoreKind.File && Options.Subscriptions && _subscriptionState is null)
        {
            try
            {
                _subscriptionState = FileSubscriptionStateStore.Open(Options.DataDirectory!);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                throw new DurableStreamHostException(
                    DurableStreamHostFailure.SubscriptionStateUnavailable,
                    $"Could not open the subscription state in '{Options.DataDirectory}': {ex.Message}",
                    ex);
            }
        }

        // The server does not dispose a store passed to it; this host does, after the server.
        var server = new DurableStreamServer(Options.ToServerOptions(Store, _subscriptionState, SubscriptionRepository), _loggerFactory);
        try
        {
            await server.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ArgumentException or System.Security.Cryptography.CryptographicException)
        {
            await server.DisposeAsync().ConfigureAwait(false);
            // A missing or unreadable TLS certificate or key lands here too (IOException or CryptographicException).
            var failure = ex is ArgumentException ? DurableStreamHostFailure.InvalidOption : DurableStreamHostFailure.ServerStartFailed;
            throw new DurableStreamHostException(failure, StartFailedMessage(Options, ex), ex);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        _server = server;
        // Every store implements IStreamRetention and IStreamCatalog; the job trims whatever store is hosted.
        _retention = RetentionJob.StartFor(Store, Options.Retention, Options.RetentionInterval, TimeProvider.System, _loggerFactory);
    }

    /// <summary>Stops the server gracefully; false when <paramref name="timeout"/> passed first (open connections are then dropped on disposal).</summary>
    public async Task<bool> StopAsync(TimeSpan timeout)
    {
        if (_server is not { } server)
        {
            return true;
        }
        using var stopTimeout = new CancellationTokenSource(timeout);
        try
        {
            await server.StopAsync(stopTimeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (stopTimeout.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Stops the server (dropping open connections), then closes the subscription state, then the store.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        try
        {
            if (_retention is not null)
            {
                // First: a pass must not call into a store that is closing.
                await _retention.DisposeAsync().ConfigureAwait(false);
            }
            if (_server is not null)
            {
                await _server.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            try
            {
                if (_subscriptionState is not null)
                {
                    await _subscriptionState.DisposeAsync().ConfigureAwait(false);
                }
            }
            finally
            {
                // Only after the server has stopped: the file store flushes what it holds and releases the directory.
                await Store.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static string StartFailedMessage(DurableStreamHostOptions options, Exception ex) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Could not start the server on {options.Host}:{options.Port}: {ex.Message}");
}
