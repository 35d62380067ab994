using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace DurableStreams.Server.Internal;

/// <summary>
/// Reads request bodies into memory for every endpoint that needs a whole body (create, append, the subscription
/// APIs). One place enforces the size limit, the process-wide budget of buffered bytes
/// (<see cref="DurableStreamsOptions.MaxBufferedBodyBytes"/>), the minimum upload rate over each window
/// (<see cref="DurableStreamsOptions.MinRequestBodyDataRate"/>), and turns Kestrel's malformed-body errors into 400.
/// Bodies are copied out of Kestrel's pipe as they arrive into one pooled array, so a body is held once, not twice.
/// </summary>
internal sealed class RequestBodyReader
{
    /// <summary>The window the minimum rate is measured over; the first window is the grace period.</summary>
    public static readonly TimeSpan RateWindow = TimeSpan.FromSeconds(5);

    /// <summary>What a client waits before retrying when the budget is full: buffered bodies finish or are cut off within seconds.</summary>
    public const int BusyRetryAfterSeconds = 2;

    private static readonly HttpError s_busy = new(StatusCodes.Status503ServiceUnavailable, "The server is buffering too many request bodies; retry later.");
    private static readonly HttpError s_tooSlow = new(StatusCodes.Status408RequestTimeout, "The request body arrived too slowly.");
    private static readonly HttpError s_malformed = HttpError.BadRequest("The request body is malformed (bad chunked encoding or length).");

    private readonly TimeProvider _time;
    private readonly long _minBytesPerWindow;

    public RequestBodyReader(DurableStreamsOptions options)
    {
        Budget = new BufferedBodyBudget(options.MaxBufferedBodyBytes);
        _time = options.TimeProvider;
        _minBytesPerWindow = options.MinRequestBodyDataRate > 0
            ? Math.Max(1, (long)Math.Ceiling(options.MinRequestBodyDataRate * RateWindow.TotalSeconds))
            : 0;
    }

    /// <summary>The bytes of bodies buffered right now, against <see cref="DurableStreamsOptions.MaxBufferedBodyBytes"/>.</summary>
    public BufferedBodyBudget Budget { get; }

