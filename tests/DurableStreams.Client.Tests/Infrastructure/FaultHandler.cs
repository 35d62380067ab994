using System.Collections.Concurrent;
using System.Net;

namespace DurableStreams.Client.Tests.Infrastructure;

/// <summary>What the <see cref="FaultHandler"/> does with one request.</summary>
public enum Fault
{
    /// <summary>Forward it unchanged.</summary>
    None,
    /// <summary>Answer 503 without forwarding (the server never sees it).</summary>
    ServiceUnavailable,
    /// <summary>Forward it, let the server process it, then drop the response as a broken connection would.</summary>
    LoseResponse,
    /// <summary>Answer 429 without forwarding (with <see cref="FaultHandler.RetryAfterSeconds"/> as Retry-After, when set).</summary>
    TooManyRequests,
    /// <summary>Forward it and pass on the server's status and headers, but break the body after <see cref="FaultHandler.BreakAfterBytes"/> bytes.</summary>
    BreakBody,
}

/// <summary>
/// Sits between the client and the real server: records every request and injects faults chosen per request by
/// <see cref="Decide"/>, which sees the request and how many earlier requests matched the same method.
/// </summary>
public sealed class FaultHandler() : DelegatingHandler(new SocketsHttpHandler { MaxResponseDrainSize = 0 })
{
    private readonly ConcurrentQueue<(HttpMethod Method, Uri Uri, HttpStatusCode? Status)> _log = new();
    private readonly ConcurrentDictionary<HttpMethod, int> _counts = new();

    /// <summary>Chooses the fault for a request; the int is its 0-based index among requests with the same method.</summary>
    public Func<HttpRequestMessage, int, Fault> Decide { get; set; } = static (_, _) => Fault.None;

    /// <summary>Bytes of the body a <see cref="Fault.BreakBody"/> response delivers before the connection breaks; default 3.</summary>
    public int BreakAfterBytes { get; set; } = 3;

    /// <summary>The Retry-After value (seconds or an HTTP date) on injected 503s and 429s, or null.</summary>
    public string? RetryAfterSeconds { get; set; }

    /// <summary>Awaited before a request is forwarded (after <see cref="Decide"/>), so a test can hold one back; none by default.</summary>
    public Func<HttpRequestMessage, Task>? BeforeForwardAsync { get; set; }

    /// <summary>Called with each forwarded request and the server's response before the client sees it; none by default.</summary>
    public Action<HttpRequestMessage, HttpResponseMessage>? AfterResponse { get; set; }

    public IReadOnlyList<(HttpMethod Method, Uri Uri, HttpStatusCode? Status)> Requests => [.. _log];

    public int Count(HttpMethod method) => Requests.Count(r => r.Method == method);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var index = _counts.AddOrUpdate(request.Method, 0, static (_, n) => n + 1);
        var fault = Decide(request, index);
        if (fault is Fault.ServiceUnavailable or Fault.TooManyRequests)
        {
            var status = fault == Fault.ServiceUnavailable ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.TooManyRequests;
            _log.Enqueue((request.Method, request.RequestUri!, status));
            var injected = new HttpResponseMessage(status)
            {
                RequestMessage = request,
                Content = new StringContent(fault == Fault.ServiceUnavailable ? "Injected outage." : "Injected rate limit."),
            };
            if (RetryAfterSeconds is not null)
            {
                injected.Headers.TryAddWithoutValidation("Retry-After", RetryAfterSeconds);
            }
            return injected;
        }
        if (BeforeForwardAsync is { } beforeForward)
        {
            await beforeForward(request);
        }
        var response = await base.SendAsync(request, cancellationToken);
        _log.Enqueue((request.Method, request.RequestUri!, response.StatusCode));
        AfterResponse?.Invoke(request, response);
        if (fault == Fault.LoseResponse)
        {
            // The server has already answered (status and headers are here), so the request was processed.
            response.Dispose();
            throw new HttpRequestException("Injected: connection lost after the server processed the request.");
        }
        if (fault == Fault.BreakBody)
        {
            var broken = new StreamContent(new BreakingStream(await response.Content.ReadAsStreamAsync(cancellationToken), BreakAfterBytes));
            foreach (var header in response.Content.Headers)
            {
                broken.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
            response.Content = broken;
        }
        return response;
    }

    /// <summary>Passes on the first bytes of a body, then fails as a reset connection does.</summary>
    private sealed class BreakingStream(Stream inner, int limit) : Stream
    {
        private int _passed;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_passed >= limit)
            {
                throw new IOException("Injected: the connection broke mid-body.");
            }
            var read = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, limit - _passed)], cancellationToken);
            _passed += read;
            return read;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