    /// <summary>
    /// Reads the whole body into a pooled buffer, which the caller disposes once the store has copied it. Returns null
    /// when the body is longer than <paramref name="limit"/> (nothing more is buffered). Throws
    /// <see cref="RequestBodyException"/> for a full budget (503), a stalled upload (408) and a malformed body (400).
    /// </summary>
    public async ValueTask<BufferedBody?> ReadAsync(HttpContext context, long limit, CancellationToken cancellationToken)
    {
        var declared = context.Request.ContentLength;
        if (declared > limit)
        {
            return null;
        }
        if (declared == 0)
        {
            return BufferedBody.Empty;
        }
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            // Our own limit applies; Kestrel's default (30 MB) must not cut in first.
            sizeFeature.MaxRequestBodySize = null;
        }
        var reader = context.Request.BodyReader;
        var body = new BufferedBody(Budget);
        UploadWatchdog? watchdog = null;
        try
        {
            if (declared is { } length && !body.TryGrow(length, exact: true))
            {
                ThrowBusy();
            }
            while (true)
            {
                var read = await ReadOnceAsync(reader, watchdog, cancellationToken);
                if (read.IsCanceled)
                {
                    // Nothing here cancels a pending read; end rather than spin if something does.
                    throw TooSlow();
                }
                var buffer = read.Buffer;
                if (body.Length + buffer.Length > limit)
                {
                    reader.AdvanceTo(buffer.End);
                    body.Dispose();
                    return null;
                }
                if (!buffer.IsEmpty)
                {
                    if (!body.TryGrow(body.Length + buffer.Length, exact: false))
                    {
                        reader.AdvanceTo(buffer.End);
                        ThrowBusy();
                    }
                    body.Append(buffer);
                }
                var received = buffer.Length;
                reader.AdvanceTo(buffer.End);
                if (read.IsCompleted)
                {
                    return body;
                }
                // Small bodies usually arrive whole in the first read and never start a watchdog.
                if (_minBytesPerWindow > 0)
                {
                    watchdog ??= new UploadWatchdog(_minBytesPerWindow, _time, cancellationToken);
                    watchdog.Received(received);
                }
            }
        }
        catch
        {
            body.Dispose();
            throw;
        }
        finally
        {
            watchdog?.Dispose();
        }
    }

    /// <summary>One read of the body, with Kestrel's errors about a malformed body turned into a 400.</summary>
    private static async ValueTask<ReadResult> ReadOnceAsync(PipeReader reader, UploadWatchdog? watchdog, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.ReadAsync(watchdog?.Token ?? cancellationToken);
        }
        catch (OperationCanceledException) when (watchdog is { Fired: true } && !cancellationToken.IsCancellationRequested)
        {
            throw TooSlow();
        }
        catch (BadHttpRequestException ex)
        {
            throw ex.StatusCode switch
            {
                StatusCodes.Status408RequestTimeout => new RequestBodyException(s_tooSlow, ex) { CloseConnection = true },
                StatusCodes.Status413PayloadTooLarge => new RequestBodyException(new HttpError(ex.StatusCode, "The request body is too large."), ex),
                _ => new RequestBodyException(s_malformed, ex),
            };
        }
        catch (IOException ex) when (ex is not ConnectionResetException && !cancellationToken.IsCancellationRequested)
        {
            // Kestrel reports some framing errors as a plain IOException, e.g. a chunk size that overflows
            // ("Bad chunk size data." wrapping an OverflowException).
            throw new RequestBodyException(s_malformed, ex);
        }
    }

    [DoesNotReturn]
    private static void ThrowBusy() =>
        throw new RequestBodyException(s_busy) { RetryAfterSeconds = BusyRetryAfterSeconds, Reason = RejectionReasons.BodyBudgetFull };

    private static RequestBodyException TooSlow() => new(s_tooSlow) { CloseConnection = true };

    /// <summary>
    /// Cuts off an upload that delivers fewer than the minimum bytes in a window: after each window it compares the
    /// bytes received in it and, when they fall short, cancels the token the reads wait on, whatever arrived before.
    /// A token rather than <see cref="PipeReader.CancelPendingRead"/>: a late tick must not cancel a read of the
    /// connection's next request.
    /// </summary>
    private sealed class UploadWatchdog : IDisposable
    {
        private readonly long _minBytes;
        private readonly ITimer _timer;
        private readonly CancellationTokenSource _cancellation;
        private long _received;
        private long _atLastCheck;
        private bool _disposed;

        public UploadWatchdog(long minBytes, TimeProvider time, CancellationToken requestAborted)
        {
            _minBytes = minBytes;
            _cancellation = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
            _timer = time.CreateTimer(static state => ((UploadWatchdog)state!).Check(), this, RateWindow, RateWindow);
        }

        /// <summary>The token body reads wait on: the request's, plus this watchdog's verdict.</summary>
        public CancellationToken Token => _cancellation.Token;

        public bool Fired { get; private set; }

        public void Received(long bytes) => Interlocked.Add(ref _received, bytes);

        private void Check()
        {
            lock (_cancellation)
            {
                if (_disposed || Fired)
                {
                    return;
                }
                var received = Interlocked.Read(ref _received);
                Fired = received - _atLastCheck < _minBytes;
                _atLastCheck = received;
                if (!Fired)
                {
                    return;
                }
            }
            try
            {
                // Outside the lock: the cancelled read may continue inline and dispose this watchdog.
                _cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The body ended between the check and here; its reads are over.
            }
        }

        public void Dispose()
        {
            lock (_cancellation)
            {
                _disposed = true;
            }
            _timer.Dispose();
            _cancellation.Dispose();
        }
    }
}

/// <summary>
/// A body read into memory; disposing gives the memory and the budget it held back. Bodies up to
/// <see cref="LargeBodyBytes"/> use arrays from <see cref="ArrayPool{T}.Shared"/>; larger ones use native memory,
/// freed on dispose, so the memory of large uploads goes back to the operating system when they end instead of
/// staying in the GC heap or a pool (an idle server runs no GC that would return it).
/// </summary>
internal sealed class BufferedBody : IDisposable
{
    /// <summary>No body: nothing rented, nothing reserved.</summary>
    public static readonly BufferedBody Empty = new(null);

    /// <summary>Bodies larger than this use native memory instead of pooled arrays.</summary>
    public const int LargeBodyBytes = 1024 * 1024;

    /// <summary>The first array for a body of unknown length (chunked); it doubles as the body grows.</summary>
    private const int InitialCapacity = 16 * 1024;

    private readonly BufferedBodyBudget? _budget;
    private byte[]? _array;
    private NativeBuffer? _native;
    private long _reserved;

    public BufferedBody(BufferedBodyBudget? budget) => _budget = budget;

    public int Length { get; private set; }

    private int Capacity => _native?.Length ?? _array?.Length ?? 0;

    /// <summary>The body; valid until <see cref="Dispose"/>.</summary>
    public ReadOnlyMemory<byte> Memory =>
        _native is not null ? _native.Memory[..Length] : _array is null ? ReadOnlyMemory<byte>.Empty : _array.AsMemory(0, Length);

    /// <summary>
    /// Makes room for <paramref name="capacity"/> bytes, reserving what the bigger buffer adds against the budget
    /// first; false (nothing changed) when the budget has no room. Without <paramref name="exact"/> the buffer at least doubles.
    /// </summary>
    public bool TryGrow(long capacity, bool exact)
    {
        var current = Capacity;
        if (current >= capacity)
        {
            return true;
        }
        var wanted = exact ? capacity : Math.Max(capacity, Math.Max(InitialCapacity, 2L * current));
        var size = (int)Math.Min(wanted, Array.MaxLength);
        if (size < capacity)
        {
            return false;
        }
        if (size > LargeBodyBytes)
        {
            if (!TryReserveUpTo(size))
            {
                return false;
            }
            if (_native is null)
            {
                _native = new NativeBuffer(size);
                if (_array is { } old)
                {
                    old.AsSpan(0, Length).CopyTo(_native.GetSpan());
                    _array = null;
                    ArrayPool<byte>.Shared.Return(old);
                }
            }
            else
            {
                _native.Resize(size);
            }
            return true;
        }
        var array = ArrayPool<byte>.Shared.Rent(size);
        if (!TryReserveUpTo(array.Length))
        {
            ArrayPool<byte>.Shared.Return(array);
            return false;
        }
        if (_array is not null)
        {
            _array.AsSpan(0, Length).CopyTo(array);
            ArrayPool<byte>.Shared.Return(_array);
        }
        _array = array;
        return true;
    }

    private bool TryReserveUpTo(long total)
    {
        var extra = total - _reserved;
        if (extra <= 0)
        {
            return true;
        }
        if (!_budget!.TryReserve(extra))
        {
            return false;
        }
        _reserved = total;
        return true;
    }

    public void Append(ReadOnlySequence<byte> data)
    {
        data.CopyTo(_native is not null ? _native.GetSpan()[Length..] : _array.AsSpan(Length));
        Length += (int)data.Length;
    }

    public void Dispose()
    {
        if (_array is { } array)
        {
            _array = null;
            ArrayPool<byte>.Shared.Return(array);
        }
        if (_native is { } native)
        {
            _native = null;
            ((IDisposable)native).Dispose();
        }
        if (_reserved > 0)
        {
            _budget!.Release(_reserved);
            _reserved = 0;
        }
        Length = 0;
    }

    /// <summary>
    /// A block of native memory as <see cref="Memory{T}"/>, freed on dispose. No finalizer: a span over it may outlive
    /// the manager's reachability (CA2015); every path that creates one disposes it.
    /// </summary>
    private sealed unsafe class NativeBuffer : MemoryManager<byte>
    {
        private byte* _pointer;

        public NativeBuffer(int length)
        {
            _pointer = (byte*)NativeMemory.Alloc((nuint)length);
            Length = length;
        }

        public int Length { get; private set; }

        public void Resize(int length)
        {
            _pointer = (byte*)NativeMemory.Realloc(_pointer, (nuint)length);
            Length = length;
        }

        public override Span<byte> GetSpan() => new(_pointer, Length);

        public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
            if (_pointer is not null)
            {
                NativeMemory.Free(_pointer);
                _pointer = null;
                Length = 0;
            }
        }
    }
}

/// <summary>
/// The bytes of request bodies held in memory at once, across all requests; a lock-free counter, so a small body pays
/// two interlocked additions.
/// </summary>
internal sealed class BufferedBodyBudget(long limit)
{
    private long _used;

    public long Limit { get; } = limit;

    public long Used => Interlocked.Read(ref _used);

    public bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _used, bytes) <= Limit)
        {
            return true;
        }
        Interlocked.Add(ref _used, -bytes);
        return false;
    }

    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);
}

/// <summary>A request body that cannot be taken: the answer to send, once, from the endpoint's error handler.</summary>
internal sealed class RequestBodyException(HttpError error, Exception? inner = null) : Exception(error.Message, inner)
{
    public HttpError Error { get; } = error;

    /// <summary>Seconds for <c>Retry-After</c>, if any.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>Ask Kestrel to close the connection after the answer (the rest of the body is not worth waiting for).</summary>
    public bool CloseConnection { get; init; }

    /// <summary>The <c>reason</c> of <c>durable_streams.rejected_requests</c>, when it is a limit.</summary>
    public string? Reason { get; init; }

    public string RetryAfterText => RetryAfterSeconds?.ToString(CultureInfo.InvariantCulture) ?? string.Empty;
}
